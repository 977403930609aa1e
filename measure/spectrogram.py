"""Spectrogram pictures on the knobs' perceptual frequency axis (numpy; matplotlib only to draw).

The demo picture (``vqblur demo``) and the listening page (``measure/listen.py``) draw their
spectrograms from 0 Hz to the Nyquist frequency (24 kHz at the model's 48 kHz) on the axis on
which the ``centre`` and ``zone_size`` knobs are read (:mod:`vqblur.common.freqaxis`: linear
below ``KNOB_AXIS_BREAK_HZ`` = 250 Hz, logarithmic above), so the low octaves, where most of a
sound's energy is, get their share of the picture, and a knob position reads as a height.
"""

from __future__ import annotations

import numpy as np

from vqblur.common.freqaxis import KNOB_AXIS_BREAK_HZ, unwarp_hz, warp_hz

SPEC_RANGE_DB = (-100.0, 0.0)  #: colour scale, dB re a full-scale sine
#: frequencies labelled on the axis (Hz) besides 0 and the top, where they lie well below the top
TICKS_HZ = (150, 500, 1000, 2000, 5000, 10000)


def spectrogram_db(sig: np.ndarray, sr: int, nfft: int = 1024,
                   hop: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitude spectrogram in dB re a full-scale sine (a sine of amplitude 1 reads 0 dB).

    Frames are centred on ``k * hop`` for k = 0 .. ceil(n / hop) (the signal is zero-padded by
    ``nfft / 2`` on both sides), so the columns cover 0 s to the end with no gap.
    Returns ``(S_db [bins, frames], times [frames], freqs [bins])``.
    """
    x = np.asarray(sig, dtype=np.float64)
    n = len(x)
    half = nfft // 2
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + hop)])
    k = np.arange(0, -(-n // hop) + 1)
    idx = k[:, None] * hop + np.arange(nfft)[None, :]
    win = np.hanning(nfft)
    spec = np.abs(np.fft.rfft(padded[idx] * win, axis=1)) * (2.0 / win.sum())
    s_db = 20.0 * np.log10(np.maximum(spec.T, 1e-10))
    return s_db, k * hop / sr, np.fft.rfftfreq(nfft, 1.0 / sr)


def to_knob_axis(s_db: np.ndarray, freqs: np.ndarray, f_max: float,
                 points: int = 320) -> np.ndarray:
    """``s_db`` [bins, frames] resampled onto ``points`` rows equally spaced on the knob axis
    (row j at ``warp_hz(j / (points - 1))``, 0 Hz .. ``f_max``), linear interpolation between
    bins: [points, frames]. Drawn with ``extent`` 0..1 on the y axis."""
    f = warp_hz(np.linspace(0.0, 1.0, points), KNOB_AXIS_BREAK_HZ, f_max)
    pos = np.clip(np.interp(f, freqs, np.arange(len(freqs))), 0, len(freqs) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(freqs) - 1)
    w = (pos - lo)[:, None]
    return (1.0 - w) * s_db[lo] + w * s_db[hi]


def knob_axis_ticks(f_max: float) -> tuple[list[float], list[str]]:
    """Tick positions (0..1 on the knob axis) and labels ("150", "1k", "24k") for 0..f_max."""
    hz = [0.0] + [float(t) for t in TICKS_HZ if t < 0.6 * f_max] + [float(f_max)]
    pos = [float(unwarp_hz(h, KNOB_AXIS_BREAK_HZ, f_max)) for h in hz]
    return pos, [hz_label(h) for h in hz]


def hz_label(hz: float) -> str:
    """150 -> "150", 1000 -> "1k", 24000 -> "24k", 2500 -> "2.5k"."""
    if hz < 1000:
        return f"{hz:g}"
    return f"{hz / 1000:.3g}k"


def axis_label() -> str:
    return f"linear below {KNOB_AXIS_BREAK_HZ:g} Hz, log above"


def draw_spectrogram(ax, sig: np.ndarray, sr: int, nfft: int = 1024, hop: int = 256,
                     f_max: float | None = None, label: bool = True):
    """One spectrogram on ``ax``: 0 s to the end of ``sig``, 0 Hz to ``f_max`` (default the
    Nyquist frequency) on the knob axis, colour scale :data:`SPEC_RANGE_DB`. Returns the image."""
    s_db, times, freqs = spectrogram_db(sig, sr, nfft, hop)
    f_max = float(sr / 2 if f_max is None else f_max)
    img = to_knob_axis(s_db, freqs, f_max)
    hop_s = hop / sr
    image = ax.imshow(img, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                      vmin=SPEC_RANGE_DB[0], vmax=SPEC_RANGE_DB[1],
                      extent=(times[0] - hop_s / 2, times[-1] + hop_s / 2, 0.0, 1.0))
    pos, labels = knob_axis_ticks(f_max)
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks(pos, labels)
    if label:
        ax.set_ylabel(f"Hz ({axis_label()})")
    return image
