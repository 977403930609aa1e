"""Codes computed beforehand, played back through the engine's own column step.

numpy only. The offline blur (``vqblur blur``: Gibbs sweeps with past *and* future neighbours,
:mod:`.gibbs`) cannot run column by column, so it computes the whole blurred grid first and
hands it to the streaming :class:`~vqblur.engine.core.Engine` in place of a channel's
:class:`~.codeblur.CodeBlur`: the engine then decodes, shapes (level, smoothing, zone weight:
:mod:`.shaping`) and resynthesises exactly as live. One column loop serves both.
"""

from __future__ import annotations

import numpy as np


class PlaybackBlur:
    """A channel's blur that returns column ``c`` of ``codes [n_codes, C]`` at its c-th step.

    ``before``/``after`` ``[rows, C]``: what the view shows for each column (the grid the Gibbs
    blur worked on, before and after). ``span [C]`` (0..1): the time span's weight per column
    (``--time`` with its soft edge), the shaper's time-smear gate (default: every column).
    Past the last column the last one repeats.
    """

    def __init__(self, codes: np.ndarray, before: np.ndarray | None = None, after: np.ndarray | None = None,
                 span: np.ndarray | None = None):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.before, self.after = before, after
        self.span = None if span is None else np.asarray(span, dtype=np.float64)
        self.macro_active = False
        self.time_gate = 1.0
        self._c = 0

    def reset(self, seed: int | None = None) -> None:
        self._c = 0

    def _col(self) -> int:
        return min(self._c, self.codes.shape[1] - 1)

    def step(self, clean: np.ndarray, out: np.ndarray, zone_size: float, centre: float,
             temperature: float, scale: float = 0.0) -> np.ndarray:
        c = self._col()
        out[:] = self.codes[:, c]
        if self.span is not None:
            self.time_gate = float(self.span[min(c, len(self.span) - 1)])
        self._c += 1
        return out

    def view_rows(self, clean: np.ndarray, out: np.ndarray, before: np.ndarray, after: np.ndarray) -> None:
        c = max(self._c - 1, 0)
        if self.before is None or self.after is None:
            before[:] = clean[: len(before)]
            after[:] = out[: len(after)]
            return
        c = min(c, self.before.shape[1] - 1)
        before[:] = self.before[:, c]
        after[:] = self.after[:, c]
