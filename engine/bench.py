"""`vqblur bench`: what the effect costs and how it sounds, on this machine (numpy + onnxruntime).

Everything is measured on the real streaming :class:`vqblur.engine.core.Engine`; nothing here
imports torch. One call, :func:`run_bench`, returns a JSON-able dict; :func:`format_table`
turns it into the table the command prints. Per bundle (fp32 and int8 side by side when both
exist) it measures:

latency
    ``latency_samples`` / ``latency_ms``: ``declared`` (the engine's D) and ``measured``: the
    median, over random excitations, of the lag that maximises the cross-correlation of the
    input and the zone-0 output. Excitations follow the BRAVE paper's latency evaluator: noise
    bursts, windowed tones and decaying harmonic tones at random positions, each through a
    freshly reset engine. ``jitter_ms``: the spread of those delays (standard deviation, and
    max - min).
compute
    ``rtf[threads]``: engine seconds per second of audio (median over repeats, 512-sample
    blocks, a typical blur setting :data:`TIMING_PARAMS` so that the sampler's cost is in).
    ``rtf_cpu[threads]``: the process's CPU seconds per second of audio in the same runs (all
    threads; on a busy machine, where the wall-clock RTF includes time the process waited for a
    core, this is the closer estimate of the intrinsic cost; with several threads it includes
    onnxruntime's spinning), and ``preemptions_per_audio_s`` (involuntary context switches).
    ``blocks[B]``: per host block of B samples, ``block_ms_p50/p99/max`` against the block's
    duration ``block_ms``, and ``deadline_misses`` under a simulated real-time schedule:
    block i arrives when its last sample has arrived, ``(i+1) B / sr``; it starts when it has
    arrived and the previous block is done; it misses when it finishes later than one block
    duration after its arrival (queueing behind a slow block counts). ``columns``: the same
    percentiles per code column (the unit of work, F*R samples), with the DESIGN.md target
    (p99 at most half the column's duration).
    ``breakdown``: shares of the engine's own accumulators (``Engine.stats``): stft (analysis),
    encoder, blur, decoder, overlap_add (synthesis, OLA, FIFOs), mix (dry/wet, limiter).
memory and size
    ``peak_rss_mb``: the peak RSS (``VmHWM``) of a fresh subprocess that imports the engine, loads
    the bundle and processes audio (``ru_maxrss`` is recorded too, but on Linux a child inherits its
    parent's high-water mark in it across fork + exec, so it can read high) (``runtime_rss_mb``: the same process before the bundle, i.e.
    Python + numpy + onnxruntime). ``bundle_mb``: the bundle folder's files.
energy
    ``energy_j_per_audio_s`` with ``energy_method`` and ``energy_source``
    (:mod:`vqblur.engine.energy`: RAPL when readable, otherwise CPU time x watts per core).
baseline
    ``baseline_dsp``: the same engine with :class:`~vqblur.engine.codec.IdentityCodec` (STFT
    pass-through, no model, no blur), timed in the same run; ``rtf_ratio`` = model / baseline
    and ``model_share`` = 1 - baseline / model.
quality
    ``quality``: ``sc_db`` / ``lsd_db`` (:mod:`vqblur.engine.quality`) of the zone-0 output
    against the input, latency-aligned, median over clips of the GM test split (or synthetic
    signals, labelled so, when the split is not rendered) and of ``--audio DIR``.
    ``nb``: held-out Naive Bayes evaluation: the test clips are encoded by the bundle's encoder
    and every cell's code is predicted from its neighbours with the bundle's table (full
    neighbourhood, as the offline blur uses it): NLL (nats/cell) and top-1/top-5 accuracy,
    against the unigram prior; plus the fitting's own metrics from the manifest when recorded.
    ``blur_curve``: spectral change (SC and LSD of the blurred output against the zone-0
    output) and the share of codes changed, against zone size, at three temperatures.
training cost
    ``training_cost``: from the manifest's ``training.metrics`` (time, energy and its method,
    CO2e at :data:`vqblur.engine.energy.GRID_G_CO2E_PER_KWH`).

Benchmarks are not timed tests: ``quick=True`` only makes everything short (about 10-30 s).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vqblur.engine.bundle import Bundle, load_bundle
from vqblur.engine.core import Engine, Params
from vqblur.engine.dsp import SignalConfig, StreamingStft
from vqblur.engine.energy import GRID_G_CO2E_PER_KWH, GRID_SOURCE, EnergyMeter, co2e_grams
from vqblur.engine.quality import audio_quality, log_spectral_distance_db, spectral_convergence_db, stft_magnitude

BENCH_VERSION = 1
DEFAULT_THREADS = (1, 2)
DEFAULT_BLOCKS = (32, 64, 128, 256, 512, 1024)
DEFAULT_SECONDS = 10.0
#: knob values used for the timing runs: a typical blur, so the sampler's cost is included
#: (detail at its default, 1: the second decoder stream's cost included; ``--detail`` etc. set it)
TIMING_PARAMS = Params(zone_size=0.3, temperature=0.5, centre=0.5, mix=1.0)
#: zone-0 quality and latency: the codec alone (detail 0; at detail 1 zone 0 is the input itself)
ZONE0 = Params(zone_size=0.0, temperature=0.5, centre=0.5, mix=1.0, detail=0.0)
#: blur-strength curve grid
CURVE_ZONES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
CURVE_TEMPS = (0.0, 0.5, 1.0)
#: DESIGN.md "Measuring" targets for the default bundle (48 kHz, one thread)
TARGETS = {
    "latency_ms": 10.0,
    "rtf_1_thread": 0.10,
    "column_p99_over_duration": 0.5,
    "peak_rss_mb": 200.0,
    "bundle_mb": 20.0,
    "sc_db": -15.0,
    "lsd_db": 2.0,
}


@dataclass
class BenchOptions:
    bundles: Sequence[str | Path]
    threads: Sequence[int] = DEFAULT_THREADS
    blocks: Sequence[int] = DEFAULT_BLOCKS
    seconds: float = DEFAULT_SECONDS
    audio_dir: str | Path | None = None
    watts_per_core: float | None = None
    quick: bool = False
    seed: int = 0
    repeats: int = 3
    excitations: int = 32
    clips: int = 16  # test-split clips for quality / NB (at most)
    find_int8: bool = True
    timing_params: Params = TIMING_PARAMS  #: knobs of the timing runs and the blur curve's detail
    log: Callable[[str], None] = field(default=lambda s: None, repr=False)

    def __post_init__(self) -> None:
        if self.quick:
            self.seconds = min(self.seconds, 2.0)
            self.repeats = min(self.repeats, 2)
            self.excitations = min(self.excitations, 8)
            self.clips = min(self.clips, 2)


# ---------------------------------------------------------------------------- signals


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


def synth_audio(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """A deterministic musical-ish test signal: harmonic notes, noise hits, a chirp (-12 dBFS)."""
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


def load_clips(audio_dir, sr: int, limit: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Up to ``limit`` mono clips from a folder at ``sr`` (torch-free loader of vqblur.training.data)."""
    from vqblur.training.data.folder import load_folder

    clips, _ = load_folder(audio_dir, sr, limit=limit, seed=seed)
    return [(c.name, c.audio) for c in clips]


def test_split_dir() -> Path:
    from vqblur.training.data.corpus import default_data_root

    return default_data_root() / "nsynth-gm-test" / "audio"


def test_clips(sr: int, limit: int, seed: int = 0) -> tuple[list[tuple[str, np.ndarray]], str]:
    """The GM test split's cached wavs when rendered, else synthetic clips (labelled)."""
    d = test_split_dir()
    if d.is_dir() and any(d.glob("*.wav")):
        clips = load_clips(d, sr, limit * 3, seed)
        # prefer clips with sound in them (drums and quiet notes have long silent tails)
        clips.sort(key=lambda c: -float(np.sqrt(np.mean(c[1].astype(np.float64) ** 2))))
        return clips[:limit], f"GM test split ({d})"
    return ([(f"synthetic-{i}", synth_audio(2.0, sr, seed + 100 + i)) for i in range(limit)],
            f"synthetic signals (the GM test split is not rendered at {d}; "
            "`vqblur render-data --split test` renders it)")


# ---------------------------------------------------------------------------- helpers


def pct(a, q) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.percentile(a, q)) if a.size else float("nan")


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


def bundle_size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in Path(root).iterdir() if p.is_file()) / 1e6


def _params_engine(bundle: Bundle, params: Params, threads: int = 1, seed: int = 0) -> Engine:
    return Engine(bundle, params, channels=1, seed=seed, threads=threads)


def _dsp_engine(bundle: Bundle, params: Params = TIMING_PARAMS) -> Engine:
    from vqblur.engine.codec import IdentityCodec

    return Engine(IdentityCodec(SignalConfig.from_bundle(bundle)), params, channels=1)


def run_blocks(eng: Engine, x: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Process x in blocks; -> (output, per-block seconds)."""
    n = len(x)
    nb = (n + block - 1) // block
    times = np.empty(nb)
    y = np.empty(n, np.float32)
    pc = time.perf_counter
    for i in range(nb):
        a = i * block
        b = min(n, a + block)
        t0 = pc()
        y[a:b] = eng.process(x[a:b])
        times[i] = pc() - t0
    return y, times


def render_aligned(eng: Engine, x: np.ndarray, block: int = 512) -> np.ndarray:
    """Output aligned with x: y[n] corresponds to x[n] (latency removed), same length."""
    D = eng.latency_samples
    y, _ = run_blocks(eng, np.concatenate([x, np.zeros(D, np.float32)]).astype(np.float32), block)
    return y[D : D + len(x)]


# ---------------------------------------------------------------------------- code grids


def encode_codes(bundle: Bundle, audio: np.ndarray, threads: int = 1, codec=None, return_bands: bool = False):
    """The code grid ``[rows, columns]`` the engine's encoder produces for ``audio`` (mono).

    Same framing and state handling as the engine (StreamingStft + OnnxCodec, from reset).
    ``return_bands``: also return each cell's input level ``[rows, columns]`` (mean log-magnitude
    of the row's bins over the column's frames), e.g. to order codes by what they encode.
    """
    from vqblur.engine.codec import OnnxCodec

    cfg = SignalConfig.from_bundle(bundle)
    codec = codec if codec is not None else OnnxCodec(bundle, threads=threads)
    codec.reset()
    stft = StreamingStft(cfg, 1, max_block=4096)
    cols, bands = [], []
    x = np.asarray(audio, dtype=np.float64)
    bpr = cfg.model_bins // cfg.rows
    for a in range(0, len(x), 4096):
        stft.push(x[a : a + 4096, None])
        while stft.column_ready():
            lm = stft.analyse_column()
            cols.append(np.array(codec.encode(lm[0]), dtype=np.int64).reshape(-1))
            if return_bands:
                bands.append(lm[0][:, : bpr * cfg.rows].reshape(lm.shape[1], cfg.rows, bpr).mean(axis=(0, 2)))
            stft.synthesise_column(lm)  # keep the FIFOs bounded (output unused)
            stft.pull(stft.available())
    if not cols:
        empty = np.zeros((cfg.rows, 0), np.int64)
        return (empty, np.zeros((cfg.rows, 0))) if return_bands else empty
    g = np.stack(cols, axis=1)
    return (g, np.stack(bands, axis=1)) if return_bands else g


def blur_codes(bundle: Bundle, codes: np.ndarray, zone_size: float, temperature: float,
               centre: float = 0.5, seed: int = 0) -> np.ndarray:
    """The streaming sampler's output for a code grid at constant knobs (= the engine's, same seed)."""
    from vqblur.engine.blur import ZoneSampler, load_nb_table

    s = ZoneSampler(load_nb_table(bundle.nb_path), bundle.rows, seed=seed)
    out = np.empty_like(codes)
    for c in range(codes.shape[1]):
        out[:, c] = s.step(codes[:, c].copy(), zone_size, centre, temperature)
    return out


def nb_heldout(bundle: Bundle, grids: list[np.ndarray]) -> dict:
    """NLL / top-k of each cell's code given its neighbours (full table offsets) vs the prior."""
    from vqblur.engine.blur import load_nb_table

    t = load_nb_table(bundle.nb_path)
    K, R = t.codebook_size, t.rows
    offs = t.offset_list
    pr = max([abs(a) for a, _ in offs] + [0])
    pcol = max([abs(b) for _, b in offs] + [0])
    prior = np.asarray(t.log_prior, np.float64)
    prior = prior - np.logaddexp.reduce(prior)
    neigh = [np.vstack([np.asarray(t.log_neigh[o], np.float32), np.zeros((1, K), np.float32)])
             for o in range(len(offs))]
    base = (np.asarray(t.log_prior, np.float64)[None, :] + np.asarray(t.log_row, np.float64)).astype(np.float32)
    nll = nll_u = 0.0
    top1 = top5 = top1_u = top5_u = 0
    n = 0
    prior_rank = np.argsort(-prior)
    for g in grids:
        if g.size == 0:
            continue
        Tn = g.shape[1]
        gp = np.full((R + 2 * pr, Tn + 2 * pcol), K, np.int64)
        gp[pr : pr + R, pcol : pcol + Tn] = g
        for c0 in range(0, Tn, 256):
            c1 = min(Tn, c0 + 256)
            L = np.repeat(base[:, None, :], c1 - c0, axis=1)  # [R, cols, K]
            for (dr, dc), tab in zip(offs, neigh):
                nb = gp[pr + dr : pr + dr + R, pcol + c0 + dc : pcol + c1 + dc]
                L += tab[nb]
            L = L.reshape(-1, K).astype(np.float64)
            L -= np.logaddexp.reduce(L, axis=1, keepdims=True)
            truth = g[:, c0:c1].reshape(-1)
            idx = np.arange(len(truth))
            nll += float(-L[idx, truth].sum())
            nll_u += float(-prior[truth].sum())
            rank5 = np.argpartition(-L, min(5, K - 1), axis=1)[:, :5]
            top1 += int((np.argmax(L, axis=1) == truth).sum())
            top5 += int((rank5 == truth[:, None]).any(axis=1).sum())
            top1_u += int((truth == prior_rank[0]).sum())
            top5_u += int(np.isin(truth, prior_rank[:5]).sum())
            n += len(truth)
    if n == 0:
        return {"cells": 0}
    return {
        "cells": n, "offsets": [list(o) for o in offs],
        "nll_nats": nll / n, "unigram_nll_nats": nll_u / n,
        "nll_gain_nats": (nll_u - nll) / n,
        "top1": top1 / n, "top5": top5 / n,
        "unigram_top1": top1_u / n, "unigram_top5": top5_u / n,
        "codes_in_use": int(len(np.unique(np.concatenate([g.reshape(-1) for g in grids])))),
    }


def manifest_nb_metrics(manifest: dict) -> dict | None:
    """The NB fitting's own held-out evaluation, wherever the manifest records it:
    ``nb.evaluation`` (what `vqblur export` copies from the fit's eval JSON: ``{"n_cells",
    "models": {"unigram", "row_only", "full", "causal": {nll_nats, top1, top5, ...}}}``),
    ``nb.metrics``, ``training.metrics.nb``, or nll/top keys in ``training.metrics``."""
    nb = manifest.get("nb") or {}
    if isinstance(nb, dict):
        for key in ("evaluation", "metrics"):
            if isinstance(nb.get(key), dict) and nb[key]:
                return nb[key]
    tm = (manifest.get("training") or {}).get("metrics") or {}
    if isinstance(tm.get("nb"), dict):
        return tm["nb"]
    found = {k: v for k, v in tm.items() if "nll" in k.lower() or "top" in k.lower()}
    return found or None


def nb_fit_splits(fit) -> dict[str, dict]:
    """The fit's evaluations by split, ``{split: {"n_cells", "models": {name: {nll_nats, top1, ...}}}}``,
    from either an ``evaluate_nb`` result or the `vqblur fit-nb` summary (``{"evaluation": {"valid":
    ..., "test": ...}, ...}``)."""
    if not isinstance(fit, dict):
        return {}
    if isinstance(fit.get("models"), dict):
        return {"eval": fit}
    ev = fit.get("evaluation")
    if isinstance(ev, dict):
        if isinstance(ev.get("models"), dict):
            return {"eval": ev}
        return {k: v for k, v in ev.items() if isinstance(v, dict) and isinstance(v.get("models"), dict)}
    return {}


def training_cost(manifest: dict) -> dict:
    """Training time / energy / CO2e from the manifest's ``training.metrics`` (its ``summary``
    record as `vqblur export` writes it, or flat keys)."""
    tm = (manifest.get("training") or {}).get("metrics") or {}
    src = dict(tm)
    if isinstance(tm.get("summary"), dict):
        src.update(tm["summary"])
    get = lambda *ks: next((src[k] for k in ks if src.get(k) is not None), None)  # noqa: E731
    wall = get("wall_seconds", "train_seconds", "time_s")
    joules = get("energy_j", "train_energy_j")
    partial = False
    if wall is None and isinstance(tm.get("final_step"), dict):  # run not finished: last logged step
        fs = tm["final_step"]
        if fs.get("wall_s") is not None:
            wall, partial = fs["wall_s"], True
            src.setdefault("steps", fs.get("step"))
    out: dict[str, Any] = {
        "wall_seconds": wall, "energy_j": joules,
        "energy_method": get("energy_method"), "energy_source": get("energy_source"),
        "steps": get("steps"), "device": get("device"), "world_size": get("world_size"),
        "grid_g_co2e_per_kwh": GRID_G_CO2E_PER_KWH, "grid_source": GRID_SOURCE,
    }
    out["co2e_g"] = co2e_grams(joules) if isinstance(joules, (int, float)) else None
    nb_s = get("nb_fit_seconds", "fit_nb_seconds")
    nbm = manifest.get("nb") or {}
    secs = (nbm.get("evaluation") or {}).get("seconds") if isinstance(nbm, dict) else None
    if nb_s is None and isinstance(secs, dict):
        nb_s = sum(v for v in secs.values() if isinstance(v, (int, float))) or None
    if nb_s is not None:
        out["nb_fit_seconds"] = nb_s
    out["recorded"] = wall is not None or joules is not None
    if partial:
        out["note"] = ("no run summary in the manifest (the checkpoint was exported before training ended): "
                       "time is the last logged step's, energy was not recorded")
    return out


# ---------------------------------------------------------------------------- RSS child


_RSS_CHILD = r"""
import json, resource, sys, time
mode, bundle_path, seconds, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
import numpy as np
import onnxruntime
from vqblur.engine.core import Engine, Params
from vqblur.engine.bundle import load_bundle
def kb():
    # VmHWM: this process's own peak RSS. ru_maxrss is not used first: on Linux it keeps the
    # parent's high-water mark across fork + execve, so a child of a big process reads high.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
out = {"runtime_rss_mb": kb()}
if mode == "engine":
    b = load_bundle(bundle_path)
    eng = Engine(b, Params(zone_size=0.3, temperature=0.5), channels=1, threads=threads)
    out["loaded_rss_mb"] = kb()
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(int(seconds * b.sample_rate))).astype(np.float32)
    for a in range(0, len(x), 512):
        eng.process(x[a:a + 512])
out["peak_rss_mb"] = kb()
out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
out["torch_imported"] = "torch" in sys.modules
print("RSS_JSON " + json.dumps(out))
"""


def peak_rss(bundle_root: Path, seconds: float, threads: int = 1) -> dict:
    """Peak RSS of a fresh process that loads the engine + bundle and processes audio."""
    r = subprocess.run([sys.executable, "-c", _RSS_CHILD, "engine", str(bundle_root), str(seconds), str(threads)],
                       capture_output=True, text=True, timeout=600)
    for line in r.stdout.splitlines():
        if line.startswith("RSS_JSON "):
            d = json.loads(line[len("RSS_JSON "):])
            d["method"] = ("peak RSS (VmHWM; ru_maxrss where /proc is missing) of a fresh subprocess that "
                           "imports the engine, loads the bundle and processes audio")
            return d
    return {"peak_rss_mb": None, "error": (r.stderr or r.stdout)[-500:]}


# ---------------------------------------------------------------------------- the bench


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
    parts = ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")
    tot = max(stats["total"], 1e-12)
    d = {k: stats[k] / tot for k in parts}
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


def bench_quality(bundle: Bundle, clips: list[tuple[str, np.ndarray]], source: str) -> dict:
    if not clips:
        return {"source": source, "clips": 0}
    sc, lsd, names = [], [], []
    for name, a in clips:
        eng = _params_engine(bundle, ZONE0)
        y = render_aligned(eng, a)
        q = audio_quality(a, y)
        sc.append(q["sc_db"])
        lsd.append(q["lsd_db"])
        names.append(name)
    return {"source": source, "clips": len(clips), "sc_db": float(np.median(sc)), "lsd_db": float(np.median(lsd)),
            "sc_db_mean": float(np.mean(sc)), "lsd_db_mean": float(np.mean(lsd)),
            "per_clip": [{"name": n, "sc_db": s, "lsd_db": l} for n, s, l in zip(names, sc, lsd)],
            "method": "zone size 0, mix 1, latency-aligned; engine.quality.audio_quality (n_fft 2048, hop 512); median over clips"}


def bench_blur_curve(bundle: Bundle, clip: np.ndarray, zones, temps, seed: int, blur_ok: bool,
                     detail: float = 0.0) -> list[dict]:
    ref = render_aligned(_params_engine(bundle, ZONE0.replace(detail=detail), seed=seed), clip)
    S0 = stft_magnitude(ref)
    codes0 = encode_codes(bundle, clip) if blur_ok else None
    out = []
    for t in temps:
        for z in zones:
            p = Params(zone_size=z, temperature=t, centre=0.5, mix=1.0, detail=detail)
            y = render_aligned(_params_engine(bundle, p, seed=seed), clip)
            S = stft_magnitude(y)
            row = {"zone_size": z, "temperature": t,
                   "sc_db": spectral_convergence_db(S0, S), "lsd_db": log_spectral_distance_db(S0, S)}
            if codes0 is not None and codes0.size:
                cb = blur_codes(bundle, codes0, z, t, 0.5, seed)
                row["codes_changed"] = float((cb != codes0).mean())
            out.append(row)
    return out


def find_int8_sibling(root: Path) -> Path | None:
    root = Path(root)
    for cand in (root.parent / f"{root.name}_int8", root.parent / f"{root.name}-int8", root / "int8"):
        if (cand / "manifest.json").is_file():
            return cand
    return None


def bench_bundle(path: Path, o: BenchOptions, clips, clip_source: str, audio_clips, audio_source) -> dict:
    log = o.log
    bundle = load_bundle(path)
    sr = bundle.sample_rate
    cfg = SignalConfig.from_bundle(bundle)
    man = bundle.manifest
    res: dict[str, Any] = {
        "name": Path(bundle.root).name, "path": str(bundle.root), "precision": bundle.precision,
        "sample_rate": sr, "rows": bundle.rows, "codebook_size": bundle.codebook_size,
        "bundle_mb": bundle_size_mb(bundle.root),
    }
    probe = _params_engine(bundle, ZONE0)
    blur_ok = bool(probe.blur_available)
    res["blur_available"] = blur_ok
    del probe

    log(f"[{res['name']}] latency ({o.excitations} excitations)")
    res.update(bench_latency(lambda: _params_engine(bundle, ZONE0, seed=o.seed), sr, o.excitations, o.seed))

    # timing signal: test audio (or synthetic) concatenated to `seconds`
    pool = [a for _, a in (clips or [])]
    x = np.concatenate(pool) if pool else synth_audio(o.seconds, sr, o.seed)
    n = int(o.seconds * sr)
    while len(x) < n:
        x = np.concatenate([x, x])
    x = np.ascontiguousarray(x[:n], dtype=np.float32)
    res["timing_audio_seconds"] = n / sr
    res["timing_params"] = o.timing_params.as_dict()

    rtf = {}
    res["energy_by_threads"] = {}
    for th in o.threads:
        log(f"[{res['name']}] rtf, {th} thread(s), {o.repeats} x {n / sr:.1f} s")
        r = bench_rtf(lambda th=th: _params_engine(bundle, o.timing_params, threads=th, seed=o.seed),
                      x, sr, o.repeats, o.watts_per_core)
        rtf[str(th)] = r["rtf"]
        res.setdefault("rtf_runs", {})[str(th)] = r["rtf_runs"]
        res["energy_by_threads"][str(th)] = r["energy_j_per_audio_s"]
        if th == o.threads[0]:
            stats, cols, wall = r["_stats"]
            res["breakdown"] = breakdown_of(stats, wall)
            res["breakdown_ms_per_audio_s"] = {k: 1000.0 * stats[k] / (n / sr) for k in
                                               ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")}
            res["columns"] = column_summary(cols, cfg)
            res["columns"]["times_ms"] = [round(v, 4) for v in (1000.0 * cols).tolist()]
            res["energy_j_per_audio_s"] = r["energy_j_per_audio_s"]
            res["energy_method"] = r["energy_method"]
            res["energy_source"] = r["energy_source"]
            res["energy_threads"] = th
            res["cpu_s_per_audio_s"] = r["cpu_s_per_audio_s"]
            res["preemptions_per_audio_s"] = r["preemptions_per_audio_s"]
        res.setdefault("rtf_cpu", {})[str(th)] = r["cpu_s_per_audio_s"]
    res["rtf"] = rtf

    log(f"[{res['name']}] host blocks {list(o.blocks)}")
    res["blocks"] = bench_blocks(lambda: _params_engine(bundle, o.timing_params, threads=o.threads[0], seed=o.seed),
                                 x, sr, o.blocks)

    log(f"[{res['name']}] DSP-only baseline (IdentityCodec)")
    b = bench_rtf(lambda: _dsp_engine(bundle, o.timing_params), x, sr, o.repeats, o.watts_per_core)
    bstats, bcols, bwall = b["_stats"]
    base_blocks = bench_blocks(lambda: _dsp_engine(bundle, o.timing_params), x, sr, [512])
    m1 = rtf[str(o.threads[0])]
    res["baseline_dsp"] = {
        "codec": "IdentityCodec (STFT analysis + synthesis, no model, no blur)",
        "rtf": b["rtf"], "rtf_runs": b["rtf_runs"],
        "rtf_ratio": m1 / max(b["rtf"], 1e-12), "model_share": 1.0 - b["rtf"] / max(m1, 1e-12),
        "energy_j_per_audio_s": b["energy_j_per_audio_s"], "energy_method": b["energy_method"],
        "columns": column_summary(bcols, cfg),
        "block_512": {k: v for k, v in base_blocks["512"].items() if k != "times_ms"},
        "breakdown": breakdown_of(bstats, bwall),
    }
    res["baseline_dsp"].update(bench_latency(lambda: _dsp_engine(bundle, ZONE0), sr, min(o.excitations, 6), o.seed))
    for k in ("latency_measurements_samples", "latency_by_excitation_samples", "latency_method",
              "latency_excitations"):
        res["baseline_dsp"].pop(k, None)

    log(f"[{res['name']}] peak RSS (subprocess)")
    res["memory"] = peak_rss(bundle.root, min(o.seconds, 2.0))
    res["peak_rss_mb"] = res["memory"].get("peak_rss_mb")

    log(f"[{res['name']}] quality ({len(clips)} clips{', + --audio' if audio_clips else ''})")
    res["quality"] = {"test": bench_quality(bundle, clips, clip_source)}
    if audio_clips:
        res["quality"]["audio"] = bench_quality(bundle, audio_clips, audio_source)
    res["sc_db"] = res["quality"]["test"].get("sc_db")
    res["lsd_db"] = res["quality"]["test"].get("lsd_db")

    log(f"[{res['name']}] Naive Bayes held-out evaluation")
    grids = [encode_codes(bundle, a) for _, a in clips]
    nb = {"heldout": nb_heldout(bundle, grids) if grids else {"cells": 0}, "heldout_source": clip_source,
          "fit": manifest_nb_metrics(man)}
    res["nb"] = nb
    res["_grids"] = grids  # for the side-by-side comparison (removed before returning)

    log(f"[{res['name']}] blur-strength curve")
    zones = (0.0, 0.25, 0.5, 1.0) if o.quick else CURVE_ZONES
    temps = (0.5,) if o.quick else CURVE_TEMPS
    curve_clip = clips[0][1] if clips else synth_audio(2.0, sr, o.seed)
    curve_clip = curve_clip[: int((1.0 if o.quick else 2.0) * sr)]
    res["blur_curve"] = bench_blur_curve(bundle, curve_clip, zones, temps, o.seed, blur_ok,
                                         o.timing_params.detail)
    res["blur_curve_method"] = ("SC / LSD (dB) of the blurred output against the zone-0 output on one "
                                f"clip (centre 0.5, mix 1, detail {o.timing_params.detail:g}); codes_changed: share of code cells the "
                                "streaming sampler changed")

    res["training_cost"] = training_cost(man)
    res["targets"] = check_targets(res)
    return res


def compare_bundles(ref: dict, b: dict) -> dict:
    """Side by side (e.g. int8 against fp32): code agreement on the same clips and ratios/deltas."""
    ga, gb = ref.get("_grids") or [], b.get("_grids") or []
    same = total = 0
    for x, y in zip(ga, gb):
        if x.shape == y.shape:
            same += int((x == y).sum())
            total += x.size
    d = lambda k: (b.get(k) - ref.get(k)) if isinstance(b.get(k), (int, float)) and isinstance(ref.get(k), (int, float)) else None  # noqa: E731
    r1a, r1b = ref["rtf"].get("1"), b["rtf"].get("1")
    c1a, c1b = ref.get("rtf_cpu", {}).get("1"), b.get("rtf_cpu", {}).get("1")
    return {
        "reference": ref["name"],
        "code_agreement": same / total if total else None,
        "sc_db_delta": d("sc_db"), "lsd_db_delta": d("lsd_db"),
        "rtf_ratio": (r1b / r1a) if r1a and r1b else None,
        "rtf_cpu_ratio": (c1b / c1a) if c1a and c1b else None,
        "encoder_decoder_ms_per_audio_s": {
            ref["name"]: ref["breakdown_ms_per_audio_s"]["encoder"] + ref["breakdown_ms_per_audio_s"]["decoder"],
            b["name"]: b["breakdown_ms_per_audio_s"]["encoder"] + b["breakdown_ms_per_audio_s"]["decoder"]},
        "bundle_mb_ratio": b["bundle_mb"] / ref["bundle_mb"] if ref["bundle_mb"] else None,
    }


def check_targets(r: dict) -> dict:
    t = {}

    def chk(name, value, limit, le=True):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            t[name] = {"value": None, "target": limit, "ok": None}
        else:
            t[name] = {"value": value, "target": limit, "ok": bool(value <= limit if le else value >= limit)}

    chk("latency_ms", r["latency_ms"]["measured"], TARGETS["latency_ms"])
    chk("rtf_1_thread", r["rtf"].get("1"), TARGETS["rtf_1_thread"])
    chk("column_p99_over_duration", r["columns"]["p99_over_duration"], TARGETS["column_p99_over_duration"])
    chk("peak_rss_mb", r.get("peak_rss_mb"), TARGETS["peak_rss_mb"])
    chk("bundle_mb", r["bundle_mb"], TARGETS["bundle_mb"])
    chk("sc_db", r.get("sc_db"), TARGETS["sc_db"])
    chk("lsd_db", r.get("lsd_db"), TARGETS["lsd_db"])
    return t


def host_info() -> dict:
    import onnxruntime

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "loadavg": load, "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": onnxruntime.__version__, "platform": platform.platform()}


def run_bench(o: BenchOptions) -> dict:
    t_start = time.perf_counter()
    paths: list[Path] = []
    for b in o.bundles:
        p = Path(b)
        if p not in paths:
            paths.append(p)
    if o.find_int8:
        for p in list(paths):
            s = find_int8_sibling(p)
            if s is not None and s not in paths:
                paths.append(s)
    first = load_bundle(paths[0])
    sr = first.sample_rate
    clips, clip_source = test_clips(sr, o.clips, o.seed)
    if o.quick:  # short excerpts keep --quick quick
        clips = [(n, a[: int(1.5 * sr)]) for n, a in clips]
    audio_clips, audio_source = [], None
    if o.audio_dir:
        audio_clips = load_clips(o.audio_dir, sr, max(o.clips, 1) * (1 if o.quick else 4), o.seed)
        if o.quick:
            audio_clips = [(n, a[: int(1.5 * sr)]) for n, a in audio_clips]
        audio_source = str(o.audio_dir)
    result = {
        "vqblur_bench_version": BENCH_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": host_info(),
        "settings": {"threads": list(o.threads), "blocks": list(o.blocks), "seconds": o.seconds,
                     "repeats": o.repeats, "excitations": o.excitations, "quick": o.quick, "seed": o.seed,
                     "watts_per_core": o.watts_per_core, "audio_dir": str(o.audio_dir) if o.audio_dir else None,
                     "timing_params": o.timing_params.as_dict(), "targets": TARGETS},
        "bundles": [],
    }
    for p in paths:
        result["bundles"].append(bench_bundle(p, o, clips, clip_source, audio_clips, audio_source))
    ref = result["bundles"][0]
    for b in result["bundles"][1:]:
        b["vs_first"] = compare_bundles(ref, b)
    for b in result["bundles"]:
        b.pop("_grids", None)
    result["bench_seconds"] = time.perf_counter() - t_start
    return result


# ---------------------------------------------------------------------------- table


def _f(v, fmt="{:.3g}", none="-"):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    return fmt.format(v)


def format_table(res: dict) -> str:
    bs = res["bundles"]
    names = [f"{b['name']} ({b['precision']})" for b in bs]
    rows: list[tuple[str, list[str]]] = []

    def add(label, fn):
        rows.append((label, [fn(b) for b in bs]))

    add("latency declared / measured", lambda b: f"{b['latency_samples']['declared']} / "
        f"{_f(b['latency_samples']['measured'], '{:.0f}')} smp = {b['latency_ms']['declared']:.2f} / "
        f"{_f(b['latency_ms']['measured'], '{:.2f}')} ms")
    add("jitter (std / range)", lambda b: f"{b['jitter_ms']['std']:.3f} / {b['jitter_ms']['range']:.3f} ms")
    for th in res["settings"]["threads"]:
        add(f"rtf, {th} thread{'s' if th > 1 else ''} (median)", lambda b, th=th: _f(b["rtf"].get(str(th)), "{:.4f}"))
    add("CPU s per audio s (1st thread count)", lambda b: f"{b['cpu_s_per_audio_s']:.4f} "
        f"({b.get('preemptions_per_audio_s', 0):.0f} preemptions per audio s)")
    add("rtf, DSP-only baseline", lambda b: f"{b['baseline_dsp']['rtf']:.4f} (model x{b['baseline_dsp']['rtf_ratio']:.1f}, "
        f"{100 * b['baseline_dsp']['model_share']:.0f}% of cost)")
    c = bs[0]["columns"]
    add(f"column {c['column_samples']} smp ({c['column_ms']:.2f} ms) p50/p99/max",
        lambda b: f"{b['columns']['column_ms_p50']:.3f} / {b['columns']['column_ms_p99']:.3f} / "
        f"{b['columns']['column_ms_max']:.2f} ms")
    for B in res["settings"]["blocks"]:
        blk = bs[0]["blocks"][str(B)]
        add(f"block {B} ({blk['block_ms']:.2f} ms) p50/p99/max, misses",
            lambda b, B=B: (lambda k: f"{k['block_ms_p50']:.3f} / {k['block_ms_p99']:.3f} / {k['block_ms_max']:.2f} ms, "
                            f"{k['deadline_misses']}/{k['blocks']}")(b["blocks"][str(B)]))
    add("breakdown stft/enc/blur/dec/ola/mix", lambda b: " / ".join(
        f"{100 * b['breakdown'][k]:.0f}" for k in ("stft", "encoder", "blur", "decoder", "overlap_add", "mix")) + " %")
    add("peak RSS / bundle", lambda b: f"{_f(b.get('peak_rss_mb'), '{:.0f}')} MB / {b['bundle_mb']:.2f} MB")
    add("energy per audio second", lambda b: f"{b['energy_j_per_audio_s']:.3g} J ({b['energy_method']}), "
        f"baseline {b['baseline_dsp']['energy_j_per_audio_s']:.3g} J")
    add("zone-0 SC / LSD (test)", lambda b: f"{_f(b['quality']['test'].get('sc_db'), '{:.1f}')} / "
        f"{_f(b['quality']['test'].get('lsd_db'), '{:.2f}')} dB (n={b['quality']['test'].get('clips', 0)})")
    if any("audio" in b["quality"] for b in bs):
        add("zone-0 SC / LSD (--audio)", lambda b: f"{_f(b['quality'].get('audio', {}).get('sc_db'), '{:.1f}')} / "
            f"{_f(b['quality'].get('audio', {}).get('lsd_db'), '{:.2f}')} dB")
    add("NB held-out NLL (unigram)", lambda b: f"{_f(b['nb']['heldout'].get('nll_nats'), '{:.3f}')} "
        f"({_f(b['nb']['heldout'].get('unigram_nll_nats'), '{:.3f}')}) nats/cell")
    add("NB held-out top-1 / top-5", lambda b: f"{_f(b['nb']['heldout'].get('top1'), '{:.1%}')} / "
        f"{_f(b['nb']['heldout'].get('top5'), '{:.1%}')} (unigram {_f(b['nb']['heldout'].get('unigram_top1'), '{:.1%}')} / "
        f"{_f(b['nb']['heldout'].get('unigram_top5'), '{:.1%}')})")

    def nb_fit(b):
        sp = nb_fit_splits(b["nb"].get("fit"))
        if not sp:
            return "-"
        split = "test" if "test" in sp else next(iter(sp))
        m = sp[split]["models"]
        parts = [f"{k} {m[k]['nll_nats']:.3f}" for k in ("full", "causal", "unigram") if k in m and "nll_nats" in m[k]]
        best = "full" if "full" in m else ("causal" if "causal" in m else None)
        top = m.get(best, {}).get("top1") if best else None
        return f"{split}: " + ", ".join(parts) + (f" nats; {best} top-1 {top:.1%}" if top is not None else " nats")

    if any(b["nb"].get("fit") for b in bs):
        add("NB fit eval (manifest)", nb_fit)

    def curve(b):
        pts = [p for p in b["blur_curve"] if p["temperature"] == 0.5] or b["blur_curve"]
        return "  ".join(f"z{p['zone_size']:g}:{p['lsd_db']:.1f}" for p in pts) + " dB LSD"

    add("blur curve (t=0.5)", curve)
    add("training time / energy / CO2e", lambda b: (lambda t: f"{_f(t['wall_seconds'], '{:.0f}')} s / "
        f"{_f(t['energy_j'], '{:.3g}')} J ({t['energy_method'] or '-'}) / {_f(t['co2e_g'], '{:.3g}')} g")(b["training_cost"]))
    if len(bs) > 1:
        add("vs first: codes agree / dSC / dLSD / RTF", lambda b: "-" if "vs_first" not in b else (
            lambda v: f"{_f(v['code_agreement'], '{:.1%}')} / {_f(v['sc_db_delta'], '{:+.2f}')} / "
                      f"{_f(v['lsd_db_delta'], '{:+.2f}')} dB / x{_f(v['rtf_ratio'], '{:.2f}')}")(b["vs_first"]))
    add("targets missed", lambda b: ", ".join(k for k, v in b["targets"].items() if v["ok"] is False) or "none")

    w0 = max(len(r[0]) for r in rows)
    ws = [max([len(n)] + [len(r[1][i]) for r in rows]) for i, n in enumerate(names)]
    h = res["host"]
    lines = [f"vqblur bench - {h['cpu']} ({h['usable_cpus']} usable CPUs, load {_f(h['loadavg'][0] if h['loadavg'] else None, '{:.1f}')}), "
             f"onnxruntime {h['onnxruntime']}; timing knobs zone {res['settings']['timing_params']['zone_size']}, "
             f"temperature {res['settings']['timing_params']['temperature']}",
             f"test audio: {bs[0]['quality']['test']['source']}",
             "  ".join([" " * w0] + [n.ljust(w) for n, w in zip(names, ws)]),
             "  ".join(["-" * w0] + ["-" * w for w in ws])]
    for label, vals in rows:
        lines.append("  ".join([label.ljust(w0)] + [v.ljust(w) for v, w in zip(vals, ws)]))
    lines.append(f"energy: {bs[0]['energy_source']}")
    lines.append(f"bench took {res.get('bench_seconds', 0):.1f} s")
    return "\n".join(lines)


def strip_for_json(res: dict) -> dict:
    return json.loads(json.dumps(res, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
