"""Frequency axes: the model's row warp and the knobs' perceptual axis (numpy only).

Two warps of the form ``f(u) = b * ((1 + f_max / b) ** u - 1)`` for ``u`` in 0..1 (linear
below the break frequency ``b``, logarithmic above it, like the mel scale whose break is
700 Hz):

* the **row warp** of a codec-v3 model: its 160 model bins are resampled onto 160 points
  equally spaced in ``u`` (break ``ROW_WARP_BREAK_HZ`` = 1 kHz) before the encoder, and
  back after the decoder, so the 20 code rows have equal perceptual width (row 0: 0-174 Hz,
  row 4: 0.9-1.2 kHz, row 10: 4-4.9 kHz; macro rows 0-0.9, 0.9-2.6, 2.6-5.9, 5.9-12,
  12-24 kHz) instead of 1.2 kHz each;
* the **knob axis** on which ``centre`` and ``zone_size`` are read (break
  ``KNOB_AXIS_BREAK_HZ`` = 250 Hz, 0 Hz to the top model bin): centre 0.1 is about 150 Hz,
  0.2 about 370 Hz, 0.45 about 1.7 kHz, 0.5 about 2.2 kHz, 0.75 about 7.4 kHz.

A bundle says which row warp it has (manifest ``row_warp``); bundles without one have
linear rows of ``bins / rows`` bins.
"""

from __future__ import annotations

import numpy as np

ROW_WARP_BREAK_HZ = 1000.0
KNOB_AXIS_BREAK_HZ = 250.0


def warp_hz(u, break_hz: float, f_max: float) -> np.ndarray:
    """Axis position(s) u in 0..1 -> frequency in Hz."""
    u = np.asarray(u, dtype=np.float64)
    return break_hz * ((1.0 + f_max / break_hz) ** u - 1.0)


def unwarp_hz(f, break_hz: float, f_max: float) -> np.ndarray:
    """Frequency in Hz -> axis position u (0 at 0 Hz, 1 at ``f_max``; not clipped)."""
    f = np.maximum(np.asarray(f, dtype=np.float64), 0.0)
    return np.log1p(f / break_hz) / np.log1p(f_max / break_hz)


def bin_hz(sample_rate: int, n_fft: int, bins: int) -> np.ndarray:
    """Centre frequency of model bins 0..bins-1: [bins]."""
    return np.arange(bins, dtype=np.float64) * sample_rate / n_fft


def row_warp_matrices(sample_rate: int, n_fft: int, bins: int,
                      break_hz: float = ROW_WARP_BREAK_HZ,
                      points: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The model's fixed frequency warp: ``(analysis [points, bins], synthesis [bins, points])``
    (``points`` 0: as many as ``bins``, the square warp of codec v3; codec v4 has 640 bins 37.5 Hz
    apart and 160 points).

    ``warped = analysis @ linear`` (per frame, along the bin axis): warped point j sits at
    ``warp_hz(j / (points - 1))``; it is a triangle-weighted average of the linear bins around it,
    a triangle as wide as the spacing of the warped points where they are sparser than the bins
    and as wide as one bin (linear interpolation) where they are denser. ``linear = synthesis @
    warped`` interpolates linearly between the warped points bracketing each bin. Rows sum to 1
    in both (a constant spectrum stays constant). float32.
    """
    points = int(points) or int(bins)
    f_bins = bin_hz(sample_rate, n_fft, bins)
    return warp_matrices_for_bins(f_bins, np.full(bins, sample_rate / n_fft), points, break_hz)


def warp_matrices_for_bins(f_bins: np.ndarray, width_hz: np.ndarray, points: int,
                           break_hz: float = ROW_WARP_BREAK_HZ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`row_warp_matrices` for model bins at any increasing frequencies ``f_bins [bins]``
    with spacings ``width_hz [bins]`` (the split framing's 37.5 Hz and 150 Hz bins,
    ``vqblur.common.framing``): ``(analysis [points, bins], synthesis [bins, points])``, the
    points from 0 Hz to the top bin. float32."""
    f_bins = np.asarray(f_bins, dtype=np.float64)
    bins = len(f_bins)
    f_max = float(f_bins[-1])
    f_w = warp_hz(np.arange(points) / (points - 1), break_hz, f_max)
    spacing = np.gradient(f_w)
    half = np.maximum(spacing, np.interp(f_w, f_bins, np.asarray(width_hz, dtype=np.float64)))
    tri = np.maximum(0.0, 1.0 - np.abs(f_bins[None, :] - f_w[:, None]) / half[:, None])
    analysis = tri / tri.sum(axis=1, keepdims=True)
    synthesis = np.zeros((bins, points))
    j = np.clip(np.searchsorted(f_w, f_bins, side="right") - 1, 0, points - 2)
    frac = np.clip((f_bins - f_w[j]) / (f_w[j + 1] - f_w[j]), 0.0, 1.0)
    synthesis[np.arange(bins), j] = 1.0 - frac
    synthesis[np.arange(bins), j + 1] += frac
    return analysis.astype(np.float32), synthesis.astype(np.float32)


def row_edges_hz(rows: int, sample_rate: int, n_fft: int, bins: int,
                 row_warp: str = "linear", break_hz: float = ROW_WARP_BREAK_HZ) -> np.ndarray:
    """Frequency edges of the code rows, [rows + 1] Hz (row r spans edges[r]..edges[r+1])."""
    f_max = float(bin_hz(sample_rate, n_fft, bins)[-1])
    u = np.arange(rows + 1) / rows
    if row_warp == "linear":
        return u * bins * sample_rate / n_fft
    if row_warp == "log":
        return warp_hz(u, break_hz, f_max)
    raise ValueError(f"unknown row warp {row_warp!r} (expected 'linear' or 'log')")


def row_bin_weights(edges_hz: np.ndarray, sample_rate: int, n_fft: int, bins: int,
                    bin_freqs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """How much of each model bin lies in each row: [rows, bins], columns summing to 1.

    A bin covers its centre +- half a bin; a row covers edges[r]..edges[r+1]. ``bin_freqs``:
    (centre, spacing) of each model bin when they are not ``sample_rate / n_fft`` apart (the
    split framing: ``SignalConfig.model_bin_hz``)."""
    if bin_freqs is None:
        f = bin_hz(sample_rate, n_fft, bins)
        bw = sample_rate / n_fft
    else:
        f, bw = (np.asarray(a, dtype=np.float64) for a in bin_freqs)
    lo = np.maximum(edges_hz[:-1, None], f[None, :] - bw / 2)
    hi = np.minimum(edges_hz[1:, None], f[None, :] + bw / 2)
    w = np.maximum(hi - lo, 0.0)
    w[0] += np.maximum(edges_hz[0] - (f - bw / 2), 0.0) * (f - bw / 2 < edges_hz[0])  # below row 0
    return w / np.maximum(w.sum(axis=0, keepdims=True), 1e-12)
