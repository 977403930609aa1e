"""The live stage's status loop: a one-line status (or the live view) while a runner plays.

:func:`run_live` starts a :class:`~vqblur.engine.stage.runner.LiveRunner`, watches it (the
engine failing, the stream stopping, no audio for a while), prints :func:`format_status` a few
times a second (or publishes what the live view shows), and prints a summary at the end. It runs
on the calling (main) thread, at a real-time priority below the worker's when the worker has one.
"""

from __future__ import annotations

import math
import sys
import time

from vqblur.engine.stage.realtime import realtime_thread


def format_status(runner, midi=None, cpu: float | None = None,
                  dsp: float | None = None, osc=None) -> str:
    from vqblur.engine.knobs import status_text

    kv = runner.knob_values or {}
    parts = []
    if cpu is not None:
        parts.append(f"cpu {cpu:5.1f}%")
    if dsp is not None:
        parts.append(f"dsp {dsp:5.1f}%")
    parts.append(f"lat {runner.latency_ms:5.2f} ms")
    parts.append(status_text(kv))  # every declared knob, and "blur off" at zone size 0
    pal = getattr(runner, "palette", None)
    if pal:
        parts.append(f"palette {pal}")
    parts.append(f"under {runner.underruns} over {runner.overruns} late {runner.deadline_misses} "
                 f"xrun {runner.status_flags}")
    if midi is not None:
        parts.append(f"midi {midi.events} ign {midi.ignored}")
    if osc is not None:
        parts.append(f"osc {osc.applied} ign {osc.ignored}")
    if runner.worker_demoted:
        parts.append("engine slower than real time")
    return " | ".join(parts)


def _prefill_text(prefill: int, host_block: int) -> str:
    blocks = prefill // host_block if host_block else 1
    return f"one host block {prefill}" if blocks <= 1 else f"{blocks} host blocks {prefill}"


def underrun_note(st, samplerate: int, prefill: int) -> str | None:
    """After a run with under-runs: why the engine's blocks were late, from the worker's own
    counters (``LiveStats``: blocks over one host period, those held off the CPU, those the
    hypervisor held), and the slack to try; None for a clean run."""
    if st.underruns == 0:
        return None
    held = st.stalled_chunks
    busy = max(st.slow_chunks - held, 0)
    period_ms = 1000.0 * st.host_block / samplerate if st.host_block and samplerate else 0.0
    line = (f"vqblur live: {st.underruns} under-runs (the dry input played instead); of the engine's "
            f"blocks, {st.slow_chunks} took over one host period: {busy} busy on the CPU (the engine "
            f"too slow for this block size, or the CPU itself slowed down), {held} held off the CPU "
            f"(a wait, or the machine; {st.machine_stalls} by the hypervisor)")
    blocks = prefill // st.host_block if st.host_block else 1
    if st.slow_chunks == 0:
        line += ("; none was slow, so the late blocks started late (the worker woke late, or the "
                 "server's cycles came back to back after a late one)")
    if blocks <= 1 and period_ms:
        line += (f". On a busy or shared machine --prefill-blocks 2 gives the engine one more block of "
                 f"slack ({period_ms:.2f} ms more latency)")
    return line


def _wakeup_note(info: dict | None) -> str:
    """The start line's word on the CPUs' wake-up latency (the audio process's ``ready`` info)."""
    held = (info or {}).get("cpu_wakeup_held")
    if not held:
        return ""
    return f"; CPU wake-up latency held at {held}" if not held.startswith("no") else f"; CPUs may sleep: {held}"


def run_live(runner, *, midi=None, duration_s: float | None = None,
             out=sys.stderr, refresh_s: float = 0.25, stall_s: float = 2.0, osc=None,
             view=None) -> int:
    """Start ``runner``, print a refreshing status line until Ctrl-C, ``duration_s``, or the
    stream dies. Returns an exit code (0 = stopped normally, 1 = the stream died).

    ``osc``: an :class:`~vqblur.engine.stage.osc.OscControl` whose counters the status shows.
    ``view``: a :class:`~vqblur.engine.stage.view.ViewProcess`; when it fits the terminal it replaces
    the status line (drawn by a process of its own; this loop publishes what it shows ten
    times a second), else the status line stays."""
    tty = out_tty = hasattr(out, "isatty") and out.isatty()
    if view is not None:
        ok, why = view.usable()
        if not ok:
            print(f"vqblur live: no live view ({why}); showing the status line", file=out, flush=True)
            view = None
    runner.start()
    print(f"vqblur live: {runner.samplerate} Hz, {runner.channels} ch, host block "
          f"{runner.blocksize or 'auto'}; engine latency {runner.engine_latency} samples"
          + (f"; MIDI: {midi.port_name}" if midi is not None and midi.port_name else "")
          + (f"; OSC: {osc.url}" if osc is not None else "")
          + _wakeup_note(getattr(runner, "info", None))
          + "; Ctrl-C stops", file=out, flush=True)
    if view is not None:
        view.start()
        tty = False
        last_print = math.inf  # the view replaces the status line
        refresh_s = min(refresh_s, 0.1)
    code = 0
    reason = ""
    rt = realtime_thread(runner.status_priority)
    rt.__enter__()
    t0 = time.monotonic()
    last_t, last_cpu, last_busy = t0, runner.cpu_time(), 0.0
    last_frames, last_frames_t = 0, t0
    if view is None:
        last_print = 0.0
    try:
        while True:
            time.sleep(refresh_s)
            now = time.monotonic()
            if runner.worker_error is not None:
                code, reason = 1, f"the engine failed: {runner.worker_error!r}"
                break
            if not runner.active:
                code, reason = 1, "the audio stream stopped (device removed or audio server gone?)"
                break
            if runner.frames != last_frames:
                last_frames, last_frames_t = runner.frames, now
            elif now - last_frames_t > stall_s:
                code, reason = 1, f"no audio for {stall_s:g} s: the audio server or device stopped"
                break
            cpu_now, busy = runner.cpu_time(), runner.worker_busy_s
            dt = max(now - last_t, 1e-9)
            cpu = 100.0 * (cpu_now - last_cpu) / dt
            dsp = 100.0 * (busy - last_busy) / dt
            last_t, last_cpu, last_busy = now, cpu_now, busy
            if view is not None and not view.stopped:
                if view.alive:
                    view.publish(cpu, dsp)
                else:  # the view process is gone (crashed, killed): back to the status line
                    print(f"vqblur live: the live view stopped (exit code {view.returncode}); "
                          "showing the status line", file=out, flush=True)
                    view.stop()
                    tty, last_print = out_tty, 0.0
            events = getattr(runner, "palette_events", None)
            for msg in (events() if events is not None else ()):
                if view is not None and not view.stopped:
                    view.note(msg)  # the view shows it (its screen would hide a printed line)
                else:
                    print(("\r\x1b[K" if tty else "") + f"vqblur live: {msg}", file=out, flush=True)
            line = format_status(runner, midi, cpu, dsp, osc=osc)
            if tty:
                print("\r" + line[:200] + "\x1b[K", end="", file=out, flush=True)
            elif now - last_print >= 2.0:
                print(line, file=out, flush=True)
                last_print = now
            if duration_s is not None and now - t0 >= duration_s:
                break
    except KeyboardInterrupt:
        reason = "stopped (Ctrl-C)"
    finally:
        if view is not None:
            view.stop()
        closed = runner.stop()
        rt.__exit__(None, None, None)
        if tty:
            print(file=out)
    st = runner.stats()
    if reason:
        print(f"vqblur live: {reason}", file=out)
    if not closed:
        runner.abandoned = True
        print("vqblur live: the audio stream did not close in time; abandoned it", file=out)
    print(f"vqblur live: {st.callbacks} callbacks, {st.frames / runner.samplerate:.1f} s of audio, "
          f"latency {runner.latency_samples} samples ({runner.latency_ms:.2f} ms = engine "
          f"{runner.engine_latency} + {_prefill_text(runner.prefill, st.host_block)}), "
          f"under-runs {st.underruns}, "
          f"over-runs {st.overruns}, deadline misses {st.deadline_misses}, resyncs {st.resyncs}, "
          f"device xruns {st.status_flags}, late server cycles {st.late_cycles}"
          + (f", MIDI messages {midi.received} (ignored {midi.ignored})" if midi is not None else "")
          + (f", OSC messages {osc.received} (ignored {osc.ignored}: {osc.malformed} malformed, "
             f"{osc.out_of_range} out of range, {osc.unknown} unknown address, {osc.bad_preset} "
             f"unknown preset)" if osc is not None else "")
          + (f", view frames {view.frames}" + (f" ({view.errors} drawing errors)" if view.errors else "")
             if view is not None else ""),
          file=out, flush=True)
    note = underrun_note(st, runner.samplerate, runner.prefill)
    if note:
        print(note, file=out, flush=True)
    return code
