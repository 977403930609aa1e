"""The live stage's counters: one dataclass, declared once.

A :class:`~vqblur.engine.stage.runner.LiveRunner` keeps one :class:`LiveStats` as its running
counters (``runner.counters``): the audio callback writes the callback fields, the worker the
worker fields, each field has one writer, and plain attribute updates need no lock.
``runner.stats()`` returns a copy with the two snapshot fields filled in (``latency_samples``,
``elapsed_s``); the runner also exposes every counter as an attribute
(``runner.underruns`` is ``runner.counters.underruns``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: the fields only a snapshot (``runner.stats()``) fills in
SNAPSHOT_FIELDS = ("latency_samples", "elapsed_s")


@dataclass
class LiveStats:
    # written by the audio callback
    callbacks: int = 0
    frames: int = 0  # output position: frames played so far
    host_block: int = 0  # frames per callback (0 = unknown until the first one)
    underruns: int = 0  # callbacks that played the dry input: the worker's block was late
    underrun_frames: int = 0
    overruns: int = 0  # callbacks that overwrote input the worker had not consumed
    status_flags: int = 0  # callbacks with a PortAudio status flag (the device's xruns)
    late_cycles: int = 0  # unflagged callbacks whose cycle began over half a period late (the server's)
    last_underrun_pos: int = -1
    # written by the worker
    deadline_misses: int = 0  # blocks that reached the output ring too late (dropped)
    late_frames: int = 0
    resyncs: int = 0  # the worker skipped input to catch up
    worker_chunks: int = 0
    worker_busy_s: float = 0.0
    worker_max_chunk_s: float = 0.0
    slow_chunks: int = 0  # chunks whose processing took longer than one host period
    stalled_chunks: int = 0  # slow chunks whose thread ran for under half their wall time (held off the CPU)
    stall_periods: int = 0  # host periods those stalled chunks spanned (each rounded up)
    machine_stalls: int = 0  # stalled chunks the guest kernel never switched out: the hypervisor's
    # filled in by a snapshot
    latency_samples: int = 0
    elapsed_s: float = 0.0

    def copy(self, **changes) -> "LiveStats":
        return dataclasses.replace(self, **changes)


#: the running counters (every field but the snapshot ones)
COUNTER_FIELDS = tuple(f.name for f in dataclasses.fields(LiveStats) if f.name not in SNAPSHOT_FIELDS)
#: the fields that count seconds (floats); the others count events or frames
FLOAT_FIELDS = frozenset(f.name for f in dataclasses.fields(LiveStats) if isinstance(f.default, float))


def counter_properties(cls):
    """Class decorator: an attribute per counter that reads (and writes) ``self.counters``."""
    for name in COUNTER_FIELDS:
        if name in cls.__dict__:
            continue
        setattr(cls, name, property(lambda self, _n=name: getattr(self.counters, _n),
                                    lambda self, v, _n=name: setattr(self.counters, _n, v),
                                    doc=f"``counters.{name}``"))
    return cls
