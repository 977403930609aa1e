"""STFT windows the engine (numpy) and the training (torch) share (numpy only, float64).

Two framings, both with frame k ending at sample ``(k + 1) hop - 1`` (the newest input):

* **symmetric** (codec v1-v3): a periodic sqrt-Hann of ``n_fft`` samples for analysis and
  synthesis (times the overlap-add gain);
* **asymmetric** (codec v4, ``synthesis_len < n_fft``): a long analysis window of ``n_fft``
  samples -- the rising half of a sqrt-Hann ``2 n_fft - synthesis_len`` long, then the falling
  half of a sqrt-Hann ``synthesis_len`` long -- gives bins ``sample_rate / n_fft`` apart, while
  the synthesis window is zero except over the frame's last ``synthesis_len`` samples, where
  analysis x synthesis is a periodic Hann of ``synthesis_len`` (times the overlap-add gain).
  So the latency is that of a ``synthesis_len`` frame (it is set by the synthesis window), and
  the frequency resolution that of the long one: finer low-frequency bins at the same latency
  (Mauler & Martin 2007; Wang et al. 2022, "STFT-domain neural speech enhancement with very
  low algorithmic latency").

An unchanged spectrum is given back exactly by either framing (overlap-add of analysis x
synthesis is 1 at every sample).
"""

from __future__ import annotations

import numpy as np


def sqrt_hann(n: int) -> np.ndarray:
    """Periodic sqrt-Hann window of length n (float64)."""
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n))


def is_asymmetric(n_fft: int, synthesis_len: int) -> bool:
    return 0 < int(synthesis_len) < int(n_fft)


def analysis_window(n_fft: int, synthesis_len: int = 0) -> np.ndarray:
    """The analysis window [n_fft] (``synthesis_len`` 0 or ``n_fft``: the symmetric sqrt-Hann)."""
    N, M = int(n_fft), int(synthesis_len)
    if not is_asymmetric(N, M):
        return sqrt_hann(N)
    if M % 2:
        raise ValueError("synthesis_len must be even")
    rise = N - M // 2  # samples of the long rising half
    up = np.sqrt(0.5 - 0.5 * np.cos(np.pi * np.arange(rise) / rise))
    return np.concatenate([up, sqrt_hann(M)[M // 2:]])


def ola_gain(product: np.ndarray, hop: int) -> float:
    """1 / the overlap-add (at ``hop``) of analysis x synthesis ``product``; ValueError when it is
    not constant."""
    n = len(product)
    if n % hop:
        raise ValueError("hop must divide the window length")
    s = product.reshape(n // hop, hop).sum(axis=0)
    if not np.allclose(s, s[0], rtol=1e-9, atol=1e-12):
        raise ValueError("window/hop pair does not overlap-add to a constant")
    return 1.0 / float(s[0])


def synthesis_window(n_fft: int, hop: int, synthesis_len: int = 0) -> np.ndarray:
    """The synthesis window [n_fft], overlap-add gain included (zero before the last
    ``synthesis_len`` samples in the asymmetric framing)."""
    N, M = int(n_fft), int(synthesis_len)
    a = analysis_window(N, M)
    if not is_asymmetric(N, M):
        return a * ola_gain(a * a, hop)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(M) / M)
    out = np.zeros(N)
    out[N - M:] = hann / a[N - M:] * ola_gain(hann, hop)
    return out
