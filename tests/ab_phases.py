"""Live tests measured A/B: does a load (a control-message flood, the live view drawing) cost
the live runner under-runs?

On a shared VM the JACK dummy server's cycle and our audio threads stall for milliseconds at a
time, in phases that last seconds (an idle server with no client logs ~10 xruns in 20 s here;
in a bad phase hundreds). A flood test that counts every under-run during the flood and compares
it with a fixed allowance measures the machine's phase as much as the flood: it failed in CI with
50-150 under-runs and only 2-43 logged xruns, while the same test on a calm machine sees 0-3.

So the load is interleaved with its absence, as the bench compares bundles (round-robin, never
minutes apart): on for one ``PHASE_S`` phase, off for the next, for ``PHASES`` phases from a
start time. :func:`count_by_phase` polls the runner's under-run counter every ``POLL_S`` and files
each new under-run under the phase it happened in (``LAG_S`` earlier than it was seen: a block made
late by a burst is counted up to a couple of periods later); its ``tick`` lets the caller switch
the load on and off. A load that costs under-runs puts them in the "on" phases; the machine's
stalls fall on both alike. :func:`excess_allowed` is the bound the tests assert.

* Floods (:func:`run_flood_ab`): the sender floods in the even phases and is quiet in the odd.

  Sender side: a sender script prints ``ready`` once it is set up, reads the start time
  (``time.monotonic()``, one clock for every process on Linux) from its stdin and calls
  :func:`send_on_schedule`.
* The live view: its process is stopped (SIGSTOP) in the odd phases and drawing in the even.
"""

from __future__ import annotations

import math
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

PHASE_S = 0.1  # one phase, the load on or off
PHASES = 20  # 10 "on" phases (even indices) and 10 "off" ones (odd): 2 s
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
class PhaseCounts:
    """Under-runs filed by phase (load on in the even phases), and what a sender reported."""

    on_underruns: int
    off_underruns: int
    callbacks: int
    wall: float
    per_phase: list[int] = field(default_factory=list)
    sender_rc: int = 0
    sender_out: str = ""
    sender_err: str = ""

    @property
    def excess(self) -> int:
        """Under-runs in the "on" phases beyond those in the (equally long) "off" phases."""
        return self.on_underruns - self.off_underruns

    def summary(self) -> str:
        return (f"under-runs {self.on_underruns} with the load / {self.off_underruns} without "
                f"(excess {self.excess}, allowed {excess_allowed(self):.1f}), "
                f"{self.callbacks} callbacks in {self.wall:.2f} s; by phase {self.per_phase}")


def excess_allowed(r: PhaseCounts) -> float:
    """How many more under-runs the "on" phases may have than the "off" ones.

    If the load costs nothing, ``on - off`` (10 phases each) has mean 0 and variance
    ``10 var(flood phase) + 10 var(quiet phase)``. The variances are estimated from the phases
    themselves, so the bound widens when the machine's stalls come in bursts (one stall makes
    several under-runs in a row) and stays tight when it is calm. Allow 3 standard deviations,
    plus 3 for the odd under-run of a calm machine. A load that costs one under-run in every
    "on" phase on a calm machine (excess 10, no spread) fails it."""
    on, off = r.per_phase[0::2], r.per_phase[1::2]
    var = sum(len(g) * _sample_variance(g) for g in (on, off))
    return 3.0 + 3.0 * math.sqrt(var)


def _sample_variance(xs: Sequence[int]) -> float:
    if len(xs) < 2:
        return 0.0
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def count_by_phase(runner, t_start: float,
                   tick: Callable[[int], None] | None = None) -> PhaseCounts:
    """File the runner's under-runs by phase from ``t_start`` until PHASES phases are over.
    ``tick(phase)`` is called at every poll (phase -1 before the start) so the caller can switch
    its load on (even phases) and off (odd)."""
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
        if tick is not None:
            tick(min(PHASES - 1, math.floor((now - t_start) / PHASE_S)) if now >= t_start else -1)
        time.sleep(POLL_S)
    return PhaseCounts(sum(per_phase[0::2]), sum(per_phase[1::2]), runner.callbacks - cb0,
                       time.monotonic() - t0, per_phase)


def run_flood_ab(runner, sender_argv: list[str], *, cwd: str | None = None,
                 ready_timeout_s: float = 60.0) -> PhaseCounts:
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
            return PhaseCounts(0, 0, 0, 0.0, [], p.returncode or -1, line + out,
                               err[-2000:] or "the sender never said ready")
        t_start = time.monotonic() + 0.05
        p.stdin.write(f"{t_start!r}\n")
        p.stdin.flush()
        counts = count_by_phase(runner, t_start)
        out, err = p.communicate(timeout=60)
    except BaseException:
        p.kill()
        p.wait()
        raise
    counts.sender_rc, counts.sender_out, counts.sender_err = p.returncode, out, err[-2000:]
    return counts


def wait_for_start() -> float:
    """Sender side: say ``ready`` and read the start time from stdin."""
    import sys

    print("ready", flush=True)
    return float(sys.stdin.readline())
