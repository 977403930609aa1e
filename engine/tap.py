"""A preallocated ring of the engine's code columns, for the live view and ``process --png``.

The engine (on the live worker thread) calls :meth:`ColumnTap.column` once per code column and
channel, after the blur: it copies the channel's codes before and after the blur and the
smoothed zone knobs into slot ``pos % capacity`` and then advances ``pos`` -- a few numpy
slice copies into arrays made here, no lock, no buffer allocated, nothing that can block. One
writer (the worker), any number of readers (the view thread): a reader copies out a window
with :meth:`latest` and checks that the writer did not wrap over it meanwhile (the slots are
written before ``pos`` is published, so everything below ``pos`` is complete).
"""

from __future__ import annotations

import numpy as np


class ColumnTap:
    """Ring of ``capacity`` code columns (``rows`` codes before and after the blur, and the
    smoothed ``zone_size``/``centre`` knob values at that column) of one ``channel``."""

    def __init__(self, rows: int, capacity: int = 4096, channel: int = 0) -> None:
        if rows <= 0 or capacity <= 0:
            raise ValueError("rows and capacity must be positive")
        self.rows = int(rows)
        self.capacity = int(capacity)
        self.channel = int(channel)
        self.before = np.zeros((self.capacity, self.rows), np.int32)
        self.after = np.zeros((self.capacity, self.rows), np.int32)
        self.zone = np.zeros(self.capacity, np.float32)
        self.centre = np.zeros(self.capacity, np.float32)
        self.pos = 0  # columns written so far (published after each column's data)

    # ---------------------------------------------------------------- writer (the engine)
    def column(self, channel: int, before: np.ndarray, after: np.ndarray,
               zone_size: float, centre: float) -> None:
        """Record one column (``before``/``after``: ``rows`` codes, any shape of that size)."""
        if channel != self.channel:
            return
        i = self.pos % self.capacity
        self.before[i] = before.reshape(self.rows)
        self.after[i] = after.reshape(self.rows)
        self.zone[i] = zone_size
        self.centre[i] = centre
        self.pos += 1  # publish after the copies

    def reset(self) -> None:
        self.pos = 0

    # ---------------------------------------------------------------- readers
    def latest(self, n: int, before: np.ndarray, after: np.ndarray, zone: np.ndarray,
               centre: np.ndarray) -> int:
        """Copy the last ``n`` columns (oldest first) into ``before``/``after`` ``[n, rows]`` and
        ``zone``/``centre`` ``[n]``; returns how many are valid (the newest ones, at the end;
        fewer than ``n`` at the start of a run). Returns 0 if the writer lapped the window
        while it was copied (the caller drops that frame)."""
        n = min(int(n), self.capacity)
        end = self.pos
        k = min(n, end)
        if k == 0:
            return 0
        idx = np.arange(end - k, end) % self.capacity
        before[n - k:] = self.before[idx]
        after[n - k:] = self.after[idx]
        zone[n - k:] = self.zone[idx]
        centre[n - k:] = self.centre[idx]
        if self.pos - self.capacity > end - k:  # overwritten while we copied
            return 0
        return k

    def history(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every column still held, oldest first: ``(before [rows, C], after [rows, C],
        zone [C], centre [C])`` (codemap layout: rows = frequency bands, columns = time)."""
        k = min(self.pos, self.capacity)
        b = np.zeros((k, self.rows), np.int32)
        a = np.zeros((k, self.rows), np.int32)
        z = np.zeros(k, np.float32)
        c = np.zeros(k, np.float32)
        self.latest(k, b, a, z, c)
        return b.T.copy(), a.T.copy(), z, c
