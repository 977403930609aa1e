"""Spectral quality measures (numpy only), shared by training evaluation, export and `vqblur bench`.

Both compare magnitudes S (reference) and S_hat (estimate), shaped [bins, frames]:

* spectral convergence  SC  = 20 log10(||S - S_hat||_F / ||S||_F)             (dB, lower is better)
* log-spectral distance LSD = mean_t sqrt(mean_f (P_dB - P_hat_dB)^2)          (dB)

The bench's LSD (:func:`lsd_range_db`, ``range_db`` = :data:`LSD_RANGE_DB` = 80) floors both
power spectrograms at 80 dB below the **reference clip's loudest bin**, so a quiet clip and a
loud one are judged over the same dynamic range and inaudible noise far below the music does
not dominate. The older figure (:func:`log_spectral_distance_db`, what training's validation
logs) floors the power at an absolute 1e-10 (-100 dB re full-scale magnitude 1); the bench
reports it too, labelled ``lsd_db_floor100``. Both use n_fft 2048, hop 512, a periodic Hann
window (:func:`stft_magnitude`).
"""

from __future__ import annotations

import numpy as np

POWER_FLOOR = 1e-10
LSD_RANGE_DB = 80.0
EVAL_N_FFT = 2048
EVAL_HOP = 512


def spectral_convergence_db(ref: np.ndarray, est: np.ndarray) -> float:
    """SC in dB of magnitudes ``est`` against ``ref`` (any equal shapes)."""
    num = np.linalg.norm(ref - est)
    den = np.linalg.norm(ref)
    return float(20 * np.log10(max(num, 1e-12) / max(den, 1e-12)))


def log_spectral_distance_db(ref: np.ndarray, est: np.ndarray) -> float:
    """LSD in dB with an absolute power floor (1e-10); magnitudes [bins, frames]."""
    diff = 10 * np.log10((ref**2 + POWER_FLOOR) / (est**2 + POWER_FLOOR))
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def power_db(mag: np.ndarray, floor_db: float) -> np.ndarray:
    """10 log10(|S|^2), floored at ``floor_db``; [bins, frames] -> same shape."""
    return np.maximum(10.0 * np.log10(np.maximum(np.asarray(mag, np.float64) ** 2, 1e-30)), floor_db)


def range_floor_db(ref: np.ndarray, range_db: float = LSD_RANGE_DB) -> float:
    """The floor ``range_db`` below the loudest bin of ``ref`` (magnitudes), in power dB."""
    peak = float(np.max(np.asarray(ref, np.float64) ** 2)) if np.size(ref) else 0.0
    return 10.0 * np.log10(max(peak, 1e-30)) - float(range_db)


def lsd_range_db(ref: np.ndarray, est: np.ndarray, range_db: float = LSD_RANGE_DB) -> float:
    """LSD in dB over a ``range_db`` range below the reference's loudest bin (the bench's LSD).

    ``ref``, ``est``: magnitudes [bins, frames]; both are floored at the same level."""
    floor = range_floor_db(ref, range_db)
    diff = power_db(ref, floor) - power_db(est, floor)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def stft_magnitude(audio: np.ndarray, n_fft: int = EVAL_N_FFT, hop: int = EVAL_HOP) -> np.ndarray:
    """Hann-windowed magnitude spectrogram [n_fft/2+1, frames] of a mono signal, for evaluation."""
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) < n_fft:
        audio = np.pad(audio, (0, n_fft - len(audio)))
    n_frames = 1 + (len(audio) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    window = np.hanning(n_fft + 1)[:-1]
    return np.abs(np.fft.rfft(audio[idx] * window, axis=1)).T


def rms_db(x: np.ndarray) -> float:
    """RMS level in dB re full scale 1.0 (-inf for silence)."""
    r = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if np.size(x) else 0.0
    return 20.0 * np.log10(r) if r > 0 else -np.inf


def level_change_db(ref: np.ndarray, est: np.ndarray) -> float:
    """Output level against input level: 20 log10(rms(est) / rms(ref)) in dB (aligned, mono).

    NaN when the reference is digitally silent."""
    n = min(len(ref), len(est))
    a, b = rms_db(ref[:n]), rms_db(est[:n])
    if not np.isfinite(a):
        return float("nan")
    return float(b - a) if np.isfinite(b) else float("-inf")


def audio_quality(ref: np.ndarray, est: np.ndarray, n_fft: int = EVAL_N_FFT, hop: int = EVAL_HOP) -> dict[str, float]:
    """SC, LSD (80 dB range), the old LSD (absolute floor) and the level change (dB) between two
    aligned mono signals (the shorter length is used)."""
    n = min(len(ref), len(est))
    s, s_hat = stft_magnitude(ref[:n], n_fft, hop), stft_magnitude(est[:n], n_fft, hop)
    return {"sc_db": spectral_convergence_db(s, s_hat), "lsd_db": lsd_range_db(s, s_hat),
            "lsd_db_floor100": log_spectral_distance_db(s, s_hat),
            "level_change_db": level_change_db(ref[:n], est[:n])}
