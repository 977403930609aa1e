"""The shared memory between the audio process and the control process of ``vqblur live``.

``vqblur live`` runs in two processes (see ``vqblur.engine.stage.audio``): the **audio process**
holds only the real-time work (the audio callback and the worker that runs the engine), and
the **control process** (the command itself) holds everything else: the status line and the
terminal, OSC, MIDI, the live view. They share one block of memory, :class:`StageShare`:

* the runner's counters (:class:`~vqblur.engine.stage.stats.LiveStats`), its state (latency,
  block size, real-time, stream finished, ...), the engine's recent per-column times and the
  input and output rings' audio (for the level meters): written by the audio process's worker
  once per block (:meth:`StageShare.publish`, a few microseconds, no allocation), read by the
  control process;
* the knob values: written by the control process (:meth:`StageShare.set_knobs`, a sequence
  number around the values), read by the worker once per block (:class:`SharedKnobs`);
* the palette playing (the bundle whose Naive Bayes tables the blur draws from) and the outcome
  of the last palette request: written by the audio process's main thread when it has loaded a
  palette (:meth:`StageShare.set_palette_state`, a small JSON text under a sequence number),
  read by the control process (:meth:`StageShare.palette_state`).

Each slot has one writer. A reader that sees a half-updated block gets a mix of two consecutive
publications (counters only grow), except for the knobs, which are read under their sequence
number (odd while being written) and taken only when it did not move.

The block is named ``vqblur-live-<pid>`` after the control process, so a monitor (or a test)
can attach to a running ``vqblur live`` by its process id: :meth:`StageShare.attach_to_pid`.
"""

from __future__ import annotations

import math
import time

import numpy as np

from vqblur.engine.stage.stats import COUNTER_FIELDS, FLOAT_FIELDS, LiveStats
from vqblur.engine.stage.tap import release_block, shared_block

#: engine per-column compute times kept for the control process (p99 over the last 300)
COLUMN_RING = 512
#: bytes for the worker's error message
ERROR_BYTES = 1024
#: bytes for the palette state (a JSON object: name, path, serial, error, switches)
PALETTE_BYTES = 4096
_MAGIC = 0x7671626C  # "vqbl"

_STATE = ("magic", "version", "capacity", "channels", "samplerate", "blocksize", "ready",
          "started", "finished", "stopped", "abandoned", "worker_realtime", "worker_demoted",
          "worker_failed", "engine_latency", "prefill", "adapter_latency", "t_start",
          "heartbeat", "in_write_pos", "out_write_pos", "out_read_pos", "columns", "knob_seq", "applied_seq",
          "pid_audio", "palette_seq")


def block_name(pid: int) -> str:
    return f"vqblur-live-{int(pid)}"


def _layout(knobs: tuple[str, ...], capacity: int, channels: int):
    names = list(_STATE) + list(COUNTER_FIELDS) + [f"knob:{k}" for k in knobs] + \
        [f"applied:{k}" for k in knobs]
    index = {n: i for i, n in enumerate(names)}
    off = 8 * len(names)
    col_off = off
    off += 8 * COLUMN_RING
    err_off = off
    off += ERROR_BYTES + PALETTE_BYTES  # the palette's text follows the error's
    ring_bytes = 4 * capacity * channels
    in_off = off
    off += ring_bytes
    out_off = off
    off += ring_bytes
    return names, index, col_off, err_off, in_off, out_off, off


class StageShare:
    """One shared block (see the module docstring). ``create`` in the control process,
    ``attach`` in the audio process (or a monitor)."""

    def __init__(self, knobs, capacity: int, channels: int, *, name: str | None = None,
                 create: bool = False) -> None:
        self.knobs = tuple(knobs)
        self.capacity, self.channels = int(capacity), int(channels)
        names, self._index, col_off, err_off, in_off, out_off, size = _layout(
            self.knobs, self.capacity, self.channels)
        self._created = create
        if create:
            from multiprocessing import shared_memory

            try:  # a block left behind by a killed run whose pid came round again
                old = shared_memory.SharedMemory(name=name)
                old.close()
                old.unlink()
            except FileNotFoundError:
                pass
            self._shm = shared_memory.SharedMemory(name=name, create=True, size=size)
        else:
            self._shm = shared_block(0, name)
        buf = self._shm.buf
        self.values = np.ndarray((len(names),), np.float64, buf, 0)
        self.column_times = np.ndarray((COLUMN_RING,), np.float64, buf, col_off)
        self._error = np.ndarray((ERROR_BYTES,), np.uint8, buf, err_off)
        self._palette = np.ndarray((PALETTE_BYTES,), np.uint8, buf, err_off + ERROR_BYTES)
        self.in_buf = np.ndarray((self.capacity, self.channels), np.float32, buf, in_off)
        self.out_buf = np.ndarray((self.capacity, self.channels), np.float32, buf, out_off)
        v, ix = self.values, self._index
        self._counter_ix = np.array([ix[f] for f in COUNTER_FIELDS])
        self._knob_ix = [ix[f"knob:{k}"] for k in self.knobs]
        self._applied_ix = [ix[f"applied:{k}"] for k in self.knobs]
        if create:
            v[:] = 0.0
            self.column_times[:] = 0.0
            self._error[:] = 0
            self._palette[:] = 0
            for i in self._knob_ix + self._applied_ix:
                v[i] = math.nan
            v[ix["magic"]], v[ix["version"]] = _MAGIC, 2
            v[ix["capacity"]], v[ix["channels"]] = self.capacity, self.channels
            v[ix["last_underrun_pos"]] = -1
        elif v[ix["magic"]] != _MAGIC:
            self.close()
            raise ValueError(f"shared block {name} is not a vqblur live block")
        self._counter_pairs = [(ix[f], f) for f in COUNTER_FIELDS]
        self._cached_cols = 0
        self._applied = None

    # ------------------------------------------------------------------ life
    @classmethod
    def create(cls, pid: int, knobs, capacity: int, channels: int) -> "StageShare":
        return cls(knobs, capacity, channels, name=block_name(pid), create=True)

    @classmethod
    def attach(cls, name: str, knobs) -> "StageShare":
        """Attach to the block ``name`` (its ring size is read from the block itself)."""
        head = shared_block(0, name)
        try:
            hv = np.ndarray((len(_STATE),), np.float64, head.buf, 0)
            if hv[0] != _MAGIC:
                raise ValueError(f"shared block {name} is not a vqblur live block")
            capacity, channels = int(hv[_STATE.index("capacity")]), int(hv[_STATE.index("channels")])
            del hv
        finally:
            release_block(head)
        return cls(knobs, capacity, channels, name=name)

    @classmethod
    def attach_to_pid(cls, pid: int, knobs=None) -> "StageShare":
        """The block of the running ``vqblur live`` whose (control) process id is ``pid``."""
        if knobs is None:
            from vqblur.engine import knobs as _knobs

            knobs = _knobs.NAMES
        return cls.attach(block_name(pid), knobs)

    @property
    def name(self) -> str | None:
        return self._shm.name if self._shm is not None else None

    def close(self) -> None:
        shm, self._shm = self._shm, None
        if shm is None:
            return
        self.values = self.column_times = self._error = self._palette = None
        self.in_buf = self.out_buf = None
        release_block(shm, unlink=self._created)

    # ------------------------------------------------------------------ slots
    def __getitem__(self, field: str) -> float:
        return float(self.values[self._index[field]])

    def __setitem__(self, field: str, value: float) -> None:
        self.values[self._index[field]] = value

    def counters(self) -> LiveStats:
        """The counters as last published, as a :class:`LiveStats` (snapshot fields 0)."""
        vals = self.values[self._counter_ix]
        kw = {}
        for f, x in zip(COUNTER_FIELDS, vals.tolist()):
            kw[f] = x if f in FLOAT_FIELDS else int(x)
        return LiveStats(**kw)

    def error(self) -> str:
        raw = bytes(self._error)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    def set_error(self, text: str) -> None:
        b = text.encode("utf-8", "replace")[: ERROR_BYTES - 1]
        self._error[: len(b)] = np.frombuffer(b, np.uint8)
        self._error[len(b)] = 0
        self["worker_failed"] = 1.0

    # ------------------------------------------------------------------ the palette
    def set_palette_state(self, state: dict) -> None:
        """Publish the palette state (the audio process's main thread, never the worker): a JSON
        object, written under ``palette_seq`` (odd while writing)."""
        import json

        b = json.dumps(state).encode("utf-8")
        if len(b) >= PALETTE_BYTES:  # a very long path or message: keep the name, cut the rest
            state = dict(state)
            for k in ("error", "path", "requested"):
                if isinstance(state.get(k), str):
                    state[k] = state[k][:300]
            b = json.dumps(state).encode("utf-8")[: PALETTE_BYTES - 1]
        v, i = self.values, self._index["palette_seq"]
        seq = int(v[i])
        v[i] = seq + 1
        self._palette[: len(b)] = np.frombuffer(b, np.uint8)
        self._palette[len(b)] = 0
        v[i] = seq + 2

    def palette_state(self) -> dict | None:
        """The palette state as last published (None before the audio process published one)."""
        import json

        v, i = self.values, self._index["palette_seq"]
        for _ in range(100):
            seq = v[i]
            if int(seq) & 1:
                time.sleep(0.0005)
                continue
            raw = bytes(self._palette).split(b"\0", 1)[0]
            if v[i] != seq:
                continue
            if not raw:
                return None
            try:
                return json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                return None
        return None

    # ------------------------------------------------------------------ knobs (control side)
    def set_knobs(self, values: dict[str, float]) -> None:
        """Publish knob values (the control process's knob pump): seq odd while writing."""
        v, ix = self.values, self._index
        seq = int(v[ix["knob_seq"]])
        v[ix["knob_seq"]] = seq + 1  # odd: being written
        for k, i in zip(self.knobs, self._knob_ix):
            x = values.get(k)
            if x is not None:
                v[i] = x
        v[ix["knob_seq"]] = seq + 2

    def applied_knobs(self) -> dict[str, float]:
        """The knob values the worker last gave the engine."""
        out = {}
        for k, i in zip(self.knobs, self._applied_ix):
            x = float(self.values[i])
            if not math.isnan(x):
                out[k] = x
        return out

    # ------------------------------------------------------------------ publication (audio side)
    def publish(self, runner) -> None:
        """The worker's publication, once per block: counters, ring positions, state, the
        engine's new column times. Runs on the worker thread: no allocation of buffers, a few
        numpy stores."""
        v, ix = self.values, self._index
        c = runner.counters
        for i, f in self._counter_pairs:
            v[i] = getattr(c, f)
        v[ix["prefill"]] = runner.prefill
        v[ix["in_write_pos"]] = runner.in_ring.write_pos
        v[ix["out_write_pos"]] = runner.out_ring.write_pos
        v[ix["out_read_pos"]] = runner.out_ring.read_pos
        v[ix["worker_realtime"]] = runner.worker_realtime
        v[ix["worker_demoted"]] = runner.worker_demoted
        v[ix["finished"]] = runner._finished.is_set()
        st = getattr(runner.processor, "stats", None)
        if st is not None:
            n = st.columns
            k = self._cached_cols
            if n - k > COLUMN_RING:
                k = n - COLUMN_RING
            ct, src = self.column_times, st.column_times
            m = len(src)
            while k < n:
                ct[k % COLUMN_RING] = src[k % m]
                k += 1
            self._cached_cols = n
            v[ix["columns"]] = n
        kv = runner.knob_values
        if kv is not self._applied:  # the worker gave the engine new knob values
            self._applied = kv
            for k, i in zip(self.knobs, self._applied_ix):
                x = kv.get(k)
                if x is not None:
                    v[i] = x
            v[ix["applied_seq"]] += 1
        v[ix["heartbeat"]] = time.monotonic()


class SharedKnobs:
    """The worker's knob source in the audio process: ``read()`` returns the same dict,
    updated from the shared block when the control process published new values (once per
    block: one read of the sequence number when nothing moved)."""

    def __init__(self, share: StageShare, defaults: dict[str, float]) -> None:
        self.share = share
        self.values = {k: float(v) for k, v in defaults.items()}
        self._seq = 0
        self._ix_seq = share._index["knob_seq"]
        self._pairs = list(zip(share.knobs, share._knob_ix))

    def read(self) -> dict[str, float]:
        v = self.share.values
        seq = v[self._ix_seq]
        if seq == self._seq or int(seq) & 1:
            return self.values
        vals = self.values
        for k, i in self._pairs:
            x = v[i]
            if x == x:  # not NaN: the control process has set it
                vals[k] = float(x)
        if v[self._ix_seq] == seq:  # not rewritten while we copied
            self._seq = seq
        return vals
