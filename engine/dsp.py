"""Streaming STFT analysis / synthesis with the framing of docs/ARCHITECTURE.md.

Frame k covers input samples ``[(k+1)R - N, (k+1)R - 1]`` (zeros before the first sample).
Code column c is frames (F c, ..., F c + F - 1); it is analysed as soon as its last sample has
arrived. Analysis: periodic sqrt-Hann window, ``rfft``, ``logmag = ln(|X| + eps)`` of bins
``0..model_bins-1``; the complex spectrum (its phase) is kept. Synthesis: decoded magnitude
``max(exp(logmag) - eps, 0)`` times the kept input phase (bins >= model_bins keep the input's
own magnitude), ``irfft``, the same window, overlap-add with gain ``1 / sum_k w^2[n + kR]``
(1/2 for N = 4R), so that analysis + synthesis of an unchanged spectrum is the identity.

The output FIFO starts with ``D = N - 1 + (F - 1) R`` zeros and the reconstruction of negative
times (frames overlapping the zeros before the first sample) is dropped, so that
``y[n] = x[n - D]`` exactly for an identity codec, whatever the host block sizes are.

All channels are processed together (arrays ``[channels, ...]``); every channel has its own
history. Computation is float64; buffers are preallocated (they grow only if a caller pushes
more than ``max_block`` samples at once, which :class:`vqblur.engine.core.Engine` never does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SignalConfig:
    """The signal parameters the DSP and the codecs agree on (from a bundle's manifest)."""

    sample_rate: int = 48000
    n_fft: int = 320
    hop: int = 80
    frames_per_column: int = 2
    model_bins: int = 160
    log_eps: float = 1e-5
    rows: int = 20
    codebook_size: int = 256

    @property
    def latency_samples(self) -> int:
        return self.n_fft - 1 + (self.frames_per_column - 1) * self.hop

    @property
    def column_samples(self) -> int:
        return self.frames_per_column * self.hop

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @classmethod
    def from_bundle(cls, bundle) -> "SignalConfig":
        return cls(
            sample_rate=bundle.sample_rate,
            n_fft=bundle.n_fft,
            hop=bundle.hop,
            frames_per_column=bundle.frames_per_column,
            model_bins=bundle.model_bins,
            log_eps=bundle.log_eps,
            rows=bundle.rows,
            codebook_size=bundle.codebook_size,
        )


def sqrt_hann(n: int) -> np.ndarray:
    """Periodic sqrt-Hann window of length n (float64)."""
    return np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n))


def ola_gain(window: np.ndarray, hop: int) -> float:
    """Synthesis gain so that analysis * synthesis windows overlap-add to exactly 1."""
    n = len(window)
    w2 = window * window
    s = np.zeros(hop)
    for k in range(n // hop):
        s += w2[k * hop : (k + 1) * hop]
    if not np.allclose(s, s[0], rtol=1e-9, atol=1e-12):
        raise ValueError("window/hop pair does not overlap-add to a constant")
    return 1.0 / float(s[0])


class StreamingStft:
    """Input FIFO -> per-column analysis -> (codec) -> synthesis -> overlap-add -> output FIFO.

    Usage per host block (the Engine does this)::

        stft.push(x)                         # x: [n, channels] float
        while stft.column_ready():
            logmag = stft.analyse_column()   # [channels, F, model_bins] float64 (a view)
            ...                              # codec
            stft.synthesise_column(logmag_out)
        y = stft.pull(n)                     # [n, channels] float64
    """

    # |X| of a full-scale input is at most sum(w) ~ 0.64 N: clamp decoded log-magnitudes 12 dB
    # above that so a wild decoder cannot blow up the output.
    def __init__(self, cfg: SignalConfig, channels: int = 1, max_block: int = 4096):
        if cfg.n_fft % cfg.hop:
            raise ValueError("hop must divide n_fft")
        self.cfg = cfg
        self.channels = int(channels)
        N, R, F = cfg.n_fft, cfg.hop, cfg.frames_per_column
        self.N, self.R, self.F = N, R, F
        self.mb = cfg.model_bins
        self.eps = float(cfg.log_eps)
        self.window = sqrt_hann(N)
        self.gain = ola_gain(self.window, R)
        self.syn_window = self.window * self.gain
        self.logmag_max = float(np.log(4.0 * self.window.sum()))
        self.logmag_min = float(np.log(self.eps))
        self.latency = cfg.latency_samples
        self.col_len = N + (F - 1) * R  # input samples one column's frames span
        self.col_hop = F * R
        self._alloc(max_block)
        self.reset()

    def _alloc(self, max_block: int) -> None:
        C = self.channels
        self.max_block = int(max_block)
        self._in = np.zeros((C, self.col_len + self.max_block))
        self._out = np.zeros((C, self.latency + self.max_block + 2 * self.col_hop + self.N))
        self._acc = np.zeros((C, self.N))
        self._spec = np.zeros((C, self.F, self.cfg.n_bins), np.complex128)
        self._absx = np.zeros((C, self.F, self.cfg.n_bins))
        self._logmag = np.zeros((C, self.F, self.mb))
        self._frames = np.zeros((C, self.F, self.N))
        self._mag = np.zeros((C, self.F, self.cfg.n_bins))
        self._ratio = np.zeros((C, self.F, self.cfg.n_bins))

    def reset(self) -> None:
        """Clear all audio history: as if freshly made."""
        self._in[:] = 0.0
        # The first frame reaches N - R samples before time 0: that much zero history.
        self._in_len = self.N - self.R
        self._in_read = 0
        self._acc[:] = 0.0
        self._out[:, : self.latency] = 0.0
        self._out_len = self.latency
        # Overlap-added samples of negative time (frames over the leading zeros) are dropped.
        self._discard = self.N - self.R

    # ---- input side -------------------------------------------------------------------
    def push(self, x: np.ndarray) -> None:
        """Append x ([n, channels]) to the input FIFO."""
        n = x.shape[0]
        if n == 0:
            return
        # compact: move unread samples to the front
        if self._in_read:
            keep = self._in_len - self._in_read
            self._in[:, :keep] = self._in[:, self._in_read : self._in_len]
            self._in_len, self._in_read = keep, 0
        if self._in_len + n > self._in.shape[1]:
            self._grow(n)
        self._in[:, self._in_len : self._in_len + n] = x.T
        self._in_len += n

    def _grow(self, n: int) -> None:
        old_in, old_out = self._in, self._out
        self._alloc(max(n, 2 * self.max_block))
        self._in[:, : old_in.shape[1]] = old_in
        self._out[:, : old_out.shape[1]] = old_out

    def column_ready(self) -> bool:
        return self._in_len - self._in_read >= self.col_len

    def analyse_column(self) -> np.ndarray:
        """Window + rfft the next column's F frames; returns logmag [channels, F, model_bins]."""
        s = self._in_read
        for f in range(self.F):
            a = s + f * self.R
            np.multiply(self._in[:, a : a + self.N], self.window, out=self._frames[:, f])
        self._spec[:] = np.fft.rfft(self._frames, axis=-1)
        np.abs(self._spec, out=self._absx)
        np.add(self._absx[..., : self.mb], self.eps, out=self._logmag)
        np.log(self._logmag, out=self._logmag)
        self._in_read += self.col_hop
        return self._logmag

    # ---- output side ------------------------------------------------------------------
    def synthesise_column(self, logmag: np.ndarray) -> None:
        """Decoded logmag [channels, F, model_bins] x kept phase -> irfft -> OLA -> output FIFO."""
        mag = self._mag
        m = mag[..., : self.mb]
        # clamp (+-inf go to the bounds); NaN survives clip, so check once and replace it
        np.clip(logmag, self.logmag_min, self.logmag_max, out=m)
        if math.isnan(m.sum()):
            m[np.isnan(m)] = self.logmag_min
        np.exp(m, out=m)
        m -= self.eps
        np.maximum(m, 0.0, out=m)
        mag[..., self.mb :] = self._absx[..., self.mb :]
        # X_out = X * mag/|X|; where |X| == 0 (no phase) use phase 0.
        tiny = 1e-300
        np.maximum(self._absx, tiny, out=self._ratio)
        np.divide(mag, self._ratio, out=self._ratio)
        spec = self._spec
        spec *= self._ratio
        if self._absx.min() < tiny:
            zero = self._absx < tiny
            spec[zero] = mag[zero]
        frames = np.fft.irfft(spec, n=self.N, axis=-1)
        frames *= self.syn_window
        R = self.R
        for f in range(self.F):
            self._acc += frames[:, f]
            self._emit(self._acc[:, :R])
            self._acc[:, :-R] = self._acc[:, R:]
            self._acc[:, -R:] = 0.0

    def _emit(self, block: np.ndarray) -> None:
        n = block.shape[1]
        if self._discard:
            d = min(self._discard, n)
            self._discard -= d
            block = block[:, d:]
            n -= d
            if n == 0:
                return
        self._out[:, self._out_len : self._out_len + n] = block
        self._out_len += n

    def available(self) -> int:
        return self._out_len

    def pull(self, n: int) -> np.ndarray:
        """Take n samples from the output FIFO: [n, channels] float64 (a new array)."""
        if n > self._out_len:  # cannot happen with the framing above; keep length anyway
            self._out[:, self._out_len : n] = 0.0
            self._out_len = n
        y = self._out[:, :n].T.copy()
        rest = self._out_len - n
        self._out[:, :rest] = self._out[:, n : self._out_len]
        self._out_len = rest
        return y
