"""Real-time scheduling for the live stage's threads (Linux SCHED_FIFO).

Python threads share one lock (the GIL); if a normal-priority thread holding it is preempted
by other work on a busy machine, the audio callback and the worker wait for it. The live
stage's Python threads therefore ask for a real-time priority *below* the audio server's
(JACK runs its server thread at 10 and client process threads, hence PortAudio's callback,
at 5): the worker at 3, the status loop and the OSC receive thread at 1.

Without permission (no root, no rtprio limit) or off Linux these calls do nothing and say so.
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
