"""Timing engines against each other on a machine whose speed drifts: the engines stream their
signals **in turn, slice by slice** (:func:`in_turn`), so a VM that speeds up or slows down over
seconds to minutes (this one's: 10-50 %) biases none of them; they are compared by the median
over slices of each slice's ratio (:func:`slice_ratios`).

Used by the bench for every figure that compares engines: the bundles' RTF, the blur and stereo
cost modes, the knob settings and the DSP-only baseline (:mod:`vqblur.measure.run`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vqblur.measure.harness import run_blocks

#: the host block, and the slice of audio each engine plays in its turn
COST_BLOCK = 512
COST_SLICE_BLOCKS = 10  # 10 x 512 samples = 107 ms at 48 kHz


def in_turn(engines: list, signals: list[np.ndarray], rounds: int, sr: int,
            log: Callable[[str], None], what: str) -> dict:
    """Engines streaming their signals in turn, slice by slice: each plays ``COST_SLICE_BLOCKS``
    host blocks of ``COST_BLOCK`` (107 ms of audio at 48 kHz, tens of ms of compute), then the
    next engine the same slice, forwards and backwards in turn (:func:`round_order`), ``rounds``
    passes over the signals (all as long as the first). A cycle of all engines takes well under a
    second, so the machine's drifts hit every engine alike; one run per engine and round read the
    same blur's cost anywhere from x1.05 to x1.12 (docs/MEASURING.md). -> ``block_s`` / ``col_s``
    (per engine, per slice: the block time, the median column step, s), ``cols`` (per engine:
    every column's time), ``n`` (the slice, samples), ``per_pass`` (slices per pass) and
    ``audio_s`` (per engine)."""
    L = len(signals[0])
    n = min(L, COST_SLICE_BLOCKS * COST_BLOCK)  # one slice (the whole signal when shorter)
    starts = list(range(0, L - n + 1, n))
    log(f"{what}: in turn, {len(starts)} slices of {n / sr * 1000:.0f} ms x {rounds} passes")
    for eng, sig in zip(engines, signals):  # warm-up (caches, first-call costs), then a fresh start
        run_blocks(eng, sig[: min(L, sr // 5)], COST_BLOCK)
        eng.reset()
        eng.stats.reset()
    E = len(engines)
    block_s: list[list[float]] = [[] for _ in range(E)]
    col_s: list[list[float]] = [[] for _ in range(E)]
    cols: list[list[np.ndarray]] = [[] for _ in range(E)]
    k = 0
    for _ in range(rounds):
        for a in starts:
            for i in round_order(E, k):
                st = engines[i].stats
                c0 = st.columns
                _, bt = run_blocks(engines[i], signals[i][a : a + n], COST_BLOCK)
                ring = st.column_times
                t = ring[np.arange(c0, st.columns) % len(ring)]
                block_s[i].append(float(bt.sum()))
                cols[i].append(t)
                col_s[i].append(float(np.median(t)) if t.size else float("nan"))
            k += 1
    return {"block_s": block_s, "col_s": col_s, "cols": [np.concatenate(c) for c in cols], "n": n,
            "per_pass": len(starts), "audio_s": rounds * len(starts) * n / sr}


def round_order(n: int, k: int) -> list[int]:
    """The order of ``n`` timed engines in round ``k``: forwards in even rounds, backwards in odd
    ones, so a steady drift of the machine's speed over a round slows each engine as often early
    as late, and the per-round ratios' median does not lean with it."""
    return list(range(n)) if k % 2 == 0 else list(range(n - 1, -1, -1))


def slice_ratios(v: list[list[float]], ref: int) -> list[float]:
    """Per engine: the median over slices of its slice's time over engine ``ref``'s same slice
    (``v``: per engine, per slice, e.g. ``in_turn(...)["block_s"]``)."""
    r = np.asarray(v[ref], dtype=np.float64)
    return [float(np.nanmedian(np.asarray(x, dtype=np.float64) / r)) for x in v]


def per_pass_rtf(block_s: list[float], per_pass: int, slice_audio_s: float) -> list[float]:
    """One engine's RTF per pass over the signal (``block_s``: its per-slice block times)."""
    passes = len(block_s) // per_pass
    return [float(sum(block_s[i * per_pass:(i + 1) * per_pass])) / (per_pass * slice_audio_s)
            for i in range(passes)]
