"""A preallocated ring of the engine's code columns, for the live view and ``process --png``.

The engine (on the live worker thread) calls :meth:`ColumnTap.column` once per code column and
channel, after the blur: it copies the channel's codes before and after the blur and the
smoothed zone knobs into slot ``pos % capacity`` and then advances ``pos`` -- a few numpy
slice copies into arrays made here, no lock, no buffer allocated, nothing that can block. One
writer (the worker), any number of readers: a reader copies out a window with :meth:`latest`
and checks that the writer did not wrap over it meanwhile (the slots are written before
``pos`` is published, so everything below ``pos`` is complete).

With ``shared=True`` the arrays live in a ``multiprocessing.shared_memory`` block (named
:attr:`ColumnTap.name`), so the live view can read them from a process of its own
(:meth:`ColumnTap.attach`) and its drawing never competes with the audio threads for the
GIL. (The header word ``pos`` is stored after the column's data; on x86 another process sees
the stores in that order. Elsewhere a reader may, rarely, draw the newest column half updated
for one frame: the picture, never the audio.)
"""

from __future__ import annotations

import numpy as np

_HEADER = 8  # int64 words: [pos, rows, capacity, channel, 0...]


def _layout(rows: int, capacity: int) -> tuple[list[tuple[str, type, tuple, int]], int]:
    """Field name, dtype, shape and byte offset of each array in the block; total bytes."""
    fields = [("hdr", np.int64, (_HEADER,)), ("before", np.int32, (capacity, rows)),
              ("after", np.int32, (capacity, rows)), ("zone", np.float32, (capacity,)),
              ("centre", np.float32, (capacity,))]
    out, off = [], 0
    for name, dt, shape in fields:
        out.append((name, dt, shape, off))
        off += int(np.prod(shape)) * np.dtype(dt).itemsize
        off = (off + 63) & ~63
    return out, off


class ColumnTap:
    """Ring of ``capacity`` code columns (``rows`` codes before and after the blur, and the
    smoothed ``zone_size``/``centre`` knob values at that column) of one ``channel``."""

    def __init__(self, rows: int, capacity: int = 4096, channel: int = 0, shared: bool = False,
                 _attach: str | None = None) -> None:
        if rows <= 0 or capacity <= 0:
            raise ValueError("rows and capacity must be positive")
        self.rows = int(rows)
        self.capacity = int(capacity)
        self.channel = int(channel)
        layout, size = _layout(self.rows, self.capacity)
        self._shm = None
        if _attach is not None or shared:
            self._shm = shared_block(size, _attach)
            buf = self._shm.buf
        else:
            buf = bytearray(size)
        for name, dt, shape, off in layout:
            setattr(self, "_" + name if name == "hdr" else name,
                    np.ndarray(shape, dtype=dt, buffer=buf, offset=off))
        if _attach is None:
            self._hdr[:] = 0
            self._hdr[1:4] = (self.rows, self.capacity, self.channel)

    @classmethod
    def attach(cls, name: str) -> "ColumnTap":
        """The tap another process created with ``shared=True`` (read side)."""
        shm = shared_block(0, name)
        rows, capacity, channel = (int(v) for v in np.ndarray((4,), np.int64, shm.buf)[1:4])
        shm.close()
        return cls(rows, capacity, channel, _attach=name)

    @property
    def name(self) -> str | None:
        """The shared-memory block's name (None when not shared)."""
        return self._shm.name if self._shm is not None else None

    @property
    def pos(self) -> int:
        """Columns written so far (published after each column's data)."""
        return int(self._hdr[0])

    def close(self, unlink: bool = False) -> None:
        """Release the shared block (``unlink``: the creator removes it)."""
        if self._shm is None:
            return
        shm, self._shm = self._shm, None
        for name in ("before", "after", "zone", "centre", "_hdr"):
            setattr(self, name, None)
        release_block(shm, unlink)

    # ---------------------------------------------------------------- writer (the engine)
    def column(self, channel: int, before: np.ndarray, after: np.ndarray,
               zone_size: float, centre: float) -> None:
        """Record one column (``before``/``after``: ``rows`` codes, any shape of that size)."""
        if channel != self.channel:
            return
        hdr = self._hdr
        p = int(hdr[0])
        i = p % self.capacity
        self.before[i] = before.reshape(self.rows)
        self.after[i] = after.reshape(self.rows)
        self.zone[i] = zone_size
        self.centre[i] = centre
        hdr[0] = p + 1  # publish after the copies

    def reset(self) -> None:
        self._hdr[0] = 0

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


def shared_block(size: int, attach: str | None = None):
    """A new shared-memory block of ``size`` bytes, or (``attach``) the existing block of that
    name, opened as a reader (untracked: the creator owns and unlinks it)."""
    from multiprocessing import shared_memory

    if attach is not None:
        shm = shared_memory.SharedMemory(name=attach)
        _untrack(shm)
        return shm
    return shared_memory.SharedMemory(create=True, size=size)


def release_block(shm, unlink: bool = False) -> None:
    """Close a block from :func:`shared_block` (``unlink``: the creator also removes it).
    A reader still holding a view keeps it mapped; the OS frees it at exit."""
    try:
        shm.close()
    except BufferError:
        pass
    if unlink:
        try:
            shm.unlink()
        except FileNotFoundError:
            pass


def _untrack(shm) -> None:
    """A reader must not make Python's resource tracker unlink the creator's block at exit
    (Python < 3.13 registers every attached block as if it created it)."""
    try:
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    except Exception:
        pass
