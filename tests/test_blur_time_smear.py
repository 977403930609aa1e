"""The time smear (the ``smear`` knob; engine/blur/shaping.py): inside the zone the output's
power follows a one-pole, so an attack softens and its energy lands just after it; a band's
energy over a stretch of columns is the unsmeared one's; nothing outside the zone moves; it
follows its amount (the knob times the offline blur's ``--time`` span), fading in and out.
That it allocates nothing is checked with the rest of the shaping (test_blur_shaping.py)."""

import numpy as np

from vqblur.common.freqaxis import row_edges_hz
from vqblur.engine.blur.shaping import SMEAR_TAU, ChangeShaper, band_matrix
from vqblur.engine.blur.zone import PerceptualZone

FRAMES, RATE = 2, 600.0  # two frames a column, 600 frames/s (the shipped model's)


def _zone(size, centre):
    z = PerceptualZone(48000, 320, 160, row_edges_hz(20, 48000, 320, 160, "log"), 4)
    z.update(size, centre)
    return z


def _run(sh, lin, amounts=None):
    """Columns ``lin [n, F, bins]`` with the codes agreeing (lb = lc = lin) -> outputs [n, F, bins]."""
    out = np.zeros(lin.shape[1:])
    res = []
    for i in range(len(lin)):
        sh.apply(lin[i], lin[i], lin[i], 1.0, out, smear=1.0 if amounts is None else amounts[i])
        res.append(out.copy())
    return np.array(res)


def _steps(n_quiet=60, n_loud=60, n_tail=120, quiet=-8.0, loud=-2.0):
    """A quiet stretch, a loud one, quiet again: [n, F, 160] log-magnitudes (same in every bin)."""
    lv = np.r_[np.full(n_quiet, quiet), np.full(n_loud, loud), np.full(n_tail, quiet)]
    return np.repeat(lv[:, None, None], FRAMES, axis=1).repeat(160, axis=2)


def test_attack_softens_and_its_energy_follows_in_the_zone_only():
    z = _zone(0.3, 0.5)
    sh = ChangeShaper(FRAMES, z.position, RATE, loop=False)
    sh.set_zone(z.bin_weight)
    lin = _steps()
    out = _run(sh, lin)
    core, outside = z.bin_weight >= 0.999, z.bin_weight == 0
    assert core.any() and outside.any()
    # outside the zone: the input, exactly
    assert np.array_equal(out[..., outside], lin[..., outside])
    at_attack = out[60, 0, core] - lin[60, 0, core]  # the first loud frame
    after_release = out[121, 0, core] - lin[121, 0, core]  # just after the loud stretch ends
    assert (at_attack < -1.0).all(), at_attack.min()  # softened by more than 1 nat
    assert (after_release > 1.0).all(), after_release.min()  # its energy follows
    # the smear is continuous: no frame-to-frame step in the zone larger than the input's own
    assert np.abs(np.diff(out[..., core].reshape(-1, core.sum()), axis=0)).max() < 6.0


def test_band_energy_over_time_is_kept():
    z = _zone(0.4, 0.45)
    sh = ChangeShaper(FRAMES, z.position, RATE, loop=False)
    sh.set_zone(z.bin_weight)
    rng = np.random.default_rng(7)
    n = 600  # 2 s of columns, bursts of random loudness, then 0.5 s near silence (the smear empties)
    lin = rng.normal(-5, 1.0, (n, FRAMES, 160)) + np.repeat(rng.normal(0, 1.5, n // 20), 20)[:, None, None]
    lin = np.concatenate([lin, np.full((150, FRAMES, 160), -20.0)])
    out = _run(sh, lin)
    B = band_matrix(z.position)
    e_in = (B @ np.exp(2 * lin).reshape(-1, 160).T).sum(axis=1)
    e_out = (B @ np.exp(2 * out).reshape(-1, 160).T).sum(axis=1)
    np.testing.assert_allclose(e_out, e_in, rtol=0.01)
    per_frame = (B @ np.exp(2 * out).reshape(-1, 160).T) / (B @ np.exp(2 * lin).reshape(-1, 160).T)
    assert np.abs(np.log(per_frame)).max() > 0.5  # but moved in time, frame by frame


def test_the_amount_scales_the_smear_and_fades_it_out():
    """Smear 0 (the knob at 0, or before the offline blur's span): the input exactly; 0.5
    smears less than 1; turned off, the smear fades (smoothed as the change), then ends exactly."""
    z = _zone(0.3, 0.5)
    lin = np.tile(_steps(20, 20, 20), (7, 1, 1))  # 420 columns (1.4 s) of repeated steps
    diffs = {}
    for g in (0.5, 1.0):
        sh = ChangeShaper(FRAMES, z.position, RATE, loop=False)
        sh.set_zone(z.bin_weight)
        amounts = np.zeros(len(lin))
        amounts[60:180] = g
        out = _run(sh, lin, amounts)
        diffs[g] = d = np.abs(out - lin).max(axis=(1, 2))
        assert (d[:60] == 0).all()  # shut: the input exactly
        assert d[100:180].max() > 0.5
        assert 0 < d[181] and d[240:260].max() < d[120:140].max()  # it fades, not cuts
        assert (d[-10:] == 0).all()  # and has released, exactly (within 0.6 s of its turning off)
    assert diffs[0.5][100:180].max() < diffs[1.0][100:180].max()


def test_digital_silence_after_a_note_stays_finite_and_the_tail_decays():
    """The engine's analysis gives |X| = 1e-300 in digital silence (-690 nats): its power
    underflows to 0, which the smear must not divide by."""
    z = _zone(1.0, 0.5)
    sh = ChangeShaper(FRAMES, z.position, RATE, loop=False)
    sh.set_zone(z.bin_weight)
    note = np.full((30, FRAMES, 160), -1.0)
    silence = np.full((300, FRAMES, 160), np.log(1e-300))
    with np.errstate(divide="raise", invalid="raise", over="raise"):  # (underflow to 0 is fine)
        out = _run(sh, np.concatenate([note, silence]))
    assert np.isfinite(out).all()
    tail = out[30:, 0].max(axis=1)
    assert tail[0] > -3.0  # the note's energy lands just after it
    # and decays as its one-pole: a magnitude falls by 1 / (2 tau) nats a second (150 ms: 29 dB
    # in the 1 s of silence)
    drop = len(silence) * FRAMES / RATE / (2 * SMEAR_TAU)
    assert (np.diff(tail) <= 1e-9).all() and tail[-1] < tail[0] - 0.9 * drop

