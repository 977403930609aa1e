"""Latency and jitter: the delay of the engine's zone-0 output, measured.

``bench_latency`` follows the BRAVE paper's latency evaluator: random excitations (noise bursts,
windowed tones, decaying harmonic tones at random positions), each through a freshly reset
engine; the delay of each is the lag that maximises the input/output cross-correlation
(:func:`measure_delay`). ``latency_samples.measured`` is the median, ``jitter_ms`` the spread.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from vqblur.engine.core import Engine
from vqblur.measure.harness import pct, run_blocks


def excitation(kind: str, sr: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """One random test event (BRAVE-style) in a buffer of n samples, at a random position."""
    x = np.zeros(n)
    pos = int(rng.integers(n // 10, n // 2))
    if kind == "noise":
        L = int(sr * rng.uniform(0.005, 0.05))
        ev = rng.standard_normal(L) * np.hanning(L)
    elif kind == "tone":
        L = int(sr * rng.uniform(0.05, 0.2))
        f = math.exp(rng.uniform(math.log(100.0), math.log(4000.0)))
        t = np.arange(L) / sr
        ev = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * np.hanning(L)
    elif kind == "harmonic":
        L = int(sr * rng.uniform(0.1, 0.3))
        f0 = math.exp(rng.uniform(math.log(80.0), math.log(800.0)))
        t = np.arange(L) / sr
        ev = np.zeros(L)
        for h in range(1, int(rng.integers(3, 12)) + 1):
            if h * f0 >= sr / 2.2:
                break
            ev += np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h
        ev *= np.exp(-t / rng.uniform(0.02, 0.1))
        ev[: min(L, 24)] *= np.linspace(0, 1, min(L, 24))  # 0.5 ms attack, no click
    else:
        raise ValueError(kind)
    L = min(len(ev), n - pos)
    x[pos : pos + L] = ev[:L]
    return (0.5 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


EXCITATION_KINDS = ("noise", "tone", "harmonic")


def measure_delay(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """Lag in 0..max_lag maximising the cross-correlation sum_n y[n] x[n - lag]."""
    n = len(x) + len(y)
    nfft = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(y, nfft) * np.conj(np.fft.rfft(x, nfft)), nfft)
    return int(np.argmax(c[: max_lag + 1]))


def bench_latency(make: Callable[[], Engine], sr: int, n_exc: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    eng = make()
    D = eng.latency_samples
    max_lag = max(4 * D, int(0.05 * sr))
    n = int(0.5 * sr)
    delays, kinds = [], []
    for i in range(n_exc):
        kind = EXCITATION_KINDS[i % len(EXCITATION_KINDS)]
        x = excitation(kind, sr, n, rng)
        eng.reset()
        y, _ = run_blocks(eng, np.concatenate([x, np.zeros(max_lag, np.float32)]), 256)
        delays.append(measure_delay(x.astype(np.float64), y.astype(np.float64), max_lag))
        kinds.append(kind)
    d = np.array(delays, dtype=np.float64)
    med = float(np.median(d))
    by_kind = {k: float(np.median(d[[kk == k for kk in kinds]])) for k in EXCITATION_KINDS if k in kinds}
    return {
        "latency_samples": {"declared": int(D), "measured": med},
        "latency_ms": {"declared": 1000.0 * D / sr, "measured": 1000.0 * med / sr},
        "jitter_ms": {"std": 1000.0 * float(d.std()) / sr, "range": 1000.0 * float(d.max() - d.min()) / sr,
                      "p95_abs_dev": 1000.0 * pct(np.abs(d - med), 95) / sr},
        "latency_method": ("median over random excitations (noise bursts, tones, decaying harmonics at "
                           "random positions, fresh engine each) of the cross-correlation peak of input "
                           f"vs zone-0 output, lags 0..{max_lag}"),
        "latency_by_excitation_samples": by_kind,
        "latency_measurements_samples": [int(v) for v in delays],
        "latency_excitations": kinds,
    }
