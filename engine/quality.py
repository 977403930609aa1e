"""Spectral quality measures (numpy only), shared by training evaluation and `vqblur bench`.

Both compare magnitudes S (reference) and S_hat (estimate), shaped [bins, frames]:
* spectral convergence  SC  = 20 log10(||S - S_hat||_F / ||S||_F)              (dB, lower is better)
* log-spectral distance LSD = mean_t sqrt(mean_f (10 log10((S^2+e)/(S_hat^2+e)))^2)  (dB)
  with e = 1e-10 (a -100 dB power floor, so digital silence does not dominate).
"""

from __future__ import annotations

import numpy as np

POWER_FLOOR = 1e-10


def spectral_convergence_db(ref: np.ndarray, est: np.ndarray) -> float:
    num = np.linalg.norm(ref - est)
    den = np.linalg.norm(ref)
    return float(20 * np.log10(max(num, 1e-12) / max(den, 1e-12)))


def log_spectral_distance_db(ref: np.ndarray, est: np.ndarray) -> float:
    diff = 10 * np.log10((ref**2 + POWER_FLOOR) / (est**2 + POWER_FLOOR))
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def stft_magnitude(audio: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Hann-windowed magnitude spectrogram [n_fft/2+1, frames] of a mono signal, for evaluation."""
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    n_frames = 1 + (len(audio) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = np.hanning(n_fft + 1)[:-1]
    return np.abs(np.fft.rfft(audio[idx] * window, axis=1)).T


def audio_quality(ref: np.ndarray, est: np.ndarray, n_fft: int = 2048, hop: int = 512) -> dict[str, float]:
    """SC and LSD (dB) between two aligned mono signals of equal length."""
    n = min(len(ref), len(est))
    s, s_hat = stft_magnitude(ref[:n], n_fft, hop), stft_magnitude(est[:n], n_fft, hop)
    return {"sc_db": spectral_convergence_db(s, s_hat), "lsd_db": log_spectral_distance_db(s, s_hat)}
