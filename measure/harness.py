"""Running the streaming engine for measurement: engines at given knobs, block loops, aligned
renders, and the knob settings the bench compares (``detail`` 1 and 0 when the engine has it).

Everything here drives the real :class:`vqblur.engine.core.Engine`; numpy + onnxruntime only.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Mapping

import numpy as np

from vqblur.engine.bundle import Bundle
from vqblur.engine.core import Engine, Params
from vqblur.engine.dsp import SignalConfig

#: knob values of the timing runs: a typical blur, so the sampler's cost is included
#: (with ``detail = 1`` added by :func:`timing_params` when the engine has that knob)
TIMING_KNOBS = {"zone_size": 0.3, "temperature": 0.5, "centre": 0.5, "mix": 1.0}
ZONE0_KNOBS = {"zone_size": 0.0, "temperature": 0.5, "centre": 0.5, "mix": 1.0}


def knob_names(params_cls: type = Params) -> set[str]:
    """The knob fields of ``params_cls`` (a frozen dataclass)."""
    return {f.name for f in dataclasses.fields(params_cls)}


def knob_settings(params_cls: type = Params) -> list[dict[str, float]]:
    """The settings every knob-dependent measurement is made at.

    With a ``detail`` knob: ``[{"detail": 1.0}, {"detail": 0.0}]`` (the input's own detail kept,
    then the pure codec resynthesis); without it: ``[{}]`` (the engine as it is)."""
    if "detail" in knob_names(params_cls):
        return [{"detail": 1.0}, {"detail": 0.0}]
    return [{}]


def setting_label(setting: Mapping[str, float]) -> str:
    """``{"detail": 1.0}`` -> ``"detail=1"``; ``{}`` -> ``"default"``."""
    return ",".join(f"{k}={v:g}" for k, v in sorted(setting.items())) or "default"


def codec_setting(settings: list[dict[str, float]]) -> dict[str, float]:
    """The setting that shows the pure codec (``detail = 0``, else the only one): targets apply to it."""
    for s in settings:
        if s.get("detail") == 0.0:
            return s
    return settings[-1]


def make_params(params_cls: type = Params, **knobs: float) -> Params:
    """``params_cls`` with the given knobs; knobs it does not have are dropped."""
    names = knob_names(params_cls)
    return params_cls(**{k: v for k, v in knobs.items() if k in names})


def timing_params(params_cls: type = Params, setting: Mapping[str, float] | None = None) -> Params:
    """The timing knobs (zone 0.3), at ``setting`` (default: ``detail = 1`` when it exists)."""
    if setting is None:
        setting = knob_settings(params_cls)[0]
    return make_params(params_cls, **{**TIMING_KNOBS, **setting})


def zone0_params(params_cls: type = Params, setting: Mapping[str, float] | None = None) -> Params:
    return make_params(params_cls, **{**ZONE0_KNOBS, **(setting or {})})


def params_dict(p: Params) -> dict[str, float]:
    return {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}


def model_engine(bundle: Bundle, params: Params, threads: int = 1, seed: int = 0,
                 hold_codec_level: bool = True) -> Engine:
    """A mono engine on the bundle's ONNX codec (``hold_codec_level=False``: below detail 1 the
    codec's own level, the model alone, instead of the input's band levels)."""
    return Engine(bundle, params, channels=1, seed=seed, threads=threads,
                  hold_codec_level=hold_codec_level)


def dsp_engine(bundle: Bundle, params: Params) -> Engine:
    """The DSP-only baseline: the same engine with an IdentityCodec (no model, no blur)."""
    from vqblur.engine.codec import IdentityCodec

    return Engine(IdentityCodec(SignalConfig.from_bundle(bundle)), params, channels=1)


def run_blocks(eng: Engine, x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Process ``x`` ([n] mono or [n, channels]) in host blocks of ``block`` -> (output, same shape;
    per-block seconds [blocks])."""
    n = len(x)
    nb = (n + block - 1) // block
    times = np.empty(nb)
    y = np.empty(x.shape, np.float32)
    pc = time.perf_counter
    for i in range(nb):
        a = i * block
        b = min(n, a + block)
        t0 = pc()
        y[a:b] = eng.process(x[a:b])
        times[i] = pc() - t0
    return y, times


def render_aligned(eng: Engine, x: np.ndarray, block: int = 512) -> np.ndarray:
    """Output aligned with ``x`` [n]: y[n] corresponds to x[n] (latency removed), same length."""
    D = eng.latency_samples
    y, _ = run_blocks(eng, np.concatenate([x, np.zeros(D, np.float32)]).astype(np.float32), block)
    return y[D : D + len(x)]


def pct(a, q) -> float:
    """Percentile ``q`` of ``a`` (NaN when empty)."""
    a = np.asarray(a, dtype=np.float64)
    return float(np.percentile(a, q)) if a.size else float("nan")


def synth_audio(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A deterministic musical-ish test signal [n]: harmonic notes, noise hits, a chirp (-12 dBFS)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = np.zeros(n)
    t0 = 0
    while t0 < n:
        L = int(sr * rng.uniform(0.15, 0.6))
        seg = np.zeros(L)
        t = np.arange(L) / sr
        f0 = 55.0 * 2 ** (rng.integers(0, 48) / 12)
        for h in range(1, 9):
            if h * f0 < sr / 2.2:
                seg += np.sin(2 * np.pi * h * f0 * t) / h
        seg *= np.exp(-t / rng.uniform(0.1, 0.5))
        seg[: min(L, 48)] *= np.linspace(0, 1, min(L, 48))
        if rng.random() < 0.3:
            k = min(L, int(0.03 * sr))
            seg[:k] += rng.standard_normal(k) * np.exp(-np.arange(k) / (0.005 * sr))
        m = min(L, n - t0)
        x[t0 : t0 + m] += seg[:m]
        t0 += int(L * rng.uniform(0.5, 1.0))
    tt = np.arange(n) / sr
    x += 0.1 * np.sin(2 * np.pi * (100 * tt + 0.5 * (4000 - 100) / max(seconds, 1e-9) * tt**2))
    return (0.25 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


def sine(freq: float, seconds: float, sr: int, dbfs: float = -12.0) -> np.ndarray:
    """A steady sine [n] at ``dbfs`` peak level, with 10 ms fades."""
    n = int(seconds * sr)
    x = 10 ** (dbfs / 20) * np.sin(2 * math.pi * freq * np.arange(n) / sr)
    f = min(n // 2, int(0.01 * sr))
    if f:
        ramp = np.linspace(0.0, 1.0, f)
        x[:f] *= ramp
        x[n - f :] *= ramp[::-1]
    return x.astype(np.float32)
