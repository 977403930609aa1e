"""The mel scale (HTK formula) and its triangular filterbank (numpy only).

One filterbank for the card's mel-LSD (``vqblur.measure.mel``) and the fine-tune's mel loss
(``vqblur.training.mel_loss``), so what training optimises is what the card measures.
"""

from __future__ import annotations

import numpy as np


def hz_to_mel(f) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def mel_to_hz(m) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float,
                   f_max: float | None = None) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_fft/2+1]``, peak 1, evenly spaced on the mel scale from
    ``f_min`` to ``f_max`` (default Nyquist); a band narrower than a bin takes the nearest bin,
    so every band is at least one bin wide."""
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[m] = np.clip(np.minimum(up, down), 0.0, None)
        if not fb[m].any():
            fb[m, int(np.argmin(np.abs(freqs - c)))] = 1.0
    return fb
