"""Where the blur's zone lies: knob values -> a soft weight per model bin and the rows under it.

numpy only. ``zone_size`` and ``centre`` are read on the perceptual knob axis
(``vqblur.common.freqaxis``: linear below 250 Hz, logarithmic above; 0..1 spans 0 Hz to the top
model bin): a bin at axis position ``u`` has weight :func:`~vqblur.engine.blur.sampler.zone_profile`
``(u - centre, h = zone_size, e = h / 2)`` -- 1 in the zone's core, a Gaussian fall-off over
its outer half, 0 outside. A code row (micro or macro) is resampled when one of its bins (one
it holds at least a quarter of) has a weight of at least :data:`ROW_THRESHOLD`. The bin weights then place the change the decoder makes
(:mod:`vqblur.engine.blur.shaping`), so the change sits where the knob says whatever the rows'
own width (linear 1.2 kHz rows of a v2 bundle, or the log-spaced rows of codec v3).
"""

from __future__ import annotations

import numpy as np

from vqblur.common.freqaxis import bin_hz, row_bin_weights
from vqblur.engine.blur.sampler import zone_profile
from vqblur.engine.knobs import knob_axis_position

#: a row is resampled when the zone weight of one of its bins reaches this
ROW_THRESHOLD = 0.25


class PerceptualZone:
    """The zone of the current knob values (one per engine, shared by its channels).

    ``bin_weight [bins]``, ``micro_rows [rows]`` and ``macro_rows [rows_macro]`` (1.0 = resampled,
    0.0 = not) are updated in place by :meth:`update`; ``version`` counts the changes.
    """

    def __init__(self, sample_rate: int, n_fft: int, bins: int, row_edges_hz: np.ndarray,
                 macro_factor: int = 0, bin_freqs: tuple[np.ndarray, np.ndarray] | None = None):
        """``bin_freqs``: (centre, spacing) [bins] of the model bins when they are not
        ``sample_rate / n_fft`` apart (``SignalConfig.model_bin_hz``: the split framing)."""
        f = bin_hz(sample_rate, n_fft, bins) if bin_freqs is None else np.asarray(bin_freqs[0], np.float64)
        self.bin_hz = f
        self.position = knob_axis_position(f, float(f[-1]))  # [bins] on the knob axis, 0..1
        edges = np.asarray(row_edges_hz, dtype=np.float64)
        self.row_edges_hz = edges  # [rows + 1]
        self.rows = len(edges) - 1
        self._micro = self._row_members(edges, sample_rate, n_fft, bins, bin_freqs)
        self.rows_macro = self.rows // macro_factor if macro_factor else 0
        self._macro = (self._row_members(edges[::macro_factor], sample_rate, n_fft, bins, bin_freqs)
                       if self.rows_macro else np.zeros((0, bins)))
        self.bin_weight = np.zeros(bins)
        self.micro_rows = np.zeros(self.rows)
        self.macro_rows = np.zeros(self.rows_macro)
        self.is_open = False
        self.version = 0
        self._key: tuple[float, float] | None = None

    @staticmethod
    def _row_members(edges: np.ndarray, sr: int, n_fft: int, bins: int, bin_freqs=None) -> np.ndarray:
        """[rows, bins] float: 1 where a row holds at least a quarter of a bin, else 0."""
        return (row_bin_weights(edges, sr, n_fft, bins, bin_freqs) >= 0.25).astype(np.float64)

    def centre_row(self, centre: float) -> int:
        """The row that holds the centre knob's frequency."""
        from vqblur.engine.knobs import centre_hz

        f = centre_hz(centre, float(self.bin_hz[-1]))
        return int(min(max(np.searchsorted(self.row_edges_hz, f, side="right") - 1, 0), self.rows - 1))

    def row_weights(self) -> np.ndarray:
        """Each micro row's zone weight for the current knobs (its strongest bin's): [rows]."""
        return (self._micro * self.bin_weight).max(axis=1)

    def update(self, zone_size: float, centre: float) -> bool:
        """Set the zone for these knob values; True when it changed (cached otherwise)."""
        key = (float(zone_size), float(centre))
        if key == self._key:
            return False
        self._key = key
        h = min(max(key[0], 0.0), 2.0) if key[0] == key[0] else 0.0
        c = min(max(key[1], 0.0), 1.0) if key[1] == key[1] else 0.5
        self.bin_weight[:] = zone_profile(self.position - c, h, h / 2.0)
        self.is_open = bool(self.bin_weight.any())
        w = self.bin_weight
        self.micro_rows[:] = self.row_weights() >= ROW_THRESHOLD
        if self.rows_macro:
            self.macro_rows[:] = (self._macro * w).max(axis=1) >= ROW_THRESHOLD
        self.version += 1
        return True
