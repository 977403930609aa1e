"""Codec v5's features (the split framing, common/framing.py): the model bins are the long
asymmetric 1280-sample window's 40 bins below 1.5 kHz, then the 320-sample sqrt-Hann's 150 bins
above; torch and numpy agree, both equal a hand computation from the two rffts and the engine's
streaming analysis, the short part is bit-identical to codec v3's features, and the config's new
keys (audio.long_n_fft, audio.crossover_hz) are validated with clear messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vqblur.common.errors import UserError
from vqblur.common.windows import analysis_window as np_analysis_window
from vqblur.training.config import AudioConfig, Config, from_dict, load_config
from vqblur.training.features import history_samples, log_magnitude, numpy_log_magnitude

REPO = Path(__file__).resolve().parents[1]
V5_AUDIO = {"n_fft": 320, "long_n_fft": 1280, "crossover_hz": 1500.0, "model_bins": 190}


def _audio(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 48000
    x = 0.2 * np.sin(2 * np.pi * 110 * t) + 0.1 * np.sin(2 * np.pi * 2310 * t)
    return (x + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _by_hand(audio: np.ndarray) -> np.ndarray:
    """The two rffts, frame k ending at sample (k + 1) 80 - 1 of the zero-padded clip."""
    x = audio.astype(np.float64)
    T = len(x) // 80
    rows = []
    for k in range(T):
        end = (k + 1) * 80
        long = np.concatenate([np.zeros(1280), x])[1280 + end - 1280: 1280 + end]
        short = long[-320:]
        X_long = np.fft.rfft(long * np_analysis_window(1280, 320))
        X_short = np.fft.rfft(short * np_analysis_window(320))
        rows.append(np.concatenate([np.abs(X_long[:40]), np.abs(X_short[10:160])]))
    return np.log(np.array(rows).T + 1e-5)


def test_split_torch_numpy_and_hand_computation_agree():
    cfg = AudioConfig(**V5_AUDIO)
    audio = _audio(cfg.hop * 37)
    t = log_magnitude(torch.from_numpy(audio)[None], cfg)[0].numpy()
    n = numpy_log_magnitude(audio, cfg)
    assert t.shape == n.shape == (190, 37)
    hand = _by_hand(audio)
    assert np.abs(n - hand).max() < 1e-5
    assert np.abs(t - hand).max() < 1e-3  # float32 STFTs
    # the long window's bins are computed in float64, as the engine does (float32 rounding there
    # flipped codes at near ties in export parity): only the result's float32 rounding is left
    assert np.abs(t[:40] - hand[:40]).max() < 2e-6
    assert np.abs(t - n).max() < 1e-3


def test_split_pad_left_false_carries_the_long_history():
    cfg = AudioConfig(**V5_AUDIO)
    assert history_samples(cfg) == 1200 and history_samples(AudioConfig()) == 240
    audio = _audio(cfg.hop * 16, seed=3)
    padded = np.concatenate([np.zeros(1200, np.float32), audio])
    a = log_magnitude(torch.from_numpy(audio)[None], cfg)
    b = log_magnitude(torch.from_numpy(padded)[None], cfg, pad_left=False)
    assert a.shape == b.shape == (1, 190, 16)
    assert torch.equal(a, b)


def test_split_bins_fine_below_and_v3_above():
    cfg = AudioConfig(**V5_AUDIO)
    lay = cfg.split_layout()
    assert lay.model_bins == 190 and list(lay.long_bins[[0, -1]]) == [0, 39]
    assert list(lay.short_bins[[0, -1]]) == [10, 159]
    # a 112.5 Hz tone (between v3's bins 0 and 1) peaks in its own 37.5 Hz bin
    t = np.arange(48000) / 48000
    lm = numpy_log_magnitude((0.5 * np.sin(2 * np.pi * 112.5 * t)).astype(np.float32), cfg)
    assert int(np.argmax(lm[:, 100:].mean(1))) == 3
    # above the crossover the features are codec v3's, bit for bit
    audio = _audio(cfg.hop * 29, seed=2)
    x = torch.from_numpy(audio)[None]
    v3 = log_magnitude(x, AudioConfig())
    assert torch.equal(log_magnitude(x, cfg)[:, 40:], v3[:, 10:160])


def test_split_features_match_the_engine_streaming_analysis():
    from vqblur.engine.dsp import SignalConfig
    from vqblur.engine.split_stft import make_stft

    cfg = AudioConfig(**V5_AUDIO)
    audio = _audio(cfg.hop * 2 * 20, seed=1)
    ref = numpy_log_magnitude(audio, cfg)  # [190, 40]
    s = make_stft(SignalConfig(n_fft=320, model_bins=190, long_n_fft=1280, crossover_hz=1500.0), channels=1)
    s.push(audio[:, None].astype(np.float64))
    cols = []
    while s.column_ready():
        cols.append(np.array(s.analyse_column()[0]))  # [F, bins]
        s.synthesise_column(cols[-1][None])
    got = np.concatenate(cols, axis=0).T
    assert got.shape[0] == 190 and got.shape[1] > 30
    assert np.abs(got - ref[:, : got.shape[1]]).max() < 1e-4


def test_v5_config_file_and_old_configs():
    cfg = load_config(REPO / "training/configs/v5.toml")
    a = cfg.audio
    assert (a.n_fft, a.long_n_fft, a.crossover_hz, a.synthesis_len, a.model_bins) == (320, 1280, 1500.0, 0, 190)
    assert (cfg.model.row_points, cfg.rows, cfg.latency_samples, cfg.model.row_warp) == (160, 20, 399, "log")
    assert cfg.train.init_from == "training/default_run/model.pt" and cfg.train.threads == 1
    assert (REPO / cfg.train.init_from).is_file()  # a fresh checkout can start it
    assert (cfg.train.lr, cfg.train.lr_min, cfg.train.max_minutes, cfg.train.checkpoint_every) == (3e-4, 3e-5, 600, 200)
    assert a.split and a.split_layout().model_bins == 190
    # a codec-v3 config (no new keys) loads unchanged: one window
    v3 = from_dict(json.loads((REPO / "training/default_run/config.json").read_text()))
    assert (v3.audio.long_n_fft, v3.audio.crossover_hz, v3.latency_samples) == (0, 1500.0, 399)
    assert v3.audio.split_layout() is None and not v3.audio.split
    v4 = load_config(REPO / "training/configs/v4.toml")
    assert v4.audio.long_n_fft == 0 and v4.audio.model_bins == 640
    assert from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()
    assert Config().to_dict()["audio"]["long_n_fft"] == 0


@pytest.mark.parametrize("sets, words", [
    (["audio.synthesis_len=160"], "synthesis_len .* must be 0 with the split framing"),
    (["audio.model_bins=160"], "must be the split framing's 190"),
    (["audio.crossover_hz=3000"], "must be the split framing's 220 \\(80 bins"),
    (["model.row_warp=linear"], "row_warp"),
    (["audio.long_n_fft=1000"], "multiple of n_fft"),
    (["audio.long_n_fft=320"], "multiple of n_fft"),
    (["audio.crossover_hz=30000"], "crossover_hz"),
    (["audio.long_n_fft=-1"], "long_n_fft"),
    (["model.row_points=100"], "divisible by 8"),
    (["model.row_points=0"], "divisible by 8"),  # 190 points
])
def test_inconsistent_v5_configs_are_refused(sets, words):
    base = ["audio.long_n_fft=1280", "audio.model_bins=190", "model.row_warp=log", "model.row_points=160"]
    with pytest.raises(UserError, match=words):
        load_config(None, base + sets)
