"""``vqblur live`` in two processes: the audio process keeps only the real-time work.

Every thread of one Python process shares one lock, the GIL. A thread that is not real-time
(the status loop, OSC's or MIDI's receive thread, the terminal output) can hold it when the
scheduler takes it off the CPU, and the SCHED_FIFO worker and the audio callback then wait for
it: measured on the JACK dummy server, blocks whose processing took 3-4 ms of wall time for
under 1 ms of the worker's CPU time, in runs with MIDI and OSC open. So ``vqblur live`` runs:

* the **audio process** (:func:`main`, ``python -m vqblur.engine.stage.audio``): the engine,
  the audio callback and the worker (:class:`~vqblur.engine.stage.runner.LiveRunner`), and a
  main thread that sleeps in a blocking read of its commands (it holds no lock while it
  waits). No other Python thread, and no BLAS helper thread (the process starts with
  ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` 1 unless they are set); the
  garbage collector is off while the stream runs; its memory is locked in RAM (``mlockall``
  where permitted: root, or an unlimited ``RLIMIT_MEMLOCK``) and the shared rings are touched
  before the stream starts, so that no page fault lands in the callback or the worker; and it
  holds the CPUs' wake-up latency at 0 us (PM QoS, where permitted; ``--cpu-idle`` lets them
  sleep), so no idle CPU wakes late for the next period. The
  worker publishes the counters, the state and the meters' audio to a shared block once per
  block and reads the knobs from it (:mod:`vqblur.engine.stage.share`);
* the **control process** (the command itself): the status line and the terminal, OSC and
  MIDI (parsed there; a knob pump writes the merged values to the shared block,
  :class:`~vqblur.engine.stage.control.KnobPump`), MIDI learn, and the live view's process.
  It talks to the audio process through :class:`AudioProcess`, which looks like a
  ``LiveRunner`` to the status loop (:func:`~vqblur.engine.stage.status.run_live`) and the
  live view.

Ctrl-C goes to the control process (the audio process ignores it); the control process tells
the audio process to stop, waits for its last counters and prints the summary. If the control
process dies, the audio process sees its command pipe close and stops.

Messages, one JSON object per line: audio process -> control process on its stdout
(``{"ready": {...}}`` once the stream runs, ``{"stopped": {...}}`` at the end); control ->
audio on its stdin (``{"stop": true}``; ``{"palette": PATH, "serial": N}``). Errors the user
can fix (a device, a bundle, a preset's palette) are printed by the audio process on the shared
stderr as the command's own (exit code 2).

Palettes
--------
A palette switch (OSC ``/vqblur/palette PATH``, or a preset that names a palette) reaches the
audio process as a ``palette`` message. Its main thread -- not the worker, not the audio
callback -- calls ``Engine.load_palette`` (reads, checks and stacks the bundle's Naive Bayes
tables: about 15 ms of file reading and numpy), at a real-time priority below the worker's while
it does (so that no other program preempts it while it holds the GIL the worker needs), and
waits until the worker has swapped the tables in between two code columns. It then publishes
the palette playing, or why the request was refused (the current palette keeps playing), in
the shared block (:meth:`~vqblur.engine.stage.share.StageShare.set_palette_state`); the
control process's status line and view show it. ``PATH`` ``""`` is the model's own tables.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time

from pathlib import Path

import numpy as np

from vqblur.engine.stage.realtime import lock_memory, realtime_thread
from vqblur.engine.stage.ring import Ring
from vqblur.engine.stage.runner import ring_capacity
from vqblur.engine.stage.share import COLUMN_RING, SharedKnobs, StageShare
from vqblur.engine.stage.stats import counter_properties

#: how long the control process waits for the audio process to start (load the bundle, warm
#: up the engine, open the stream)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


class AudioProcessFailed(Exception):
    """The audio process exited before its stream ran (it printed why); ``code`` is its exit
    code (2 for a mistake the user can fix)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the audio process exited with code {code}")
        self.code = code


class RemoteError(str):
    """The worker's exception in the audio process, as its repr (``runner.worker_error``)."""

    def __repr__(self) -> str:
        return str(self)


class _MirroredRing(Ring):
    """Read side of a ring the audio process writes: the data in shared memory, the positions
    as the worker last published them (for the level meters)."""

    def __init__(self, share: StageShare, buf: np.ndarray, write_key: str, read_key: str) -> None:
        self.capacity, self.channels, self.buf = buf.shape[0], buf.shape[1], buf
        self._share, self._wk, self._rk = share, write_key, read_key

    @property
    def write_pos(self) -> int:  # type: ignore[override]
        return int(self._share[self._wk])

    @property
    def read_pos(self) -> int:  # type: ignore[override]
        return int(self._share[self._rk])


class _SharedEngineStats:
    """``processor.stats`` for the live view: the engine's recent per-column times."""

    def __init__(self, share: StageShare) -> None:
        self._share = share
        self.column_times = share.column_times

    @property
    def columns(self) -> int:
        return int(self._share["columns"])


class _Processor:
    def __init__(self, share: StageShare) -> None:
        self.stats = _SharedEngineStats(share)


@counter_properties
class AudioProcess:
    """The control process's handle on the audio process; reads like a ``LiveRunner``.

    ``spec``: what the audio process builds (see :func:`main`). ``start()`` spawns it and
    returns once its stream runs; ``stop()`` ends it and keeps its last counters.
    """

    status_priority = 0  # the status loop shares no lock with the audio: no real-time needed

    def __init__(self, spec: dict, knobs: tuple[str, ...], ring_seconds: float = 2.0) -> None:
        self.spec = dict(spec)
        self.samplerate = int(spec["samplerate"])
        self.channels = int(spec["channels"])
        self.blocksize = int(spec.get("blocksize") or 0)
        self.worker_priority = int(spec.get("worker_priority", 0))
        self.jack_client_name = spec.get("jack_name")
        self.knob_names = tuple(knobs)
        cap = ring_capacity(self.samplerate, ring_seconds)
        self.share = StageShare.create(os.getpid(), self.knob_names, cap, self.channels)
        self.spec["share"] = self.share.name
        self.spec["ring_seconds"] = ring_seconds
        self.in_ring = _MirroredRing(self.share, self.share.in_buf, "in_write_pos", "in_write_pos")
        self.out_ring = _MirroredRing(self.share, self.share.out_buf, "out_write_pos", "out_read_pos")
        self.processor = _Processor(self.share)
        self.info: dict = {}
        self.proc: subprocess.Popen | None = None
        self.abandoned = False
        self._final = None  # (counters, state) after stop
        self._stopped = False
        self._pipe_lock = threading.Lock()  # the OSC thread and the main thread both write commands
        self._palette_serial = 0
        self._palette_seen = 0  # the last request whose outcome palette_events() reported
        self._palette_last: dict = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Spawn the audio process and wait until its stream runs (a second call does nothing).
        Raises :class:`AudioProcessFailed` if it exits first."""
        if self.proc is not None:
            return
        cmd = [sys.executable, "-m", "vqblur.engine.stage.audio", json.dumps(self.spec)]
        env = dict(os.environ)
        for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(k, "1")  # the engine's matrices are small: no BLAS helper threads
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1, env=env)
        msg = self._read_message(START_TIMEOUT_S)
        if msg is None or "ready" not in msg:
            code = self._reap(STOP_TIMEOUT_S)
            self._stopped = True
            raise AudioProcessFailed(code if code else 1)
        self.info = msg["ready"]

    def _read_message(self, timeout_s: float) -> dict | None:
        out = self.proc.stdout
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([out], [], [], min(left, 0.5))
            if not r:
                if self.proc.poll() is not None:
                    return None
                continue
            line = out.readline()
            if not line:
                return None
            try:
                return json.loads(line)
            except ValueError:
                continue  # not ours (a library printing to stdout): skip it

    def _reap(self, timeout_s: float) -> int:
        p = self.proc
        try:
            return p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Tell the audio process to stop; keep its last counters. Returns False when its
        stream would not close (the audio server gone: it abandoned the stream)."""
        if self._stopped:
            return not self.abandoned
        self._stopped = True
        p = self.proc
        ok = True
        if p is not None and p.poll() is None:
            self._command({"stop": True})
            msg = self._read_message(timeout_s + STOP_TIMEOUT_S)
            if msg is not None and "stopped" in msg:
                ok = bool(msg["stopped"].get("closed", True))
            self._reap(STOP_TIMEOUT_S)
        else:
            ok = self.share["abandoned"] == 0.0
        self._final = (self.share.counters(), self._state())
        return ok

    def _command(self, msg: dict) -> bool:
        """Send one command line to the audio process (any thread); False if it is gone."""
        p = self.proc
        if p is None:
            return False
        with self._pipe_lock:
            try:
                p.stdin.write(json.dumps(msg) + "\n")
                p.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    # ------------------------------------------------------------------ palettes
    def load_palette(self, path: str | None) -> int:
        """Ask the audio process to switch the blur's tables to the bundle folder ``path``
        (``None`` or ``""``: the model's own). Returns the request's serial number; the outcome
        shows in :meth:`palette_state` (its ``serial``) once the audio process has loaded it
        and the worker swapped it in. Callable from any thread (the OSC receive thread)."""
        p = "" if not path else os.path.abspath(os.path.expanduser(str(path)))
        with self._pipe_lock:
            self._palette_serial += 1
            serial = self._palette_serial
        if self._stopped or not self._command({"palette": p, "serial": serial}):
            return 0
        return serial

    def palette_state(self) -> dict:
        """``{"name", "path", "serial", "error", "requested", "switches"}`` as the audio process
        last published it: ``name``/``path`` = the palette playing; ``error`` = why the request
        ``serial`` (for ``requested``) was refused, else None."""
        if self.share.values is not None:  # (after close: the last state read)
            st = self.share.palette_state()
            if st is not None:
                self._palette_last = st
        return self._palette_last

    @property
    def palette(self) -> str | None:
        """The name of the palette playing (the bundle folder's name)."""
        return self.palette_state().get("name")

    def palette_events(self) -> list[str]:
        """Lines for the user about palette requests handled since the last call."""
        st = self.palette_state()
        serial = int(st.get("serial") or 0)
        if serial <= self._palette_seen:
            return []
        self._palette_seen = serial
        return [palette_message(st)]

    def close(self) -> None:
        """Free the shared block (after ``stop``)."""
        if not self._stopped:
            self.stop()
        if self.proc is not None:
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except Exception:
                    pass
        if self._final is None:
            self._final = (self.share.counters(), self._state())
        self.share.close()

    def _state(self) -> dict:
        s = self.share
        return {k: s[k] for k in ("prefill", "adapter_latency", "engine_latency", "t_start",
                                  "worker_realtime", "worker_demoted", "worker_failed")} | {
            "error": s.error(), "knobs": s.applied_knobs(),
            "elapsed": (s["heartbeat"] - s["t_start"]) if s["t_start"] else 0.0}

    # ------------------------------------------------------------------ what the status shows
    @property
    def counters(self):
        if self._final is not None:
            return self._final[0]
        return self.share.counters()

    def _get(self, key: str) -> float:
        if self._final is not None:
            return self._final[1][key]
        return self.share[key]

    @property
    def prefill(self) -> int:
        return int(self._get("prefill"))

    @property
    def engine_latency(self) -> int:
        return int(self._get("engine_latency"))

    @property
    def adapter_latency(self) -> int:
        return int(self._get("adapter_latency"))

    @property
    def latency_samples(self) -> int:
        return self.engine_latency + self.prefill + self.adapter_latency

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.samplerate

    @property
    def worker_realtime(self) -> bool:
        return bool(self._get("worker_realtime"))

    @property
    def worker_demoted(self) -> bool:
        return bool(self._get("worker_demoted"))

    @property
    def worker_error(self):
        if self._get("worker_failed"):
            return RemoteError(self._final[1]["error"] if self._final is not None else self.share.error())
        return None

    @property
    def knob_values(self) -> dict:
        if self._final is not None:
            return self._final[1]["knobs"]
        return self.share.applied_knobs()

    @property
    def active(self) -> bool:
        p = self.proc
        if p is None or self._stopped or p.poll() is not None:
            return False
        return self.share["finished"] == 0.0

    def stats(self):
        t0 = self._get("t_start")
        elapsed = (time.monotonic() - t0) if (t0 and self._final is None) else (
            self._final[1]["elapsed"] if self._final is not None else 0.0)
        return self.counters.copy(latency_samples=self.latency_samples, elapsed_s=elapsed)

    def cpu_time(self) -> float:
        """CPU seconds the audio process has used (Linux /proc; 0 elsewhere)."""
        p = self.proc
        if p is None:
            return 0.0
        try:
            with open(f"/proc/{p.pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0


def palette_message(st: dict) -> str:
    """One line about the last palette request in a palette state (see ``palette_state``)."""
    if st.get("error"):
        return (f"palette refused: {st['error']}; still playing '{st.get('name')}'")
    return f"palette '{st.get('name')}' playing ({st.get('path')})"


# ============================================================================ the audio process
def _send(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main(argv=None) -> int:
    """The audio process: build the engine and the runner from the spec (a JSON object, the
    one argument), run the stream until told to stop (or the control process is gone)."""
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the control process's to handle
    spec = json.loads(argv[0])
    from vqblur.common.errors import UserError

    try:
        runner, share, tap, info = _build(spec)
        palettes = PaletteSwitcher(runner, share)
        if spec.get("palette"):  # the preset's palette, before the stream starts
            err = palettes.switch(spec["palette"], 0, wait=False)
            if err is not None:
                raise UserError(f"the preset's palette: {err}")
        # No page fault in the callback or the worker: touch the shared rings (their pages are
        # first written by the callback otherwise) and lock the process's memory, before the
        # stream's threads start (VQBLUR_LIVE_MEMLOCK=0 leaves the memory unlocked, to measure)
        for buf in (share.in_buf, share.out_buf, share.column_times):
            buf.fill(0)
        memlock = ("no (VQBLUR_LIVE_MEMLOCK=0)" if os.environ.get("VQBLUR_LIVE_MEMLOCK") == "0"
                   else lock_memory())
        # and no CPU that halts when idle and wakes late for the next period: the runner holds
        # that while the stream runs (--cpu-idle, or VQBLUR_LIVE_CPU_WAKEUP=0 to measure, lets
        # the CPUs sleep)
        runner.start()
        idle = _cpu_idle_reason(spec)
        wakeup = runner.cpu_wakeup_held if idle is None else f"no ({idle})"
    except UserError as exc:
        print(f"vqblur live: error: {exc}", file=sys.stderr, flush=True)
        return 2
    share["t_start"] = runner._t_start
    share["adapter_latency"] = runner.adapter_latency
    share["started"] = 1.0
    share.publish(runner)
    info.update(hostapi=runner.hostapi, worker_realtime=runner.worker_realtime, memory_locked=memlock,
                cpu_wakeup_held=wakeup)
    _send({"ready": info})
    # The main thread now sleeps in a blocking read (no lock held) until the control
    # process says stop or goes away (its end of the pipe closes).
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        if msg.get("stop"):
            break
        if "palette" in msg:
            palettes.switch(msg["palette"], int(msg.get("serial") or 0))
    closed = runner.stop()
    share.publish(runner)
    share["stopped"] = 1.0
    share["abandoned"] = 0.0 if closed else 1.0
    err = runner.worker_error
    try:
        _send({"stopped": {"closed": closed, "worker_error": repr(err) if err is not None else None}})
    except (BrokenPipeError, OSError):
        pass
    if tap is not None:
        tap.close(unlink=True)
    share.close()
    if not closed:
        # The audio server died under the stream: PortAudio would hang in its exit handlers.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


class PaletteSwitcher:
    """The audio process's palette switches, on its main thread (see the module docstring).
    ``share``: where the outcome is published (None: only ``state``)."""

    def __init__(self, runner, share: StageShare | None = None) -> None:
        self.runner, self.share = runner, share
        self.engine = getattr(runner.processor, "engine", runner.processor)  # inside a resampler
        b = getattr(self.engine, "bundle", None)
        self.own = str(b.root) if b is not None else None
        self.state = {"name": getattr(self.engine, "palette", None), "path": self.own, "serial": 0,
                      "error": None, "requested": None, "switches": 0}
        self._publish()

    def _publish(self) -> None:
        if self.share is not None:
            self.share.set_palette_state(self.state)

    def switch(self, path: str, serial: int, wait: bool = True) -> str | None:
        """Load the palette at ``path`` ("" = the model's own tables) and, with ``wait``, wait
        until the worker has swapped it in. Publishes the outcome; returns the error or None."""
        eng, st = self.engine, self.state
        st["serial"], st["requested"] = serial, path or self.own
        st["request_pos"] = int(getattr(self.runner, "_next_in", 0))  # the worker's input position
        err = None
        if not hasattr(eng, "load_palette"):
            err = "this engine takes no palette"
        else:
            target = path or self.own
            # Below the worker's priority: while this thread holds the GIL it is not preempted by
            # other programs, and the worker (priority 3) still runs before it.
            prio = 1 if self.runner.worker_realtime else 0
            with realtime_thread(prio):
                try:
                    name = eng.load_palette(target)
                except Exception as exc:  # a bad path, a bundle that does not fit: keep playing
                    err = f"{target}: {exc}"
            if err is None:
                if wait:
                    self._wait_swapped()
                st["name"], st["path"] = name, str(Path(target).resolve())
                st["switches"] += 1
                # by then the worker had taken the tables: its input position, the output's
                st["swapped_pos"] = int(getattr(self.runner, "_next_in", 0))
                st["frame"] = int(self.runner.counters.frames)
        st["error"] = err
        self._publish()
        return err

    def _wait_swapped(self, timeout_s: float = 2.0) -> None:
        # The worker takes the prepared tables at its next chunk (between two columns); wait so
        # that a second request cannot replace tables the worker has not taken yet, and so that
        # "playing" means playing.
        eng = self.engine
        deadline = time.monotonic() + timeout_s
        while eng.palette_pending and time.monotonic() < deadline:
            time.sleep(0.002)


def _cpu_idle_reason(spec: dict) -> str | None:
    """Why the CPUs may sleep during the stream (``--cpu-idle``, or ``VQBLUR_LIVE_CPU_WAKEUP=0``
    to measure), or None: the runner holds their wake-up latency."""
    if not spec.get("hold_cpu_wakeup", True):
        return "--cpu-idle"
    if os.environ.get("VQBLUR_LIVE_CPU_WAKEUP") == "0":
        return "VQBLUR_LIVE_CPU_WAKEUP=0"
    return None


def _build(spec: dict):
    from vqblur.engine import knobs as _knobs
    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine
    from vqblur.engine.stage.runner import LiveRunner
    from vqblur.engine.stage.view import zone_axis_of

    params = Params(**spec["params"])
    bundle = load_bundle(spec["bundle"] or default_bundle_path())
    sr = int(spec["samplerate"])
    channels = int(spec["channels"])
    engine = make_engine(bundle, sample_rate=sr, params=params, channels=channels,
                         seed=int(spec.get("seed", 0)), threads=int(spec.get("threads", 1)),
                         stereo=spec.get("stereo", "linked"))
    share = StageShare.attach(spec["share"], _knobs.NAMES)
    cap = share.capacity
    in_ring = Ring(cap, channels, buffer=share.in_buf)
    out_ring = Ring(cap, channels, buffer=share.out_buf)
    knobs = SharedKnobs(share, params.as_dict())
    runner = LiveRunner(engine, samplerate=sr, blocksize=int(spec.get("blocksize") or 0),
                        channels=channels, input_device=spec.get("input"),
                        output_device=spec.get("output"), knobs=knobs.read,
                        jack_client_name=spec.get("jack_name"),
                        worker_priority=int(spec.get("worker_priority", 0)),
                        in_ring=in_ring, out_ring=out_ring, share=share,
                        prefill_blocks=int(spec.get("prefill_blocks", 1)),
                        hold_cpu_wakeup=_cpu_idle_reason(spec) is None)
    share["engine_latency"] = runner.engine_latency
    share["samplerate"], share["channels"], share["blocksize"] = sr, channels, runner.blocksize
    share["pid_audio"] = os.getpid()
    inner = getattr(engine, "engine", engine)
    cfg = inner.config
    top_hz = float(cfg.model_bin_hz()[0][-1])
    info = {"engine_latency": runner.engine_latency, "rows": cfg.rows,
            "codebook_size": cfg.codebook_size,
            "columns_per_second": cfg.sample_rate / cfg.column_samples,
            "band_hz": (top_hz + cfg.sample_rate / cfg.n_fft) / cfg.rows, "tap": None,
            # the view labels the rows and outlines the zone on the engine's own axes
            "zone_axis": zone_axis_of(inner)}
    tap = None
    if spec.get("view"):
        from vqblur.engine.stage.tap import ColumnTap

        cps = info["columns_per_second"]
        tap = ColumnTap(cfg.rows, capacity=1 << max(10, int(cps * 60).bit_length()), shared=True)
        inner.tap = tap
        info["tap"] = tap.name
    return runner, share, tap, info


if __name__ == "__main__":
    sys.exit(main())
