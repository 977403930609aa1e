"""Compute: real-time factor, per-block and per-column compute against their deadlines, where
the time goes inside a column (microseconds per part, and the share spent inside onnxruntime's
``run``), all on the real streaming engine.

``bench_rtf``
    engine seconds per second of audio (median over repeats, 512-sample blocks), the process's
    CPU seconds per audio second, preemptions, energy per audio second, and the engine's own
    accumulators (``Engine.stats``) of the median run.
``bench_blocks``
    per host block of B samples: p50/p99/max compute against the block's duration and the
    deadline misses of :func:`simulate_schedule` (block i arrives when its last sample has,
    ``(i+1) B / sr``; it starts when it has arrived and the previous block is done; it misses
    when it finishes later than one block duration after its arrival; queueing counts).
``per_column_us``
    the accumulators per code column in microseconds: stft, encoder, blur, decoder,
    overlap_add (synthesis, OLA, FIFOs), mix (dry/wet, limiter), total.
``host_stalls``
    gaps in a busy-waiting loop: how often the process is not running (a shared VM's host
    stalls), the floor under the deadline misses.
``bench_ort_share``
    one more run with onnxruntime's ``InferenceSession.run`` (and ``run_with_iobinding``)
    wrapped by a timer (:func:`ort_run_timer`): microseconds per column inside ``run`` and the
    Python share = the engine's total minus that (None when the engine calls onnxruntime some
    other way, so no call was seen).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Callable, Iterator, Sequence

import numpy as np

from vqblur.engine.core import Engine
from vqblur.engine.dsp import SignalConfig
from vqblur.common.energy import EnergyMeter
from vqblur.measure.harness import pct, run_blocks

PARTS = ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")


def simulate_schedule(durations: np.ndarray, block_s: float) -> dict:
    """Real-time schedule of measured per-block compute times (see the module doc)."""
    free = 0.0
    misses = 0
    worst = -math.inf
    for i, d in enumerate(np.asarray(durations, dtype=np.float64)):
        arrive = (i + 1) * block_s
        start = max(arrive, free)
        free = start + d
        late = free - (arrive + block_s)
        worst = max(worst, late)
        if late > 0:
            misses += 1
    return {"deadline_misses": misses, "worst_slack_ms": -1000.0 * worst if np.isfinite(worst) else None}


def host_stalls(seconds: float, limits_ms: Sequence[float] = (0.5, 1.0, 4 / 3, 8 / 3)) -> dict:
    """How often this process is not running although it wants to: busy-wait ``seconds``
    reading the clock, and count the gaps between two consecutive readings longer than each
    limit (preemption by other processes, a VM's vCPU descheduled by its host, interrupts).

    A stall longer than a host block's slack is a deadline miss whatever the engine does, so
    the bench prints these next to the misses (the default limits include the durations of
    64- and 128-sample blocks at 48 kHz)."""
    pc = time.perf_counter
    gaps: list[float] = []
    t = last = pc()
    end = t + seconds
    floor = min(limits_ms) / 1000.0
    while t < end:
        t = pc()
        if t - last > floor:
            gaps.append(t - last)
        last = t
    g = np.asarray(gaps)
    return {"seconds": seconds,
            "gaps_longer_than_ms": {f"{lim:.3g}": int((g > lim / 1000.0).sum()) for lim in limits_ms},
            "longest_ms": float(1000.0 * g.max()) if g.size else 0.0,
            "stalled_fraction": float(g.sum() / seconds)}


def bench_rtf(make: Callable[[], Engine], x: np.ndarray, sr: int, repeats: int,
              watts: float | None, block: int = 512) -> dict:
    import resource

    rtfs, energies, cpu, preempt = [], [], [], []
    stats = None
    method = source = None
    dur = len(x) / sr
    for r in range(repeats):
        eng = make()
        run_blocks(eng, x[: min(len(x), sr // 5)], block)  # warm-up (caches, first-call costs)
        eng.reset()
        eng.stats.reset()
        meter = EnergyMeter(watts)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        _, bt = run_blocks(eng, x, block)
        wall = time.perf_counter() - t0
        e = meter.read()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        preempt.append((ru1.ru_nivcsw - ru0.ru_nivcsw) / dur)
        rtfs.append(float(bt.sum()) / dur)
        energies.append(e.joules / dur)
        cpu.append(e.cpu_seconds / dur)
        method, source = e.method, e.source
        if stats is None or r == repeats // 2:
            stats = (eng.stats.as_dict(), eng.stats.recent_column_times(), wall)
    return {"rtf": float(np.median(rtfs)), "rtf_runs": rtfs, "cpu_s_per_audio_s": float(np.median(cpu)),
            "preemptions_per_audio_s": float(np.median(preempt)),
            "energy_j_per_audio_s": float(np.median(energies)), "energy_method": method,
            "energy_source": source, "_stats": stats}


def breakdown_of(stats: dict, wall: float) -> dict:
    tot = max(stats["total"], 1e-12)
    d = {k: stats.get(k, 0.0) / tot for k in PARTS}
    d["unaccounted_of_wall"] = max(0.0, 1.0 - stats["total"] / max(wall, 1e-12))
    return d


def column_summary(col_times: np.ndarray, cfg: SignalConfig) -> dict:
    ms = 1000.0 * np.asarray(col_times)
    dur = 1000.0 * cfg.column_samples / cfg.sample_rate
    return {"column_samples": cfg.column_samples, "column_ms": dur, "count": int(ms.size),
            "column_ms_p50": pct(ms, 50), "column_ms_p99": pct(ms, 99),
            "column_ms_max": float(ms.max()) if ms.size else float("nan"),
            "p99_over_duration": pct(ms, 99) / dur}


def bench_blocks(make: Callable[[], Engine], x: np.ndarray, sr: int, blocks: Sequence[int]) -> dict:
    out = {}
    for B in blocks:
        eng = make()
        run_blocks(eng, x[: sr // 5], B)  # warm-up
        eng.reset()
        _, t = run_blocks(eng, x, B)
        bs = B / sr
        ms = 1000.0 * t
        sched = simulate_schedule(t, bs)
        out[str(B)] = {
            "block_ms": 1000.0 * bs, "blocks": int(len(t)),
            "block_ms_p50": pct(ms, 50), "block_ms_p99": pct(ms, 99), "block_ms_max": float(ms.max()),
            "p99_over_block": pct(ms, 99) / (1000.0 * bs),
            "deadline_misses": sched["deadline_misses"], "miss_rate": sched["deadline_misses"] / len(t),
            "worst_slack_ms": sched["worst_slack_ms"],
            # per-block times are kept (rounded, 1 us) for the report's figures
            "times_ms": [round(v, 3) for v in ms.tolist()],
        }
    return out


def per_column_us(stats: dict) -> dict[str, float]:
    """Engine accumulators (``EngineStats.as_dict()``, seconds) -> microseconds per code column."""
    cols = max(int(stats.get("columns", 0)), 1)
    out = {k: 1e6 * stats.get(k, 0.0) / cols for k in PARTS}
    out["total"] = 1e6 * stats["total"] / cols
    return out


_ORT_RUN_METHODS = ("run", "run_with_iobinding", "run_with_ort_values")


@contextlib.contextmanager
def ort_run_timer() -> Iterator[dict]:
    """Time every ``onnxruntime.InferenceSession`` run call made inside the block.

    Yields ``{"seconds": float, "calls": int}``, updated as calls happen. Patches the methods on
    the class that defines them and restores them on exit; sessions must be *used* (not
    necessarily created) inside the block, and calls through a bound method cached before the
    block are still seen only if the cache was made inside it: create the engine inside."""
    import onnxruntime as ort

    acc = {"seconds": 0.0, "calls": 0}
    pc = time.perf_counter
    patched: list[tuple[type, str, object]] = []

    def wrap(f):
        def timed(self, *a, **k):
            t0 = pc()
            try:
                return f(self, *a, **k)
            finally:
                acc["seconds"] += pc() - t0
                acc["calls"] += 1

        return timed

    # The C++ session class underneath: every Python-level run goes through it, and so does an
    # engine that calls it directly (engine/codec.py does, skipping the Python wrapper's
    # bookkeeping). Only when it cannot be patched are the Python wrapper's methods timed.
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as _c

        classes = [_c.InferenceSession]
    except ImportError:
        classes = []
    classes.append(ort.InferenceSession)
    for cls in classes:
        for name in _ORT_RUN_METHODS:
            owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
            if owner is None:
                continue
            orig = owner.__dict__[name]
            try:
                setattr(owner, name, wrap(orig))
            except (TypeError, AttributeError):
                continue
            patched.append((owner, name, orig))
        if patched:
            break
    try:
        yield acc
    finally:
        for owner, name, orig in reversed(patched):
            setattr(owner, name, orig)


def bench_ort_share(make: Callable[[], Engine], x: np.ndarray, block: int = 512) -> dict:
    """Microseconds per column inside onnxruntime's run, and the rest (the Python share)."""
    with ort_run_timer() as acc:
        eng = make()
        run_blocks(eng, x[: min(len(x), 9600)], block)  # warm-up
        eng.reset()
        eng.stats.reset()
        acc["seconds"], acc["calls"] = 0.0, 0
        run_blocks(eng, x, block)
    st = eng.stats.as_dict()
    cols = max(int(st["columns"]), 1)
    total = 1e6 * st["total"] / cols
    if acc["calls"] == 0:
        return {"total_us": total, "ort_run_us": None, "python_us": None, "ort_calls_per_column": 0.0,
                "note": "no InferenceSession run call was seen (the engine calls onnxruntime another way)"}
    ort_us = 1e6 * acc["seconds"] / cols
    return {"total_us": total, "ort_run_us": ort_us, "python_us": total - ort_us,
            "ort_calls_per_column": acc["calls"] / cols}
