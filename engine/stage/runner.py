"""The live path: audio interface -> rings -> worker (Engine) -> rings -> audio interface.

Threads
-------
* **audio callback** (PortAudio's thread, via sounddevice): copies ``indata`` into the
  input ring and the output ring into ``outdata``. Nothing else: no buffer allocation,
  no lock, no print, no Python loop over samples (a handful of numpy slice copies). It
  nudges the worker through an eventfd (one ``write`` syscall, no lock) where the OS has
  one, otherwise the worker polls.
* **worker**: takes new input from the input ring, reads the knob snapshot (MIDI) once per
  chunk, runs ``processor.process`` (the Engine) and appends the result to the output ring.
* **main thread**: prints a one-line status a few times a second and watches the stream
  (``vqblur.engine.stage.status.run_live``) -- when the runner is used in one process, as the
  tests do. ``vqblur live`` runs the runner in an audio process of its own whose main thread
  only waits, and shows the status from another process (``vqblur.engine.stage.audio``); the
  worker then publishes the counters to shared memory once per block (``share``).

The garbage collector is frozen and switched off while the stream runs (the callback and the
worker make no reference cycles), and the worker's loop allocates no buffer.

Timing and latency
------------------
Positions are absolute frame counts since the stream started. Input frame ``n`` arrives
in the callback that also plays output frame ``n``. The engine's output for input ``n``
(which, by the engine's contract, is ``x[n - D]``, ``D = processor.latency_samples``) is
written at output position ``n + P``, where ``P`` is the **prefill**: one host block.
So the worker has one full host period to turn the block it got in callback ``k`` into
the block played in callback ``k + 1``, and the live latency is fixed:

    declared live latency = D + P   (engine latency + one host block)

``prefill_blocks`` (default 1) makes ``P`` that many host blocks: the worker then has that many
periods for a block, so a stall of the machine shorter than ``prefill_blocks - 1`` periods (plus
what the block leaves of its own) costs no under-run, for that many blocks more latency.

not counting the audio interface's own converter/driver buffers (PortAudio reports
those as ``stream.latency``; on JACK they are the server's periods). The JACK test
measures the latency from the port of a test client to the port of another, and it
equals the declared figure. On JACK, a fixed ``blocksize`` other than 0 makes PortAudio
put its buffer adapter in the path, which adds one more block (measured: 2 x 128 with
``blocksize=128`` on a 128-frame server); the declared figure counts it. With
``blocksize=0`` (the default) PortAudio calls back at the server's period directly.

When the worker is late (its block is not in the output ring when the callback needs
it), the callback plays the **latency-aligned dry input** (the input ring still holds it)
instead of a gap, crossfading over a short ramp, counts an *under-run*, and skips the
positions it could not fill; the worker's late samples are dropped when they arrive
(a *deadline miss*), so the latency never drifts. If the worker falls far behind (more
than ``resync_s``) it skips input to catch up (*resync*). An *over-run* is input the worker
had not consumed when the callback had to overwrite it.
"""

from __future__ import annotations

import gc
import math
import os
import select
import sys
import threading
import time
from typing import Callable

import numpy as np

from vqblur.common.errors import UserError
from vqblur.engine.stage import devices
from vqblur.engine.stage.realtime import drop_realtime, hold_cpu_wakeup, try_realtime
from vqblur.engine.stage.ring import Ring
from vqblur.engine.stage.stats import LiveStats, counter_properties


try:
    import resource
    _RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", None)  # Linux
except ImportError:  # not on Windows
    _RUSAGE_THREAD = None

_clock = time.perf_counter


def ring_capacity(samplerate: int, seconds: float = 2.0) -> int:
    """Frames of the live rings: a power of two holding at least ``seconds`` (and 8192)."""
    return 1 << int(np.ceil(np.log2(max(seconds * samplerate, 8192))))


class PassThrough:
    """A stand-in processor: output = input (latency 0). For tests and `--bundle none`."""

    latency_samples = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        return np.array(x, dtype=np.float32, copy=True)


def _context_switches() -> int:
    """The calling thread's context switches so far, voluntary and involuntary (Linux; -1
    where ``RUSAGE_THREAD`` is missing: no block is then put down to the hypervisor)."""
    if _RUSAGE_THREAD is None:
        return -1
    ru = resource.getrusage(_RUSAGE_THREAD)
    return ru.ru_nvcsw + ru.ru_nivcsw


@counter_properties
class LiveRunner:
    """Duplex audio stream + worker thread around a processor (the Engine).

    ``processor`` needs ``process(x[n, channels]) -> y[n, channels]`` and
    ``latency_samples``; optional ``set_params(**knobs)``. ``knobs`` is a callable
    returning the current knob dict (e.g. :meth:`KnobReader.read`), read once per chunk.
    """

    def __init__(self, processor, *, samplerate: int = 48000, blocksize: int = 0,
                 channels: int = 1, input_device=None, output_device=None,
                 knobs: Callable[[], dict] | None = None, ring_seconds: float = 2.0,
                 max_chunk: int = 2048, fade: int = 64, resync_s: float = 0.25,
                 capture_seconds: float = 0.0, jack_client_name: str | None = None,
                 latency: str | float = "low", worker_priority: int = 0,
                 in_ring: Ring | None = None, out_ring: Ring | None = None, share=None,
                 prefill_blocks: int = 1, hold_cpu_wakeup: bool = True) -> None:
        self.processor = processor
        self.samplerate = int(samplerate)
        self.blocksize = int(blocksize or 0)
        self.channels = int(channels)
        self.knobs = knobs
        self.engine_latency = int(getattr(processor, "latency_samples", 0))
        self.max_chunk = int(max_chunk)
        self.fade = int(fade)
        self.resync_frames = int(resync_s * self.samplerate)
        self.input_device = input_device
        self.output_device = output_device
        self.jack_client_name = jack_client_name
        self.stream_latency_arg = latency
        # SCHED_FIFO priority for the worker (0 = off). The worker must turn each host
        # block around within one host period even when the machine is busy; a real-time
        # priority *below* the audio callback's does that (JACK runs its server thread at 10
        # and client process threads, hence PortAudio's callback, at 5: use 1..4).
        self.worker_priority = int(worker_priority)
        self.worker_realtime = False
        self.worker_demoted = False  # dropped its real-time priority: the engine is too slow
        self.adapter_latency = 0
        self.hostapi = ""
        # While the stream runs, no CPU may halt when idle and wake late for the next period
        # (on a VM a halted vCPU wakes milliseconds late): PM QoS, where permitted
        # (:func:`~vqblur.engine.stage.realtime.hold_cpu_wakeup`); False lets the CPUs sleep.
        self.hold_cpu_wakeup = bool(hold_cpu_wakeup)
        self.cpu_wakeup_held = "no (not started)"
        self._wake_fd = -1

        cap = ring_capacity(self.samplerate, ring_seconds)
        self.in_ring = in_ring if in_ring is not None else Ring(cap, self.channels)
        self.out_ring = out_ring if out_ring is not None else Ring(cap, self.channels)
        # ``share``: a StageShare (vqblur.engine.stage.share) the worker publishes the
        # counters and state to once per block, for another process to show
        self.share = share
        self._max_block = 8192
        self._dry = np.zeros((self._max_block, self.channels), dtype=np.float32)
        self._tmp = np.zeros((self._max_block, self.channels), dtype=np.float32)
        self._bad = np.zeros((self._max_block, self.channels), dtype=bool)
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(self.fade) + 0.5) / self.fade)).astype(np.float32)
        self._ramp_in = ramp.reshape(-1, 1)
        self._ramp_out = (1.0 - ramp).reshape(-1, 1)
        self._chunk = np.zeros((self.max_chunk, self.channels), dtype=np.float32)

        # the counters (one LiveStats: the callback writes its fields, the worker its own)
        self.counters = LiveStats(host_block=self.blocksize)
        # callback state (written by the callback only)
        self.prefill_blocks = int(prefill_blocks)
        if self.prefill_blocks < 1:
            raise ValueError(f"prefill_blocks must be >= 1, got {prefill_blocks}")
        self.prefill = self.blocksize * self.prefill_blocks  # 0 = unknown until the first callback
        self._wet = True
        self._last_cb = 0.0  # when the last callback's cycle began (stream clock)
        self._late_after = 1e9  # a callback this long after the last one is late (1.5 periods)
        # worker state (written by the worker only)
        self._slow_chunk_s = 1.0  # one host period, set when the worker starts
        self.worker_error: BaseException | None = None
        self.knob_values: dict = {}

        self.capture_frames = int(capture_seconds * self.samplerate)
        self.capture_in = np.zeros((self.capture_frames, self.channels), np.float32) if self.capture_frames else None
        self.capture_out = np.zeros((self.capture_frames, self.channels), np.float32) if self.capture_frames else None

        self.stream = None
        self.abandoned = False  # the stream would not close (audio server gone)
        self._worker: threading.Thread | None = None
        self._running = False
        self._finished = threading.Event()
        self._t_start = 0.0
        self._efd = -1
        self._poll = None
        self._old_switch = None
        self._gc_was_enabled: bool | None = None
        self._views: dict[int, np.ndarray] = {}  # worker: views of the chunk buffer, per size

    # ------------------------------------------------------------------ info
    @property
    def latency_samples(self) -> int:
        """Declared live latency: engine latency + prefill (``prefill_blocks`` host blocks, by
        default one), plus one more block where PortAudio adapts a fixed --blocksize to the
        host's (JACK with an explicit blocksize: measured, see the module docstring)."""
        return self.engine_latency + self.prefill + self.adapter_latency

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.latency_samples / self.samplerate

    @property
    def palette(self) -> str | None:
        """The name of the palette the engine's blur draws from (``Engine.palette``), if any."""
        eng = getattr(self.processor, "engine", self.processor)  # inside a resampler
        return getattr(eng, "palette", None)

    @property
    def status_priority(self) -> int:
        """Real-time priority for a status loop in this process: it shares the GIL with the
        worker, so it must not be preempted while it holds it (below the worker's)."""
        return 1 if self.worker_priority > 0 else 0

    def cpu_time(self) -> float:
        """CPU seconds this process has used (the status line's load)."""
        return time.process_time()

    def stats(self) -> LiveStats:
        """A copy of the counters, with the declared latency and the time since the start."""
        return self.counters.copy(
            latency_samples=self.latency_samples,
            elapsed_s=(time.monotonic() - self._t_start) if self._t_start else 0.0,
        )

    # ---------------------------------------------------------------- callback
    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        # PortAudio thread. Copies only; see the module docstring.
        c = self.counters
        # when the server's cycle reached this client (PortAudio's stream clock: on JACK the
        # frame time, which a wait for the GIL in here does not move)
        now = time_info.currentTime if time_info is not None else _clock()
        if status:
            c.status_flags += 1
        elif now - self._last_cb > self._late_after:  # the cycle came late, unflagged
            c.late_cycles += 1
        self._last_cb = now
        if self.prefill == 0:
            self.prefill = frames * self.prefill_blocks
            c.host_block = frames
            self._late_after = 1.5 * frames / self.samplerate
        c.callbacks += 1
        inr = self.in_ring
        if inr.write_pos + frames - inr.read_pos > inr.capacity:
            c.overruns += 1
        inr.write(indata, overwrite=True)
        if self._efd >= 0:
            try:
                os.eventfd_write(self._efd, 1)
            except OSError:
                pass
        outr = self.out_ring
        pos = outr.read_pos
        c.frames = pos + frames
        if frames > self._max_block:  # cannot happen with sane block sizes
            outdata.fill(0)
            outr.advance_read(frames)
            c.underruns += 1
            return
        if pos + frames <= self.prefill:  # the prefill: silence by design
            outdata.fill(0)
            outr.advance_read(frames)
            return
        avail = outr.write_pos - pos
        f = self.fade
        if avail >= frames:
            outr.read(outdata)
            if not self._wet:  # back from dry: fade the wet signal in
                self._wet = True
                k = f if f <= frames else frames
                dry = self._dry[:k]
                inr.read_at(pos - self.engine_latency - self.prefill, dry)
                tmp = self._tmp[:k]
                np.subtract(outdata[:k], dry, out=tmp)
                np.multiply(tmp, self._ramp_in[:k], out=tmp)
                np.add(dry, tmp, out=outdata[:k])
                self._limit(outdata, frames)
            return
        # Under-run: play the latency-aligned dry input for this block.
        c.underruns += 1
        c.last_underrun_pos = pos
        c.underrun_frames += frames - (avail if avail > 0 else 0)
        inr.read_at(pos - self.engine_latency - self.prefill, outdata)
        if self._wet and avail >= f:  # crossfade wet -> dry over the start of the block
            wet = self._tmp[:f]
            outr.peek(wet)
            np.multiply(wet, self._ramp_out, out=wet)
            dry = self._dry[:f]
            np.multiply(outdata[:f], self._ramp_in, out=dry)
            np.add(wet, dry, out=outdata[:f])
        self._wet = False
        outr.advance_read(frames)
        self._limit(outdata, frames)

    def _limit(self, outdata, frames: int) -> None:
        """The safety limit for blocks that carry the raw (dry) input: NaN -> 0, |y| <= 1.
        In place, with a preallocated mask (the Engine limits its own output already)."""
        bad = self._bad[:frames]
        np.not_equal(outdata, outdata, out=bad)
        np.copyto(outdata, 0.0, where=bad)
        np.clip(outdata, -1.0, 1.0, out=outdata)

    def _finished_callback(self) -> None:
        self._finished.set()
        if self._efd >= 0:  # wake the worker: it publishes that the stream has finished
            try:
                os.eventfd_write(self._efd, 1)
            except OSError:
                pass

    # ------------------------------------------------------------------ worker
    def _wait_input(self, timeout: float) -> None:
        if self._poll is not None:
            if self._poll.poll(timeout * 1000.0):
                try:
                    os.eventfd_read(self._efd)
                except OSError:
                    pass
        else:
            time.sleep(min(timeout, 0.0005))

    def _worker_loop(self) -> None:
        self.worker_realtime = try_realtime(self.worker_priority)
        try:
            self._worker_run()
        except BaseException as exc:  # reported by the main thread (or the control process)
            self.worker_error = exc
            if self.share is not None:
                self.share.set_error(repr(exc))
                self.share.publish(self)

    def _worker_run(self) -> None:
        while self._running and self.prefill == 0:
            self._wait_input(0.01)
        P = self.prefill
        self._slow_chunk_s = P / self.prefill_blocks / self.samplerate  # one host period
        self._next_in = 0
        self.out_ring.set_write_pos(P)
        self._set_params = getattr(self.processor, "set_params", None)
        self._last_knobs = {}
        self._win_t0, self._win_busy = time.monotonic(), 0.0
        share = self.share
        while self._running:
            self._drain()
            if share is not None:
                share.publish(self)
            self._wait_input(0.05)

    def _drain(self) -> None:
        """Process all the input the callback has delivered (one pass of the worker).

        Per block: the knob snapshot, ``processor.process`` and a few ring copies into
        preallocated buffers; no buffer is allocated here (``x`` is a cached view)."""
        inr, outr = self.in_ring, self.out_ring
        P = self.prefill
        c = self.counters
        proc = self.processor
        views = self._views
        next_in = self._next_in
        while self._running:
            if self.worker_realtime:
                # A real-time thread that never sleeps starves the rest of its core: if
                # the engine needs more than 85 % of real time, give the priority back.
                now = time.monotonic()
                if now - self._win_t0 >= 1.0:
                    if (c.worker_busy_s - self._win_busy) / (now - self._win_t0) > 0.85 and drop_realtime():
                        self.worker_realtime = False
                        self.worker_demoted = True
                    self._win_t0, self._win_busy = now, c.worker_busy_s
            w = inr.write_pos
            avail = w - next_in
            if avail <= 0:
                break
            # Far behind (or input overwritten): skip ahead so output can recover.
            behind = outr.read_pos - (next_in + P)
            if inr.overrun_since(next_in) or behind > self.resync_frames:
                new_next = max(next_in, outr.read_pos - P, w - inr.capacity // 2)
                new_next = min(new_next, w)
                next_in = new_next
                inr.set_read_pos(next_in)
                outr.set_write_pos(next_in + P)
                c.resyncs += 1
                continue
            n = min(avail, self.max_chunk)
            if outr.write_space() < n:  # consumer stalled (stream stopped): wait
                time.sleep(0.01)
                break
            x = views.get(n)
            if x is None:
                x = views[n] = self._chunk[:n]
            inr.read_at(next_in, x)
            if inr.overrun_since(next_in):  # overwritten while we copied
                continue
            inr.set_read_pos(next_in + n)
            if self.knobs is not None:
                kv = self.knobs()
                if kv != self._last_knobs:  # a change: a new snapshot (the only allocation)
                    self._last_knobs = dict(kv)
                    self.knob_values = self._last_knobs
                    if self._set_params is not None:
                        self._set_params(**self._last_knobs)
            csw0 = _context_switches()
            t0 = time.perf_counter()
            cpu0 = time.thread_time()
            y = proc.process(x)
            dt = time.perf_counter() - t0
            if not isinstance(y, np.ndarray) or y.dtype != np.float32:
                y = np.asarray(y, dtype=np.float32)
            if y.ndim == 1:
                y = y.reshape(-1, 1)
            dropped = outr.write(y)
            if dropped:
                c.deadline_misses += 1
                c.late_frames += dropped
            if self.capture_frames:
                self._capture(next_in, x, y, P)
            next_in += n
            self._next_in = next_in
            c.worker_chunks += 1
            c.worker_busy_s += dt
            if dt > self._slow_chunk_s:
                c.slow_chunks += 1
                # The worker's thread ran for under half of the chunk's wall time: it was held
                # off its core (the machine or another thread), not slowed by the engine's work.
                if time.thread_time() - cpu0 < 0.5 * dt:
                    c.stalled_chunks += 1
                    c.stall_periods += math.ceil(dt / self._slow_chunk_s)
                    # ... and the guest kernel never switched it out (no wait for the GIL, a
                    # lock or a thread, no preemption by a higher-priority thread): its virtual
                    # CPU was not running, the hypervisor's time (the kernel's thread clock
                    # leaves out steal time).
                    if csw0 >= 0 and _context_switches() == csw0:
                        c.machine_stalls += 1
            if dt > c.worker_max_chunk_s:
                c.worker_max_chunk_s = dt
        self._next_in = next_in

    def _capture(self, pos: int, x: np.ndarray, y: np.ndarray, P: int) -> None:
        N = self.capture_frames
        n = x.shape[0]
        if pos < N:
            k = min(n, N - pos)
            self.capture_in[pos:pos + k] = x[:k]
        op = pos + P
        if op < N:
            k = min(n, N - op)
            self.capture_out[op:op + k] = y[:k]

    # -------------------------------------------------------------- lifecycle
    def start(self) -> None:
        sd = devices.sd()
        if self.jack_client_name:
            devices.set_jack_client_name(self.jack_client_name)
        in_dev = devices.find_device(self.input_device, "input")
        out_dev = devices.find_device(self.output_device, "output")
        devs = sd.query_devices()
        for idx, kind, key in ((in_dev, "input", "max_input_channels"),
                               (out_dev, "output", "max_output_channels")):
            have = devs[idx][key]
            if have < self.channels:
                raise UserError(f"audio {kind} device [{idx}] {devs[idx]['name']} has {have} "
                                f"{kind} channel(s), {self.channels} requested (--channels)")
        self.in_device_index, self.out_device_index = in_dev, out_dev
        self.hostapi = devices.hostapi_name(sd, devs[in_dev])
        if "jack" in self.hostapi.lower() and self.blocksize:
            # PortAudio's JACK host API runs the callback at the server's period; a fixed
            # blocksize goes through its buffer adapter, one block later (measured in the
            # JACK test). Leave --blocksize at 0 on JACK to avoid it.
            self.adapter_latency = self.blocksize
        self._warm_up()
        if hasattr(os, "eventfd"):
            self._efd = os.eventfd(0, os.EFD_NONBLOCK)
            self._poll = select.poll()
            self._poll.register(self._efd, select.POLLIN)
        # Python's cyclic GC stops the thread that triggers it while it walks objects: freeze
        # what exists now (the engine, the bundle, the host program) and switch collections
        # off while the stream runs. The callback and the worker make no reference cycles
        # (their garbage is freed by reference counting as it goes); the collector is back on
        # when the stream stops.
        gc.collect()
        gc.freeze()
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self._old_switch = sys.getswitchinterval()
        # The worker is mostly numpy/onnxruntime (GIL released), but its Python glue must
        # hand the GIL to the audio callback quickly: 0.5 ms instead of the default 5 ms.
        sys.setswitchinterval(0.0005)
        if self.hold_cpu_wakeup:
            self._wake_fd, self.cpu_wakeup_held = hold_cpu_wakeup(0)
        else:
            self.cpu_wakeup_held = "no (asked to let the CPUs sleep)"
        self._running = True
        self._worker = threading.Thread(target=self._worker_loop, name="vqblur-worker", daemon=True)
        self._worker.start()
        try:
            self.stream = sd.Stream(
                samplerate=self.samplerate, blocksize=self.blocksize,
                device=(in_dev, out_dev), channels=(self.channels, self.channels),
                dtype="float32", latency=self.stream_latency_arg,
                callback=self._callback, finished_callback=self._finished_callback,
            )
        except sd.PortAudioError as exc:
            self._stop_worker()
            raise UserError(f"cannot open the audio stream on input [{in_dev}] "
                            f"{devs[in_dev]['name']} / output [{out_dev}] {devs[out_dev]['name']} "
                            f"at {self.samplerate} Hz, block {self.blocksize or 'auto'}: {exc}") from None
        self._t_start = time.monotonic()
        try:
            self.stream.start()
        except sd.PortAudioError as exc:
            self.stop()
            raise UserError(f"cannot start the audio stream: {exc}") from None

    def _warm_up(self) -> None:
        """Run the processor once before the stream starts (first inference calls are
        slow: onnxruntime allocates on first use), then reset its audio state."""
        reset = getattr(self.processor, "reset", None)
        if reset is None:
            return
        n = 4096
        self.processor.process(np.zeros((n, self.channels), np.float32))
        reset()

    @property
    def active(self) -> bool:
        s = self.stream
        try:
            return bool(s is not None and s.active and not self._finished.is_set())
        except Exception:
            return False

    def _stop_worker(self) -> None:
        self._running = False
        if self._efd >= 0:
            try:
                os.eventfd_write(self._efd, 1)
            except OSError:
                pass
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        if self._efd >= 0:
            self._poll = None
            os.close(self._efd)
            self._efd = -1
        if self._old_switch is not None:
            sys.setswitchinterval(self._old_switch)
            self._old_switch = None
        if self._gc_was_enabled is not None:
            gc.unfreeze()
            if self._gc_was_enabled:
                gc.enable()
            self._gc_was_enabled = None
        if self._wake_fd >= 0:  # the CPUs may sleep again
            os.close(self._wake_fd)
            self._wake_fd = -1

    def stop(self, timeout_s: float = 3.0) -> bool:
        """Stop and close the stream and the worker. Returns False if closing hung
        (e.g. the audio server died): the stream is then abandoned, not waited for."""
        ok = True
        stream, self.stream = self.stream, None
        if stream is not None:
            def _close():
                try:
                    stream.abort(ignore_errors=True)
                    stream.close(ignore_errors=True)
                except Exception:
                    pass
            t = threading.Thread(target=_close, name="vqblur-close", daemon=True)
            t.start()
            t.join(timeout_s)
            ok = not t.is_alive()
        self._stop_worker()
        return ok

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


