"""The split framing (codec v5): fine bins below a crossover, the short frame's bins above it.

numpy only; the training, the export and the engine all read the model bins from here.

Every frame is analysed twice, both windows ending at the frame's newest sample
(``vqblur.common.windows``):

* the **long** window, ``long_n_fft`` (1280) samples, asymmetric (its synthesis window spans the
  last ``n_fft`` samples): bins ``sample_rate / long_n_fft`` = 37.5 Hz apart;
* the **short** window, ``n_fft`` (320) samples, the symmetric sqrt-Hann of codec v3: bins
  150 Hz apart, and a frame's worth of time resolution.

The model bins are the long window's bins below ``crossover_hz`` (1.5 kHz: 40 bins, 0-1462.5 Hz)
followed by the short window's bins from ``crossover_hz`` up (150 bins, 1.5-23.85 kHz): 190
bins, fine where music's fundamentals and the low code rows are, and as fast as codec v3 where
the spectrum is dense. Both paths have the latency of an ``n_fft`` frame.

Synthesis (engine) puts the change back through both paths: the per-bin log-gain on the model
bins is interpolated (in frequency) onto each path's bins, and each path resynthesises
``X (gain - 1)`` weighted by a raised-cosine crossover (``TRANSITION_HZ`` wide) so that the two
weights sum to 1 at every frequency; the output is the delayed input plus both changes, so a
gain of 1 gives the input back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the crossover's raised-cosine transition (Hz), centred on ``crossover_hz``
TRANSITION_HZ = 600.0


@dataclass(frozen=True)
class SplitLayout:
    """Where each model bin comes from. ``long_bins [K]`` index the long rfft (0..K-1),
    ``short_bins [S]`` the short rfft; the model bins are ``long_bins`` then ``short_bins``."""

    sample_rate: int
    n_fft: int
    long_n_fft: int
    crossover_hz: float

    @property
    def long_bins(self) -> np.ndarray:
        df = self.sample_rate / self.long_n_fft
        return np.arange(int(np.ceil(self.crossover_hz / df - 1e-9)))

    @property
    def short_bins(self) -> np.ndarray:
        df = self.sample_rate / self.n_fft
        k0 = int(np.ceil(self.crossover_hz / df - 1e-9))
        return np.arange(k0, self.n_fft // 2)  # the Nyquist bin stays out, as in codec v3

    @property
    def model_bins(self) -> int:
        return len(self.long_bins) + len(self.short_bins)

    def bin_hz(self) -> np.ndarray:
        """Centre frequency of each model bin [model_bins] (increasing)."""
        return np.concatenate([self.long_bins * self.sample_rate / self.long_n_fft,
                               self.short_bins * self.sample_rate / self.n_fft])

    def bin_width_hz(self) -> np.ndarray:
        """Each model bin's spacing [model_bins] (37.5 Hz below the crossover, 150 above)."""
        return np.concatenate([np.full(len(self.long_bins), self.sample_rate / self.long_n_fft),
                               np.full(len(self.short_bins), self.sample_rate / self.n_fft)])

    def crossover_weight(self, f_hz) -> np.ndarray:
        """The long path's share at ``f_hz`` (1 well below the crossover, 0 well above,
        a raised cosine over ``TRANSITION_HZ``); the short path's is 1 minus it."""
        f = np.asarray(f_hz, dtype=np.float64)
        t = np.clip((f - (self.crossover_hz - TRANSITION_HZ / 2)) / TRANSITION_HZ, 0.0, 1.0)
        return 0.5 + 0.5 * np.cos(np.pi * t)


def split_layout(sample_rate: int, n_fft: int, long_n_fft: int, crossover_hz: float) -> SplitLayout | None:
    """The layout of a split framing, or None when ``long_n_fft`` is 0 (one window)."""
    if not long_n_fft:
        return None
    if long_n_fft <= n_fft or long_n_fft % n_fft:
        raise ValueError(f"long_n_fft ({long_n_fft}) must be a multiple of n_fft ({n_fft}) above it")
    if not 0.0 < crossover_hz < sample_rate / 2:
        raise ValueError(f"crossover_hz ({crossover_hz}) must lie inside 0..{sample_rate / 2} Hz")
    return SplitLayout(int(sample_rate), int(n_fft), int(long_n_fft), float(crossover_hz))
