"""Flood tests measured A/B: does a control-message flood cost the live runner under-runs?

On a shared VM the JACK dummy server's cycle and our audio threads stall for milliseconds at a
time, in phases that last seconds (an idle server with no client logs ~10 xruns in 20 s here;
in a bad phase hundreds). A flood test that counts every under-run during the flood and compares
it with a fixed allowance measures the machine's phase as much as the flood: it failed in CI with
50-150 under-runs and only 2-43 logged xruns, while the same test on a calm machine sees 0-3.

So the flood is interleaved with silence, as the bench compares bundles (round-robin, never
minutes apart): the sender floods for one ``PHASE_S`` phase, is quiet for the next, for
``PHASES`` phases, starting at a time the test gives it. Meanwhile the test process polls the
runner's under-run counter every ``POLL_S`` and files each new under-run under the phase it
happened in (``LAG_S`` earlier than it was seen: a block made late by a burst is counted up to a
couple of periods later). A flood that costs under-runs puts them in the flood phases; the
machine's stalls fall on both alike. :func:`excess_allowed` is the bound the tests assert.

Sender side: a sender script prints ``ready`` once it is set up, reads the start time
(``time.monotonic()``, one clock for every process on Linux) from its stdin and calls
:func:`send_on_schedule`.
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

PHASE_S = 0.1  # one flood or quiet phase
PHASES = 20  # 10 flood phases (even indices) and 10 quiet ones (odd): 2 s
BURST_S = 0.01  # within a flood phase: one burst of messages every 10 ms
POLL_S = 0.002
LAG_S = 0.01


def send_on_schedule(send: Callable[[object], None], messages: Sequence, t_start: float,
                     phase_s: float = PHASE_S, phases: int = PHASES) -> None:
    """Send ``messages`` in the flood phases (0, 2, 4, ...) from ``t_start`` on, in equal bursts
    every BURST_S (10,000 messages over 10 phases of 0.1 s = 10,000 messages/s while flooding)."""
    floods = (phases + 1) // 2
    bursts = max(1, int(round(phase_s / BURST_S)))
    n = len(messages)
    per_burst = [(k * n) // (floods * bursts) for k in range(floods * bursts + 1)]
    for f in range(floods):
        t_phase = t_start + 2 * f * phase_s
        for b in range(bursts):
            wait = t_phase + b * BURST_S - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            k = f * bursts + b
            for m in messages[per_burst[k]:per_burst[k + 1]]:
                send(m)


@dataclass
class FloodAB:
    """Under-runs filed by phase, and what the sender reported."""

    flood_underruns: int
    quiet_underruns: int
    callbacks: int
    wall: float
    sender_rc: int
    sender_out: str
    sender_err: str
    per_phase: list[int] = field(default_factory=list)

    @property
    def excess(self) -> int:
        """Under-runs in the flood phases beyond those in the (equally long) quiet phases."""
        return self.flood_underruns - self.quiet_underruns

    def summary(self) -> str:
        return (f"under-runs {self.flood_underruns} while flooding / {self.quiet_underruns} while "
                f"quiet (excess {self.excess}, allowed {excess_allowed(self):.1f}), "
                f"{self.callbacks} callbacks in {self.wall:.2f} s; by phase {self.per_phase}")


def excess_allowed(r: FloodAB) -> float:
    """How many more under-runs the flood phases may have than the quiet ones.

    If the flood costs nothing, ``flood - quiet`` (10 phases each) has mean 0 and variance
    ``10 var(flood phase) + 10 var(quiet phase)``. The variances are estimated from the phases
    themselves, so the bound widens when the machine's stalls come in bursts (one stall makes
    several under-runs in a row) and stays tight when it is calm. Allow 3 standard deviations,
    plus 3 for the odd under-run of a calm machine. A flood that costs one under-run in every
    flood phase on a calm machine (excess 10, no spread) fails it."""
    flood, quiet = r.per_phase[0::2], r.per_phase[1::2]
    var = sum(len(g) * _sample_variance(g) for g in (flood, quiet))
    return 3.0 + 3.0 * math.sqrt(var)


def _sample_variance(xs: Sequence[int]) -> float:
    if len(xs) < 2:
        return 0.0
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def run_flood_ab(runner, sender_argv: list[str], *, cwd: str | None = None,
                 ready_timeout_s: float = 60.0) -> FloodAB:
    """Start the sender (``sender_argv``), wait for its ``ready``, give it a start time and file
    the runner's under-runs by phase until the schedule is over; then wait for the sender."""
    import select

    p = subprocess.Popen(sender_argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        r, _, _ = select.select([p.stdout], [], [], ready_timeout_s)
        line = p.stdout.readline() if r else ""
        if line.strip() != "ready":
            p.kill()
            out, err = p.communicate(timeout=10)
            return FloodAB(0, 0, 0, 0.0, p.returncode if p.returncode else -1, line + out,
                           err[-2000:] or "the sender never said ready")
        t_start = time.monotonic() + 0.05
        p.stdin.write(f"{t_start!r}\n")
        p.stdin.flush()
        per_phase = [0] * PHASES
        cb0, last, t0 = runner.callbacks, runner.underruns, time.monotonic()
        t_end = t_start + PHASES * PHASE_S + LAG_S
        while True:
            now = time.monotonic()
            u = runner.underruns
            if u != last:
                k = math.floor((now - LAG_S - t_start) / PHASE_S)
                if 0 <= k < PHASES:
                    per_phase[k] += u - last
                last = u
            if now >= t_end:
                break
            time.sleep(POLL_S)
        callbacks = runner.callbacks - cb0
        wall = time.monotonic() - t0
        out, err = p.communicate(timeout=60)
    except BaseException:
        p.kill()
        p.wait()
        raise
    return FloodAB(sum(per_phase[0::2]), sum(per_phase[1::2]), callbacks, wall, p.returncode,
                   out, err[-2000:], per_phase)


def wait_for_start() -> float:
    """Sender side: say ``ready`` and read the start time from stdin."""
    import sys

    print("ready", flush=True)
    return float(sys.stdin.readline())
