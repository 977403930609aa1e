"""Under load: `vqblur live` on the JACK dummy server keeps up with two CPU hogs running.

The shipped model with preset ``mids`` (the blur on), 48 kHz / 128-frame periods, a virtual
MIDI port and an OSC server open (idle, as on a stage), the demo clip played into it over and
over by a JACK client of another process, for 40 s mono and 20 s linked stereo
(``VQTEST_LOAD_SECONDS``; ``VQTEST_LOAD_ARGS`` adds arguments to the command, e.g.
``--prefill-blocks 2``). From one second after the signal arrives, 0.5 s phases alternate
(``tests/ab_phases.py``'s method, with longer phases): two CPU hogs -- ``yes > /dev/null`` and a
numpy matmul loop, one per core of the test machine -- run in the even phases and are stopped
(SIGSTOP) in the odd ones. The test reads the command's counters from its shared block
(``vqblur-live-<pid>``, ``vqblur.engine.stage.share``) every 2 ms, files each under-run under
the phase it happened in, and looks for the server being late next to it: an xrun (PortAudio's
status flag on a callback) or a cycle that reached the client over half a period late (the
runner's ``late_cycles``: the dummy driver's timer woke late, and the server did not call it an
xrun).

Asserted:

* the command runs to the end (exit 0) with its callbacks at the server's rate;
* A/B: no more under-runs in the hog phases than in the quiet ones beyond what the machine's own
  stalls explain (``excess_allowed``). A Python thread in the audio process that is not
  real-time and holds the GIL (1 ms of work every 5 ms) fails it by far: 341 and 388 under-runs
  in the hog phases against 51 and 50 in the quiet ones (allowed excess 132 and 135);
* the engine's own under-runs after the first second -- those with the server on time within
  ``NEAR`` callbacks and no CPU time taken by the hypervisor next to them (``tests/vm_steal.py``:
  ``STEAL_TICKS`` of steal within ``STEAL_WINDOW_S``; or a chunk of the worker the hypervisor held
  off its core within ``NEAR`` callbacks: the runner's ``machine_stalls``, a chunk whose thread ran
  for under half its wall time with no context switch at all; both counts are printed; a thread
  of the audio process holding the GIL for 5 ms every 50 ms made 104 stalled chunks and not one
  of these) -- and our client's
  own xruns in the server's log: 0 in strict mode
  (``VQTEST_STRICT_XRUNS=1``, a quiet machine). On a shared VM a few: its CPUs stall by
  themselves (a C program at SCHED_FIFO doing 0.55 ms of work every 2.67 ms, no Python at all,
  had up to 14 periods in 40 s whose work took 3-10 times as long, and up to 58 wake-ups late by
  more than 1.5 ms), and not every stall makes the server late; ``OWN_ALLOWED`` plus 0.1 % of
  the callbacks (17 in 40 s), half the suite's usual allowance (``check_clean``). The bad
  thread above made 139-151 own under-runs and 201-243 xruns of our client.

Strict mode, honestly: on this 2-vCPU VM with other jobs running (load average 3-4.7), 12 runs of
40 s (mono and linked stereo, six of them with the audio process's memory unlocked) had 0-3 own
under-runs in 11 and 10 in one bad phase; 4 had none, and only one had none of our client's
xruns in the server's log either. So strict mode fails here in nearly every run; it is for a
dedicated machine (docs/ARCHITECTURE.md, "The live stage's two processes", says where the rest
comes from). With ``VQTEST_LOAD_ARGS="--prefill-blocks 2"`` (one more block of slack for the
worker) 10 runs of 10 had no own under-run; strict mode then fails only on our client's xruns
in the server's log (1 of 2 strict runs did).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.ab_phases import PhaseCounts, excess_allowed
from tests.vm_steal import TICK_S, steal_ticks, stolen_near

pytestmark = [pytest.mark.jack, pytest.mark.slow]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRICT = os.environ.get("VQTEST_STRICT_XRUNS") == "1"
PHASE_S = 0.5
POLL_S = 0.002
LAG_S = 0.01
NEAR = 8  # callbacks (21 ms at 128 frames / 48 kHz) either side of a server xrun
OWN_ALLOWED = 3  # + OWN_PER_CALLBACK per callback: the machine's own stalls (module docstring)
OWN_PER_CALLBACK = 0.001
STEAL_WINDOW_S = 0.05  # an under-run within 50 ms of ...
STEAL_TICKS = 2  # ... 2 ticks (20 ms) of CPU time the hypervisor took is the machine's
CLIP = os.path.join(ROOT, "presets", "clips", "demo.wav")

_MATMUL = ("import numpy as np\n"
           "a = np.random.default_rng(0).random((400, 400))\n"
           "while True:\n"
           "    a = a @ a\n"
           "    a /= a.max()\n")


class Hogs:
    """Two CPU hogs, stopped and resumed with SIGSTOP / SIGCONT."""

    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL),
                      subprocess.Popen([sys.executable, "-c", _MATMUL], env=env)]
        self.running = True
        self.set(False)

    def set(self, on: bool) -> None:
        if on != self.running:
            for p in self.procs:
                p.send_signal(signal.SIGCONT if on else signal.SIGSTOP)
            self.running = on

    def close(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait()


def start_loop_player(dut: str, seconds: float, channels: int = 1) -> subprocess.Popen:
    """``tests.jack_server loop``: the demo clip played over and over into ``dut``'s inputs (a
    regular expression), in a process of its own, for ``seconds``; returns once it plays."""
    player = subprocess.Popen([sys.executable, "-m", "tests.jack_server", "loop", CLIP, "--dut", dut,
                               "--channels", str(channels), "--seconds", str(seconds)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = player.stdout.readline()
    assert line.strip() == "playing", line + player.communicate(timeout=30)[1][-2000:]
    return player


def stop_processes(*procs) -> None:
    """Kill (and reap) the given processes that still run; None entries are skipped."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()


def _attach(pid: int, proc, timeout_s: float = 120.0):
    """The running command's shared block, once its stream runs."""
    from vqblur.engine.stage.share import StageShare

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            share = StageShare.attach_to_pid(pid)
        except FileNotFoundError:
            time.sleep(0.05)
            continue
        while time.monotonic() < deadline and share["started"] == 0.0:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.05)
        return share
    raise AssertionError("vqblur live never started its stream")


def measure(share, t_start: float, phases: int, hogs: Hogs):
    """Poll the counters until ``phases`` phases from ``t_start`` are over; hogs on in the even
    phases. Returns (PhaseCounts, under-run events [(callbacks, n, phase)], the callbacks at which
    the server was late: an xrun, or a cycle that reached the client over half a period late;
    the hypervisor's steal time [(time, ticks so far)] at each change, and the callbacks at which
    the worker reported a chunk the hypervisor held off its core (``machine_stalls``)). Each
    under-run event is (callbacks, n, phase, time)."""
    ix = share._index
    v = share.values
    i_u, i_x, i_l, i_c = ix["underruns"], ix["status_flags"], ix["late_cycles"], ix["callbacks"]
    i_m = ix["machine_stalls"]
    per_phase = [0] * phases
    under, flags, held = [], [], []
    last_u, last_x, last_l, last_m = v[i_u], v[i_x], v[i_l], v[i_m]
    cb0, t0 = v[i_c], time.monotonic()
    steal = [(t0, steal_ticks())]
    t_end = t_start + phases * PHASE_S + LAG_S
    while True:
        now = time.monotonic()
        u, x, late, cb, m = v[i_u], v[i_x], v[i_l], v[i_c], v[i_m]
        st = steal_ticks()
        if st != steal[-1][1]:
            steal.append((now, st))
        if x != last_x or late != last_l:  # a server xrun, or a cycle that began late
            flags.append(int(cb))
            last_x, last_l = x, late
        if m != last_m:
            held.append(int(cb))
            last_m = m
        if u != last_u:
            k = math.floor((now - LAG_S - t_start) / PHASE_S)
            under.append((int(cb), int(u - last_u), k, now - LAG_S))
            if 0 <= k < phases:
                per_phase[k] += int(u - last_u)
            last_u = u
        if now >= t_end + STEAL_WINDOW_S + TICK_S:
            break
        if t_start <= now < t_end:
            hogs.set(math.floor((now - t_start) / PHASE_S) % 2 == 0)
        else:
            hogs.set(False)
        time.sleep(POLL_S)
    hogs.set(False)
    counts = PhaseCounts(sum(per_phase[0::2]), sum(per_phase[1::2]), int(v[i_c] - cb0),
                         time.monotonic() - t0, per_phase)
    return counts, under, flags, steal, held


def own_underruns(under, flags, steal, held, phases: int) -> tuple[int, int, int]:
    """(under-runs in the measured phases, those with the server on time within NEAR callbacks,
    no stolen CPU time near them (STEAL_TICKS within STEAL_WINDOW_S) and no chunk of the worker
    held off its core by the hypervisor within NEAR callbacks (``held``): the engine's own, and
    those the hypervisor explains)."""
    total = own = stolen = 0
    for cb, n, k, t in under:
        if not 0 <= k < phases:
            continue
        total += n
        if any(abs(cb - f) <= NEAR for f in flags):
            continue
        if any(abs(cb - h) <= NEAR for h in held) or stolen_near(steal, t, STEAL_WINDOW_S) >= STEAL_TICKS:
            stolen += n
        else:
            own += n
    return total, own, stolen


@pytest.mark.parametrize("channels,seconds", [(1, 40.0), (2, 20.0)], ids=["mono", "linked-stereo"])
def test_live_keeps_up_under_two_cpu_hogs(jack_server, channels, seconds):
    seconds = float(os.environ.get("VQTEST_LOAD_SECONDS", seconds))
    name = f"vqload-{os.getpid()}-{channels}"
    log0 = jack_server.log_size()
    # with a MIDI port and an OSC server open, as on stage (both idle: their threads still wake)
    extra = os.environ.get("VQTEST_LOAD_ARGS", "").split()  # e.g. "--prefill-blocks 2"
    live = subprocess.Popen([sys.executable, "-m", "vqblur", "live", "--preset", "mids",
                             "--channels", str(channels), "--duration", str(seconds),
                             "--jack-name", name, "--midi-virtual", "knobs", "--midi-api", "jack",
                             "--osc", "0", *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    player = hogs = share = None
    try:
        share = _attach(live.pid, live)
        hogs = Hogs()
        # the MIDI port's JACK client took the name: the audio client is "<name>-01"
        player = start_loop_player(f"{name}(-[0-9]+)?", seconds + 30, channels)
        t_start = time.monotonic() + 1.0  # from the first second on
        phases = 2 * int((seconds - 3.0) / (2 * PHASE_S))
        ab, under, flags, steal, held = measure(share, t_start, phases, hogs)
        c = share.counters()  # the worker's chunks over one host period, and those held off the CPU
        chunks = {"slow": c.slow_chunks, "stalled": c.stalled_chunks, "stall_periods": c.stall_periods,
                  "machine": c.machine_stalls}
        out, err = live.communicate(timeout=seconds + 60)
    finally:
        stop_processes(player, live)
        if hogs is not None:
            hogs.close()
        if share is not None:
            share.close()
    xr = jack_server.xrun_report(log0, dut=name, upstream="vqtest-loop")
    total, own, stolen = own_underruns(under, flags, steal, held, phases)
    steal_ms = 1000 * TICK_S * (steal[-1][1] - steal[0][1])
    own_allowed = 0 if STRICT else OWN_ALLOWED + OWN_PER_CALLBACK * ab.callbacks
    dut_allowed = 0 if STRICT else 3 + xr["machine"] + OWN_PER_CALLBACK * ab.callbacks
    summary = (f"{channels} ch, {phases} phases of {PHASE_S} s: {ab.summary()}; under-runs after the "
               f"first second {total}, the engine's own (the server on time within {NEAR} callbacks) "
               f"{own} (allowed {own_allowed:.0f}), next to the hypervisor's steal or a worker chunk it held "
               f"off its core {stolen} (CPU time stolen {steal_ms:.0f} ms in all, {len(held)} chunks "
               f"held); server late (xrun or late cycle) {len(flags)} times; "
               f"JACK log: driver late {xr['driver']}, graph late {xr['graph_env']}, our client late "
               f"{xr['dut']} (allowed {dut_allowed:.0f})")
    print(summary)
    print("LOAD " + json.dumps({"channels": channels, "on": ab.on_underruns, "off": ab.off_underruns,
                                "allowed_excess": round(excess_allowed(ab), 1), "after_first_s": total,
                                "own": own, "stolen": stolen, "steal_ms": round(steal_ms),
                                "flags": len(flags), "chunks": chunks, "xruns": {k: xr[k] for k in
                                                                            ("driver", "graph_env", "dut")}}))
    final = [ln for ln in err.splitlines() if " callbacks, " in ln]
    print(final[-1] if final else err[-2000:])
    assert live.returncode == 0, err[-3000:]
    assert ab.callbacks >= 0.9 * (48000 / 128) * ab.wall, summary  # the callbacks kept their rate
    assert ab.excess <= excess_allowed(ab), summary
    assert own <= own_allowed, summary
    assert xr["dut"] <= dut_allowed, summary  # the callback itself never waits long (for the GIL)
