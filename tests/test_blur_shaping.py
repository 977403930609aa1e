"""Blur v2's shaping of the decoder's change (engine/blur/shaping.py), on its own: a shut zone
gives the base exactly; each level band comes out as loud as the base (the match is exact once
its window has filled); the change is placed by the zone's weight (nothing outside it moves);
the release ends exactly; evidence and hold in the sampler; apply allocates no buffers."""

import tracemalloc

import numpy as np
import pytest

from vqblur.common.freqaxis import row_edges_hz
from vqblur.engine.blur import OFFSETS_8, NBTable, ZoneSampler
from vqblur.engine.blur.shaping import ChangeShaper, band_matrix
from vqblur.engine.blur.zone import PerceptualZone


def _zone(size, centre):
    z = PerceptualZone(48000, 320, 160, row_edges_hz(20, 48000, 320, 160, "log"), 4)
    z.update(size, centre)
    return z


def _shaper(z, weight=None, **kw) -> ChangeShaper:
    """A shaper on zone ``z``'s axis (600 frames/s), set to its weights (or ``weight``)."""
    sh = ChangeShaper(2, z.position, 600.0, **kw)
    sh.set_zone(z.bin_weight if weight is None else weight)
    return sh


def _frames(rng, n):
    """Input, dec(c) and dec(b) for n columns: the blurred codes' change is a fixed pattern
    (codes held) plus a little noise."""
    lin = rng.normal(-4, 1.5, (n, 2, 160))
    lc = lin + rng.normal(0, 0.2, lin.shape)
    lb = lc + rng.normal(0, 1.5, (1, 1, 160)) + rng.normal(0, 0.2, lin.shape)
    return lin, lc, lb


def test_shut_zone_is_the_base_exactly():
    sh = _shaper(_zone(0.0, 0.5), hold_base_level=False)
    rng = np.random.default_rng(0)
    lin, lc, lb = _frames(rng, 3)
    out = np.zeros((2, 160))
    for i in range(3):
        sh.apply(lb[i], lc[i], lin[i], 1.0, out)
        assert np.array_equal(out, lc[i] + (lin[i] - lc[i]))
        sh.apply(lb[i], lc[i], lin[i], 0.0, out)
        assert np.array_equal(out, lc[i])


@pytest.mark.parametrize("detail", [0.0, 0.4])
def test_base_below_detail_1_has_the_inputs_band_levels(detail):
    """Below detail 1 the base (here with the zone shut: the output) keeps its own shape inside
    each level band and the input's energy in each band, every frame; detail 1 is the input."""
    z = _zone(0.0, 0.5)
    sh = _shaper(z)
    B = band_matrix(z.position)
    rng = np.random.default_rng(3)
    lin, lc, lb = _frames(rng, 3)
    lc = lc + np.where(z.position < 0.5, -1.0, 0.7)  # the codec 8.7 dB too quiet / 6 dB too loud
    out = np.zeros((2, 160))
    for i in range(3):
        sh.apply(lb[i], lc[i], lin[i], detail, out)
        base = lc[i] + detail * (lin[i] - lc[i])
        e_out, e_in, e_base = (np.exp(2 * v) @ B.T for v in (out, lin[i], base))
        assert np.allclose(e_out, e_in, rtol=1e-9)  # every band of every frame as loud as the input
        assert np.max(np.abs(e_base / e_in - 1)) > 0.5  # (and without the hold it was not)
        for b in range(B.shape[0]):  # the base's own shape inside the band: one gain per band
            d = (out - base)[:, B[b] > 0]
            assert np.allclose(d, d[:, :1])
        sh.apply(lb[i], lc[i], lin[i], 1.0, out)
        assert np.array_equal(out, lin[i])


def test_base_level_hold_keeps_silence_silent():
    """Digital silence in (the engine's floor: log 1e-300) cuts the base as far as the hold goes
    (80 dB), without a division by zero; a band the codec left silent is raised by at most 20 dB."""
    z = _zone(0.0, 0.5)
    sh = _shaper(z)
    lc = np.full((2, 160), -3.0)
    out = np.zeros((2, 160))
    sh.apply(lc, lc, np.full((2, 160), np.log(1e-300)), 0.0, out)
    assert np.all(np.isfinite(out)) and np.allclose(out, -3.0 - 0.5 * 18.4)
    sh.apply(np.full((2, 160), -30.0), np.full((2, 160), -30.0), np.full((2, 160), -2.0), 0.0, out)
    assert np.allclose(out, -30.0 + 0.5 * 4.6)


@pytest.mark.parametrize("level_tau", [0.0, 1e-6], ids=["default, no window", "window 1 us"])
@pytest.mark.parametrize("size,centre", [(0.3, 0.5), (0.1, 0.15), (1.0, 0.5)])
def test_bands_keep_their_energy_and_nothing_outside_moves(size, centre, level_tau):
    z = _zone(size, centre)
    sh = _shaper(z, level_tau=level_tau)  # every frame exact (no feedback: the loop stays at 0)
    B = band_matrix(z.position)
    rng = np.random.default_rng(1)
    lin, lc, lb = _frames(rng, 40)
    out = np.zeros((2, 160))
    moved = 0.0
    for i in range(40):
        sh.apply(lb[i], lc[i], lin[i], 1.0, out)
        e_in, e_out = B @ np.exp(2 * lin[i]).T, B @ np.exp(2 * out).T
        np.testing.assert_allclose(e_out, e_in, rtol=1e-6)
        assert np.array_equal(out[:, z.bin_weight == 0], lin[i][:, z.bin_weight == 0])
        moved = max(moved, float(np.abs(out - lin[i]).max()))
    assert moved > 0.5  # and it did change the inside


@pytest.mark.parametrize("smear", [0.0, 1.0], ids=["no smear", "smear 1, then 0"])
def test_the_change_releases_and_ends_exactly(smear):
    """Once the codes agree again (and the smear is turned off), the output fades back to the
    base, then is the base exactly."""
    z = _zone(0.3, 0.5)
    sh = _shaper(z)
    rng = np.random.default_rng(2)
    lin, lc, lb = _frames(rng, 2)
    out = np.zeros((2, 160))
    for i in range(20):
        sh.apply(lb[i % 2], lc[i % 2], lin[i % 2], 1.0, out, smear)
    assert np.abs(out - lin[1]).max() > 0.1
    steps, i = 0, 1
    while not np.array_equal(out, lc[i] + (lin[i] - lc[i])):  # the codes agree again: lb = lc
        i = steps % 2
        sh.apply(lc[i], lc[i], lin[i], 1.0, out)
        steps += 1
        assert steps < 300  # 0.5 s of columns
    assert steps > 5  # a release, not a cut


@pytest.mark.parametrize("smear", [0.0, 1.0], ids=["no smear", "smear"])
def test_shaping_allocates_no_buffers(smear):
    """Per column, with the output level loop fed (and with the time smear: its one-pole and the
    loop's smeared reference)."""
    z = _zone(0.4, 0.4)
    sh = _shaper(z)
    rng = np.random.default_rng(3)
    lin, lc, lb = _frames(rng, 60)
    cols = [(lb[i], lc[i], lin[i]) for i in range(60)]  # the views made before measuring
    out = np.zeros((2, 160))
    for b, c, x in cols[:5]:
        sh.apply(b, c, x, 0.7, out, smear)
    tracemalloc.start()
    try:
        peaks = []
        for n in (1, 60):
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for b, c, x in cols[:n]:
                sh.apply(b, c, x, 0.7, out, smear)
                sh.feedback(1.0, 1.1)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    # numpy's own small temporaries (views, ufunc and reduction state: ~4-5 kB at peak); one
    # temporary column buffer ([2, 160] float64, 2.5 kB) on top of them would pass 6 kB
    assert max(peaks) < 6144, peaks


def _table(K=16, R=6, seed=0):
    rng = np.random.default_rng(seed)
    return NBTable(log_prior=np.full(K, -np.log(K), np.float32), log_row=np.full((R, K), -np.log(R), np.float32),
                   log_neigh=np.log(rng.dirichlet(np.ones(K), size=(8, K))).transpose(0, 2, 1).astype(np.float32),
                   offsets=np.array(OFFSETS_8))


def test_evidence_keeps_codes_near_the_input():
    rng = np.random.default_rng(4)
    cols = rng.integers(0, 16, (300, 6))
    kept = {}
    for ev in (0.0, 6.0):
        s = ZoneSampler(_table(), 6, seed=1, evidence=ev)
        kept[ev] = np.mean([np.mean(s.step(c, 1.0, 0.5, 0.5) == c) for c in cols])
    assert kept[6.0] > kept[0.0] + 0.3, kept


def test_hold_keeps_a_drawn_code_for_its_columns():
    rng = np.random.default_rng(5)
    cols = rng.integers(0, 16, (96, 6))
    s = ZoneSampler(_table(), 6, seed=1, hold=8, past="input")
    outs = np.array([s.step(c, 1.0, 0.5, 0.9).copy() for c in cols])
    changes = (np.diff(outs, axis=0) != 0).sum(axis=0)
    assert changes.max() <= 96 // 8 + 1, changes  # a row is redrawn every 8 columns at most
    with pytest.raises(ValueError):
        ZoneSampler(_table(), 6, hold=0)


def test_the_level_loop_acts_on_the_zone_only_and_within_its_bounds():
    """``feedback``: an output quieter than its reference raises the correction (louder ones
    lower it), within LOOP_MIN..LOOP_MAX; it lands on the zone's bins only; nothing moves while
    the shaper leaves the output alone."""
    from vqblur.engine.blur import shaping as S

    z = _zone(0.2, 0.4)
    sh = _shaper(z)
    rng = np.random.default_rng(5)
    lin, lc, lb = _frames(rng, 2)
    out0, out = np.zeros((2, 160)), np.zeros((2, 160))
    sh.apply(lb[0], lc[0], lin[0], 1.0, out0)
    assert sh.active and sh.correction == 0.0
    for _ in range(200):  # the output stays 6 dB short of its reference: the loop climbs to its top
        sh.feedback(0.25, 1.0)
    assert sh.correction == S.LOOP_MAX
    sh2 = _shaper(z)
    sh2.apply(lb[0], lc[0], lin[0], 1.0, out)
    for _ in range(200):
        sh2.feedback(4.0, 1.0)
    assert sh2.correction == S.LOOP_MIN
    c = 0.4
    sh2.reset()
    sh2.correction = c
    sh2.apply(lb[0], lc[0], lin[0], 1.0, out)
    sh.reset()
    sh.apply(lb[0], lc[0], lin[0], 1.0, out0)
    outside = z.bin_weight == 0
    assert np.array_equal(out[:, outside], lin[0][:, outside])
    m = np.minimum(z.bin_weight / S.GAIN_EDGE, 1.0)
    np.testing.assert_allclose(out - out0, np.broadcast_to(c * m, out.shape), atol=1e-12)
    shut = _shaper(z, np.zeros(160))  # a shut zone: apply leaves the output alone, no loop
    shut.apply(lb[0], lc[0], lin[0], 1.0, out)
    shut.feedback(0.25, 1.0)
    assert not shut.active and shut.correction == 0.0


def test_the_level_loop_lets_go_in_digital_silence():
    """With no input energy to measure against (digital silence in), the loop's correction
    returns to 0 at its own rate, from either side, instead of running to a bound (a smeared
    tail into silence would be cut by LOOP_MIN, or boosted by a held correction)."""
    from vqblur.engine.blur import shaping as S

    z = _zone(0.2, 0.4)
    lin, lc, lb = _frames(np.random.default_rng(6), 1)
    out = np.zeros((2, 160))
    for start in (S.LOOP_MIN, 0.8):
        sh = _shaper(z)
        sh.apply(lb[0], lc[0], lin[0], 1.0, out)
        sh.correction = start
        seen = []
        for _ in range(60):
            sh.feedback(1e-3, 0.0)
            seen.append(sh.correction)
        mags = np.abs(seen)
        assert np.all(np.diff(mags) < 0) and np.all(np.sign(seen) == np.sign(start))
        assert mags[-1] < 0.01 * abs(start)
        sh.feedback(0.25, 1.0)  # input again: the loop measures and climbs from where it is
        assert sh.correction > seen[-1]
