"""Real-time scheduling for the live stage's threads (Linux SCHED_FIFO).

Python threads share one lock (the GIL); if a normal-priority thread holding it is preempted
by other work on a busy machine, the audio callback and the worker wait for it. The live
stage's Python threads therefore ask for a real-time priority *below* the audio server's
(JACK runs its server thread at 10 and client process threads, hence PortAudio's callback,
at 5): the worker at 3, the status loop and the OSC receive thread at 1.

Without permission (no root, no rtprio limit) or off Linux these calls do nothing and say so.

:func:`lock_memory` keeps the calling process's memory in RAM (``mlockall``): no page of the
engine, its tables or the rings is paged out or faulted in again while the stream runs.

:func:`hold_cpu_wakeup` keeps the CPUs out of their deep idle states while the stream runs
(Linux PM QoS, ``/dev/cpu_dma_latency``): an idle CPU that halts can take milliseconds to wake
for the next period (measured on a 2-vCPU VM, ``docs/ARCHITECTURE.md``), and an audio thread
waking on it misses its block.
"""

from __future__ import annotations

import os


def try_realtime(priority: int) -> bool:
    """Give the calling thread SCHED_FIFO ``priority`` if allowed (Linux, root or rtprio).

    Returns True when the thread now runs at that priority; ``priority <= 0`` asks for nothing.
    """
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0 = this thread
        return True
    except (OSError, PermissionError):
        return False


def drop_realtime() -> bool:
    """Put the calling thread back to normal scheduling (SCHED_OTHER); True when it worked."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        return True
    except OSError:
        return False


class realtime_thread:
    """Context manager: SCHED_FIFO ``priority`` for the calling thread, restored on exit.

    ``active`` says whether the priority was granted.
    """

    def __init__(self, priority: int = 1):
        self.priority = priority
        self.active = False
        self._old = None

    def __enter__(self):
        if self.priority > 0 and hasattr(os, "sched_getscheduler"):
            try:
                self._old = (os.sched_getscheduler(0), os.sched_getparam(0))
            except OSError:
                self._old = None
            self.active = try_realtime(self.priority)
        return self

    def __exit__(self, *exc):
        if self.active and self._old is not None:
            try:
                os.sched_setscheduler(0, self._old[0], self._old[1])
            except OSError:
                pass
        self.active = False


CPU_DMA_LATENCY = "/dev/cpu_dma_latency"


def hold_cpu_wakeup(latency_us: int = 0, path: str = CPU_DMA_LATENCY) -> tuple[int, str]:
    """Ask the kernel to keep every CPU's wake-up latency at most ``latency_us`` (Linux PM QoS:
    the cpuidle governor then picks only idle states that wake that fast; 0 = poll, never halt)
    for as long as the returned file descriptor stays open (close it, or exit, to let go).

    Returns ``(fd, what)``: ``what`` is ``"<N> us"`` when held, else ``fd`` is -1 and ``what``
    ``"no (...)"`` with the reason (not Linux, no permission: the file is root's unless a udev
    rule opens it to the audio group). Never raises. It costs power: idle CPUs spin instead of
    sleeping while it is held."""
    import struct

    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        return -1, f"no ({exc.strerror or exc})"
    try:
        os.write(fd, struct.pack("i", int(latency_us)))
    except OSError as exc:
        os.close(fd)
        return -1, f"no ({exc.strerror or exc})"
    return fd, f"{int(latency_us)} us"


def cpu_wakeup_target(path: str = CPU_DMA_LATENCY) -> int | None:
    """The kernel's current PM QoS CPU wake-up latency target in us (the strictest request
    held; 2000000000 when none), or None where it cannot be read."""
    import struct

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return struct.unpack("i", os.read(fd, 4))[0]
    except (OSError, struct.error):
        return None
    finally:
        os.close(fd)


_MCL_CURRENT, _MCL_FUTURE = 1, 2  # <sys/mman.h> on Linux


def lock_memory() -> str:
    """Lock this process's memory in RAM (Linux ``mlockall``), pages mapped now and later.

    Returns what was done: ``"all"`` (now and later: root, or an unlimited ``RLIMIT_MEMLOCK``),
    ``"current"`` (the pages mapped now, when the limit allows them but may not allow all later
    mappings: locking future mappings under a limit would make a later allocation fail), or
    ``"no (...)"`` with the reason. Never raises.
    """
    import ctypes
    import resource
    import sys

    if not sys.platform.startswith("linux"):
        return "no (not Linux)"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    except (OSError, AttributeError, ValueError) as exc:
        return f"no ({exc})"
    unlimited = soft == resource.RLIM_INFINITY or os.geteuid() == 0
    if unlimited:
        flags, done = _MCL_CURRENT | _MCL_FUTURE, "all"
    else:
        try:
            with open("/proc/self/statm") as f:
                size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")  # mapped now
        except (OSError, ValueError, IndexError):
            size = soft + 1
        if size >= soft:
            return f"no (RLIMIT_MEMLOCK {soft >> 10} KiB is below the process's {size >> 20} MiB)"
        flags, done = _MCL_CURRENT, "current"
    if libc.mlockall(flags) != 0:
        err = ctypes.get_errno()
        return f"no ({os.strerror(err)})"
    return done
