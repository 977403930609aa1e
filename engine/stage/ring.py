"""Single-producer / single-consumer float32 ring buffers for the live path.

The audio callback and the worker thread exchange audio through these rings without a
lock. Each ring is a preallocated ``[capacity, channels]`` float32 array plus two
monotonically increasing integer counters:

* ``write_pos`` -- absolute position (in frames) of the next frame the producer writes;
  only the producer changes it;
* ``read_pos``  -- absolute position of the next frame the consumer reads; only the
  consumer changes it.

Frame ``p`` lives in slot ``p % capacity``. Copies are vectorised (at most two numpy slice
copies per call, for the wrap-around) and never allocate a buffer. The counters are plain
Python ints: assigning an attribute is atomic under the GIL, each counter has one writer,
and a writer publishes its counter only *after* the data copy, so the other side never
sees a position whose data is not there yet.

``write_pos < read_pos`` is allowed: it means the consumer has skipped ahead (it played
something else -- e.g. the dry signal -- for positions the producer had not delivered in
time). The producer then drops frames for positions that are already in the past
(:meth:`Ring.write` returns how many it dropped), so producer and consumer stay aligned on
absolute positions. That is what keeps the live path's latency fixed through a late
worker block.
"""

from __future__ import annotations

import numpy as np


class Ring:
    """A lock-free SPSC ring of float32 frames with absolute positions.

    Producer side: :meth:`write`, :meth:`write_space`, :meth:`set_write_pos`.
    Consumer side: :meth:`read`, :meth:`peek`, :meth:`available`, :meth:`advance_read`,
    :meth:`set_read_pos`. :meth:`read_at` reads any frame still held (the producer's
    history), for a latency-aligned copy of past input.
    """

    __slots__ = ("capacity", "channels", "buf", "write_pos", "read_pos")

    def __init__(self, capacity: int, channels: int = 1, buffer: np.ndarray | None = None) -> None:
        if capacity <= 0 or channels <= 0:
            raise ValueError("capacity and channels must be positive")
        self.capacity = int(capacity)
        self.channels = int(channels)
        if buffer is None:
            self.buf = np.zeros((self.capacity, self.channels), dtype=np.float32)
        else:  # storage given by the caller (e.g. shared memory another process reads)
            if buffer.shape != (self.capacity, self.channels) or buffer.dtype != np.float32:
                raise ValueError(f"ring buffer must be float32 {(self.capacity, self.channels)}, "
                                 f"got {buffer.dtype} {buffer.shape}")
            self.buf = buffer
            self.buf[:] = 0.0
        self.write_pos = 0
        self.read_pos = 0

    # ----------------------------------------------------------------- queries
    def available(self) -> int:
        """Frames the consumer can read now (0 when the producer is behind)."""
        n = self.write_pos - self.read_pos
        return n if n > 0 else 0

    def write_space(self) -> int:
        """Frames the producer can write without overwriting unread frames."""
        return self.capacity - (self.write_pos - self.read_pos)

    # ----------------------------------------------------------------- producer
    def _copy_in(self, pos: int, data: np.ndarray) -> None:
        n = data.shape[0]
        start = pos % self.capacity
        first = self.capacity - start
        if n <= first:
            self.buf[start:start + n] = data
        else:
            self.buf[start:] = data[:first]
            self.buf[:n - first] = data[first:]

    def write(self, data: np.ndarray, overwrite: bool = False) -> int:
        """Append ``data`` (``[n, channels]`` or ``[n]`` for one channel).

        Frames for positions the consumer has already passed are dropped (returned count).
        Without ``overwrite``, frames that do not fit are dropped too (the caller sees the
        shortfall in the return value: written = n - dropped). With ``overwrite`` the
        producer never waits: it overwrites the oldest unread frames (the consumer detects
        that with :meth:`overrun_since`).
        """
        n = int(data.shape[0])
        if n == 0:
            return 0
        if data.ndim == 1:
            data = data.reshape(n, 1)
        wp = self.write_pos
        rp = self.read_pos
        dropped = 0
        if wp < rp:  # consumer skipped ahead: these positions are in the past
            skip = rp - wp
            if skip >= n:
                self.write_pos = wp + n
                return n
            data = data[skip:]
            wp += skip
            n -= skip
            dropped = skip
        if not overwrite:
            space = self.capacity - (wp - rp)
            if n > space:
                dropped += n - space
                n = space
                data = data[:n]
            if n <= 0:
                self.write_pos = wp
                return dropped
        elif n > self.capacity:  # keep only the newest `capacity` frames
            extra = n - self.capacity
            data = data[extra:]
            wp += extra
            n = self.capacity
        self._copy_in(wp, data)
        self.write_pos = wp + n  # publish after the copy
        return dropped

    def set_write_pos(self, pos: int) -> None:
        """Producer: jump to absolute position ``pos`` (slots in between are not touched)."""
        self.write_pos = int(pos)

    # ----------------------------------------------------------------- consumer
    def _copy_out(self, pos: int, out: np.ndarray) -> None:
        n = out.shape[0]
        start = pos % self.capacity
        first = self.capacity - start
        if n <= first:
            out[:] = self.buf[start:start + n]
        else:
            out[:first] = self.buf[start:]
            out[first:] = self.buf[:n - first]

    def peek(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` available frames into ``out`` without consuming them."""
        n = min(out.shape[0], self.available())
        if n > 0:
            self._copy_out(self.read_pos, out[:n])
        return n

    def read(self, out: np.ndarray) -> int:
        """Copy up to ``len(out)`` frames into ``out`` and consume them; returns the count."""
        n = self.peek(out)
        if n > 0:
            self.read_pos += n
        return n

    def advance_read(self, n: int) -> None:
        """Consumer: skip ``n`` positions (they may not have been written yet)."""
        self.read_pos += int(n)

    def set_read_pos(self, pos: int) -> None:
        self.read_pos = int(pos)

    def read_at(self, pos: int, out: np.ndarray) -> bool:
        """Copy frames ``[pos, pos + len(out))`` if they are still held.

        Returns False (and fills ``out`` with zeros) when part of the range was never
        written or has been overwritten; positions before 0 read as zeros (silence before
        the stream began).
        """
        n = out.shape[0]
        wp = self.write_pos
        k = -pos if pos < 0 else 0
        if k >= n:
            out[:] = 0.0
            return True
        lo = pos + k
        if pos + n > wp or lo < wp - self.capacity:
            out[:] = 0.0
            return False
        if k:
            out[:k] = 0.0
        self._copy_out(lo, out[k:])
        return True

    def overrun_since(self, pos: int) -> bool:
        """True if frames from absolute ``pos`` on may have been overwritten already."""
        return self.write_pos - pos > self.capacity

    def reset(self) -> None:
        self.buf[:] = 0.0
        self.write_pos = 0
        self.read_pos = 0
