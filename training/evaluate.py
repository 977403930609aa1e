"""Offline listening-grade evaluation of a trained model (PyTorch), used by the ablation.

The model's log-magnitudes are put back with the input's own phase (as the engine does),
overlap-added with the framing's synthesis window (the sqrt-Hann pair, or codec v4's asymmetric
one), and compared with the input on audio:

* spectral convergence (dB) and log-spectral distance over an 80 dB range below the clip's
  loudest bin (dB), both on a Hann STFT with n_fft 2048, hop 512, and the level change
  (output RMS against input RMS, dB): the bench's own definitions (``measure_pair``).

``detail`` applies the engine's detail formula ``dec(b) + detail * (L_in - dec(c))``; here
no zone is blurred (b = c), so detail 1 is the identity and this evaluates detail 0.
"""

from __future__ import annotations

import numpy as np
import torch

from vqblur.common.spectral import audio_quality
from vqblur.common.windows import is_asymmetric, synthesis_window
from vqblur.training.features import log_magnitude, stft
from vqblur.training.model import VQVAE


def measure_pair(ref: np.ndarray, est: np.ndarray) -> dict[str, float]:
    """The bench's definitions (vqblur.common.spectral): SC, LSD over 80 dB, level change."""
    q = audio_quality(ref, est)
    return {"sc_db": q["sc_db"], "lsd_db": q["lsd_db"], "level_db": q["level_change_db"]}


@torch.no_grad()
def resynthesise(model: VQVAE, audio: np.ndarray) -> np.ndarray:
    """audio [n] -> the codec's resynthesis [n] with the input's phase (zone 0, detail 0)."""
    cfg = model.cfg.audio
    F = cfg.frames_per_column
    x = torch.from_numpy(audio.astype(np.float32))[None]
    n = x.shape[1]
    pad = (-n) % (cfg.hop * F)
    x = torch.nn.functional.pad(x, (0, pad))
    spec = stft(x, cfg)[0]  # [n_bins, T] complex
    lm = log_magnitude(x, cfg)  # [1, model_bins, T]
    model.eval()
    dec = model.decode_all(model.encode_all(lm))[0]  # [model_bins, T]
    mag = spec.abs().clone()
    mag[: cfg.model_bins] = torch.clamp(torch.exp(dec) - cfg.log_eps, min=0.0)
    out_spec = torch.polar(mag, torch.angle(spec)).numpy()
    frames = np.fft.irfft(out_spec.T, n=cfg.n_fft, axis=1)  # [T, n_fft]
    T = frames.shape[0]
    total = (T - 1) * cfg.hop + cfg.n_fft
    y = np.zeros(total)
    idx = np.arange(cfg.n_fft)[None, :] + cfg.hop * np.arange(T)[:, None]
    if is_asymmetric(cfg.n_fft, cfg.synthesis_len):  # codec v4: common/windows.py (gain included)
        frames *= synthesis_window(cfg.n_fft, cfg.hop, cfg.synthesis_len)
        np.add.at(y, idx, frames)
    else:
        win = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft))
        frames *= win
        np.add.at(y, idx, frames)
        y /= (cfg.n_fft / cfg.hop) / 2.0  # OLA gain of the sqrt-Hann pair
    return y[cfg.n_fft - cfg.hop: cfg.n_fft - cfg.hop + n].astype(np.float32)


def evaluate_clips(model: VQVAE, clips: list[np.ndarray]) -> dict[str, float]:
    """Medians over clips of :func:`measure_pair` on the codec's resynthesis."""
    rows = [measure_pair(c, resynthesise(model, c)) for c in clips if len(c) >= 2048]
    return {k: float(np.median([r[k] for r in rows])) for k in ("sc_db", "lsd_db", "level_db")} | {"clips": len(rows)}
