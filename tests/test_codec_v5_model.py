"""Codec v5's model and evaluation: 190 split-framing model bins (37.5 Hz apart below 1.5 kHz,
150 Hz above) warped onto 160 points by the warp of their own frequencies -> 20 rows; shapes
offline and streaming (the step path equals the offline one); a codec-v3-shaped checkpoint starts
a v5 model (every fitting tensor copied, the 160 -> 190 normaliser skipped and refitted); the
offline resynthesis of a change equals the engine's split STFT (input + each path's change under
the crossover), gives the input back for a unit gain; the mel loss has a filterbank on the
split bins."""

from __future__ import annotations

import numpy as np
import torch

from vqblur.common.framing import split_layout
from vqblur.common.freqaxis import warp_matrices_for_bins
from vqblur.export.testing import TINY_V2, TINY_V5_AUDIO, TINY_V5_MODEL, harmonic_signal, tiny_config
from vqblur.training.model import VQVAE

from tests.model_checks import check_init_from_v3, check_shapes_offline_and_streaming, fine_tune_from_v3


def _v5_model(seed: int = 0) -> VQVAE:
    torch.manual_seed(seed)
    return VQVAE(tiny_config(audio=TINY_V5_AUDIO, **TINY_V2, **TINY_V5_MODEL))


def test_v5_warp_is_the_split_bins_own():
    m = _v5_model()
    lay = split_layout(48000, 320, 1280, 1500.0)
    ana, syn = warp_matrices_for_bins(lay.bin_hz(), lay.bin_width_hz(), 160, 1000.0)
    assert np.array_equal(m.warp_in.numpy(), ana) and np.array_equal(m.warp_out.numpy(), syn)
    assert tuple(m.warp_in.shape) == (160, 190) and tuple(m.warp_out.shape) == (190, 160)
    # a constant spectrum stays constant through the warp and back
    ones = torch.ones(190, 3)
    torch.testing.assert_close(m.warp_out @ (m.warp_in @ ones), ones)


def test_v5_shapes_offline_and_streaming():
    check_shapes_offline_and_streaming(_v5_model().eval(), 190)


def test_init_from_a_v3_checkpoint_copies_what_fits(tmp_path):
    check_init_from_v3(_v5_model(seed=1), tmp_path, 190)


def test_a_v5_fine_tune_from_v3_refits_the_normaliser_and_evaluates(tmp_path, capsys):
    import json

    _, out = fine_tune_from_v3(tmp_path, TINY_V5_AUDIO, TINY_V5_MODEL, mel_weight=0.1)
    err = capsys.readouterr().err
    assert "normaliser.mean [160] -> [190]" in err and "refitted" in err
    assert out["normaliser.mean"].shape == (190,)
    assert float(out["normaliser.mean"].std()) > 0.1
    evals = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in l]
    assert evals and all(np.isfinite(e["lsd_db"]) and np.isfinite(e["sc_db"]) for e in evals)


def test_split_resynthesis_of_a_unit_gain_is_the_input():
    from vqblur.training.evaluate import split_changes

    cfg = tiny_config(audio=TINY_V5_AUDIO, **TINY_V5_MODEL).audio
    x = harmonic_signal(0.5, 48000, 1)
    y = split_changes(cfg, x, np.ones((190, len(x) // 80)))
    assert np.array_equal(y, x.astype(np.float64))


def test_split_resynthesis_equals_the_engine():
    """A random gain per model bin and frame, through evaluate.split_changes offline and through
    the engine's streaming split STFT: the same samples (the engine 399 samples later)."""
    from vqblur.engine.dsp import SignalConfig
    from vqblur.engine.split_stft import make_stft
    from vqblur.training.evaluate import split_changes
    from vqblur.training.features import split_magnitude

    cfg = tiny_config(audio=TINY_V5_AUDIO, **TINY_V5_MODEL).audio
    x = harmonic_signal(0.5, 48000, 4)
    n, T = len(x), len(x) // 80
    ratio = np.exp(np.random.default_rng(1).normal(0.0, 0.5, (190, T)))
    offline = split_changes(cfg, x, ratio)
    s = make_stft(SignalConfig(n_fft=320, model_bins=190, long_n_fft=1280, crossover_hz=1500.0), channels=1)
    feed = np.concatenate([x, np.zeros(2000)])[:, None].astype(np.float64)
    outs, col = [], 0
    for i in range(0, len(feed), 160):
        s.push(feed[i:i + 160])
        while s.column_ready():
            lm = s.analyse_column()
            r = ratio[:, 2 * col:2 * col + 2].T[None] if 2 * col + 2 <= T else np.ones((1, 2, 190))
            s.synthesise_column(np.log(np.maximum(np.exp(lm) - 1e-5, 0.0) * r + 1e-5))
            col += 1
        outs.append(s.pull(s._out_len))
    live = np.concatenate(outs)[399:399 + n, 0]
    sl = slice(1280, n - 1280)  # the clip's ends lack frames offline
    assert np.abs(live[sl] - offline[sl]).max() < 1e-9


def test_resynthesise_runs_a_split_model():
    from vqblur.training.evaluate import evaluate_clips, resynthesise

    m = _v5_model()
    m.normaliser.fit(torch.randn(2, 190, 16) - 4.0)
    x = harmonic_signal(0.5, 48000, 2)
    y = resynthesise(m, x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    r = evaluate_clips(m, [x])
    assert r["clips"] == 1 and np.isfinite(r["lsd_db"])


def test_split_mel_filterbank():
    from vqblur.training.mel_loss import MelLoss, split_mel_filterbank

    lay = split_layout(48000, 320, 1280, 1500.0)
    fb = split_mel_filterbank(lay)
    assert fb.shape[1] == 190 and (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    loss = MelLoss(48000, 320, 190, layout=lay)
    a = torch.randn(2, 190, 8) - 4.0
    assert float(loss(a, a)) == 0.0 and float(loss(a + 0.5, a)) > 1.0
