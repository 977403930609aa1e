"""The hypervisor's steal time (Linux ``/proc/stat``): time a virtual CPU wanted to run and the
host ran something else. A test that blames the engine for a late block asks this first: an
under-run next to stolen time is the machine's, not the engine's (the engine's CPU was not there).

The kernel counts it in clock ticks (``SC_CLK_TCK``, 100 per second: 10 ms), summed over the
CPUs on the ``cpu`` line, so a stall shows as whole ticks, up to one tick after it happened."""

from __future__ import annotations

import os

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def steal_ticks(path: str = "/proc/stat") -> int:
    """The CPUs' steal time so far, in clock ticks (0 where not reported)."""
    try:
        with open(path, "rb") as f:
            fields = f.readline().split()
    except OSError:
        return 0
    # cpu user nice system idle iowait irq softirq steal ...
    return int(fields[8]) if len(fields) > 8 and fields[0] == b"cpu" else 0


def stolen_near(series: list[tuple[float, int]], t: float, window_s: float) -> int:
    """Ticks stolen within ``window_s`` either side of ``t``; ``series`` holds (time, ticks so far)
    at each change, in time order (the first entry the start)."""
    before = after = None
    for ts, ticks in series:
        if ts <= t - window_s:
            before = ticks
        if ts <= t + window_s:
            after = ticks
    if after is None:
        return 0
    return after - (before if before is not None else series[0][1])
