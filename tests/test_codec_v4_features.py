"""Codec v4's features (asymmetric framing, common/windows.py): torch.stft and the numpy
reference agree, both equal the engine's streaming analysis, and the symmetric framing (v1-v3)
is bit-identical to what it was; the config's new keys (audio.synthesis_len, model.row_points)
are validated with clear messages and old configs load unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vqblur.common.errors import UserError
from vqblur.common.windows import analysis_window as np_analysis_window
from vqblur.training.config import AudioConfig, Config, from_dict, load_config
from vqblur.training.features import analysis_window, log_magnitude, numpy_log_magnitude, stft

REPO = Path(__file__).resolve().parents[1]
V4_AUDIO = {"n_fft": 1280, "synthesis_len": 320, "model_bins": 640}


def _audio(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 48000
    x = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.1 * np.sin(2 * np.pi * 147 * t)
    return (x + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_asymmetric_torch_and_numpy_features_agree():
    cfg = AudioConfig(**V4_AUDIO)
    audio = _audio(cfg.hop * 37)
    t = log_magnitude(torch.from_numpy(audio)[None], cfg)[0].numpy()
    n = numpy_log_magnitude(audio, cfg)
    assert t.shape == n.shape == (640, 37)
    assert np.abs(t - n).max() < 1e-3
    # the window really is the long asymmetric one (not the symmetric sqrt-Hann of 1280)
    w = analysis_window(cfg)
    assert torch.allclose(w.double(), torch.from_numpy(np_analysis_window(1280, 320)), atol=1e-7)
    assert w.argmax() > 1280 - 320  # its peak sits in the last 320 samples (the synthesis span)


def test_asymmetric_bins_are_37_5_hz_apart():
    """A 112.5 Hz tone (bin 3 of v4, between v3's bins 0 and 1) peaks in its own bin."""
    cfg = AudioConfig(**V4_AUDIO)
    t = np.arange(48000) / 48000
    lm = numpy_log_magnitude((0.5 * np.sin(2 * np.pi * 112.5 * t)).astype(np.float32), cfg)
    assert int(np.argmax(lm[:, 100:].mean(1))) == 3


def test_features_match_the_engine_streaming_analysis():
    from vqblur.engine.dsp import SignalConfig, StreamingStft

    cfg = AudioConfig(**V4_AUDIO)
    audio = _audio(cfg.hop * 2 * 20, seed=1)
    ref = numpy_log_magnitude(audio, cfg)  # [640, 40]
    s = StreamingStft(SignalConfig(n_fft=1280, model_bins=640, synthesis_len=320), channels=1)
    s.push(audio[:, None].astype(np.float64))
    cols = []
    while s.column_ready():
        cols.append(np.array(s.analyse_column()[0]))  # [F, bins]
        s.synthesise_column(cols[-1][None])
    got = np.concatenate(cols, axis=0).T  # [bins, T]
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-4


def test_symmetric_features_are_bit_identical_to_before():
    cfg = AudioConfig()
    audio = _audio(cfg.hop * 29, seed=2)
    x = torch.from_numpy(audio)[None]
    # stft: torch's own periodic sqrt-Hann, as before codec v4
    before = torch.stft(torch.nn.functional.pad(x, (cfg.n_fft - cfg.hop, 0)), n_fft=cfg.n_fft,
                        hop_length=cfg.hop, win_length=cfg.n_fft,
                        window=torch.hann_window(cfg.n_fft, periodic=True).sqrt(), center=False,
                        return_complex=True)
    assert torch.equal(stft(x, cfg), before)
    # numpy: the old inline window
    xp = np.concatenate([np.zeros(cfg.n_fft - cfg.hop), audio.astype(np.float64)])
    n = (len(xp) - cfg.n_fft) // cfg.hop + 1
    idx = np.arange(cfg.n_fft)[None, :] + cfg.hop * np.arange(n)[:, None]
    win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft))
    old = np.log(np.abs(np.fft.rfft(xp[idx] * win, axis=1)[:, :160]) + cfg.log_eps).T.astype(np.float32)
    assert np.array_equal(numpy_log_magnitude(audio, cfg), old)
    # synthesis_len = n_fft is the symmetric framing too
    assert torch.equal(stft(x, AudioConfig(synthesis_len=320)), before)


def test_v4_config_file_and_old_configs():
    cfg = load_config(REPO / "training/configs/v4.toml")
    assert (cfg.audio.n_fft, cfg.audio.synthesis_len, cfg.audio.model_bins) == (1280, 320, 640)
    assert (cfg.model.row_points, cfg.row_points, cfg.rows, cfg.latency_samples) == (160, 160, 20, 399)
    assert cfg.train.init_from == "training/default_run/model.pt"  # the v3 weights a checkout has
    assert (REPO / cfg.train.init_from).is_file()
    # a codec-v3 config (no new keys) loads unchanged: symmetric, as many points as bins
    old = json.loads((REPO / "training/default_run/config.json").read_text())
    assert old["model"]["row_warp"] == "log"  # (the weights init_from names are v3's)
    v3 = from_dict(old)
    assert (v3.audio.synthesis_len, v3.model.row_points, v3.row_points, v3.rows) == (0, 0, 160, 20)
    assert v3.latency_samples == 399 and not v3.audio.asymmetric
    # and the new keys round-trip through a config dict (as checkpoints store it)
    assert from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    assert Config().to_dict()["audio"]["synthesis_len"] == 0


@pytest.mark.parametrize("sets, words", [
    (["audio.synthesis_len=320"], "row_warp"),  # asymmetric needs the log warp (n_fft 1280 below)
    (["model.row_warp=log", "audio.synthesis_len=321"], "even"),
    (["model.row_warp=log", "audio.synthesis_len=360"], "hop"),
    (["model.row_warp=log", "audio.synthesis_len=80"], "at least twice"),
    (["model.row_warp=log", "audio.synthesis_len=2560"], "n_fft"),
    (["model.row_warp=log", "model.row_points=700"], "at most audio.model_bins"),
    (["model.row_warp=log", "model.row_points=100"], "divisible by 8"),
    (["model.row_points=160"], "row_warp"),  # fewer points than bins with linear rows
])
def test_inconsistent_v4_configs_are_refused(sets, words):
    base = ["audio.n_fft=1280", "audio.model_bins=640"]
    with pytest.raises(UserError, match=words):
        load_config(None, base + sets)
