#!/usr/bin/env python
"""Soak test: a long run of audio through the streaming Engine, in random block sizes, with
random knob automation. Checks, and reports as JSON:

* every output sample finite and |y| <= 1.0 (counts of violations, the largest |y|);
* memory: resident set size (RSS, from /proc/self/statm) sampled every ``--sample-every``
  seconds of audio; the slope of a least-squares line through the samples after the warm-up
  (``--warmup`` fraction of the run), in MB per minute of audio and per minute of wall time;
  the count of live Python objects (gc) at the same points;
* determinism: the sha256 of the output (float32 bytes); ``--repeat 2`` runs the whole thing
  again with a fresh Engine and the same seed and requires the same hash.

The input is generated from the seed: tones with glides, noise bursts, silence, DC,
full-scale squares, a hot (+12 dBFS) passage now and then, and rare NaN/Inf samples.
Block sizes: uniform 1..4096 for three blocks in four, log-uniform (mostly tiny) otherwise.
Knobs: every block has a 1-in-8 chance of new random targets for some knobs (jumps; the
engine smooths them), bypass toggles rarely.

Usage::

    python scripts/soak.py --minutes 30 --seed 1 --bundle DIR --json soak.json [--repeat 2]
    python scripts/soak.py --minutes 2 --toy --json soak.json      # the torch-free test bundle

``--minutes`` counts minutes of audio, not of wall time. Exit code 0 when every check passes
(``pass`` in the JSON), 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE / 1e6
    except OSError:  # pragma: no cover - not Linux
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def slope(x, y) -> float:
    """Least-squares slope of y over x (0 if fewer than 2 distinct x)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return 0.0
    return float(np.polyfit(x, y, 1)[0])


class SignalGen:
    """Deterministic, varied test audio, generated block by block from a seed."""

    def __init__(self, rng: np.random.Generator, sr: int, channels: int):
        self.rng, self.sr, self.ch = rng, sr, channels
        self.phase = np.zeros(channels)
        self.n = 0
        self._new_segment()

    def _new_segment(self):
        r = self.rng
        self.kind = r.choice(["tone", "tone", "noise", "silence", "dc", "square", "hot", "mix"])
        self.left = int(r.integers(self.sr // 20, self.sr * 2))
        self.f0 = r.uniform(40, 8000, self.ch)
        self.f1 = r.uniform(40, 8000, self.ch)
        self.amp = r.uniform(0.05, 0.9)
        self.seg_len = self.left

    def block(self, n: int) -> np.ndarray:
        out = np.empty((n, self.ch))
        i = 0
        while i < n:
            if self.left == 0:
                self._new_segment()
            m = min(n - i, self.left)
            out[i : i + m] = self._render(m)
            self.left -= m
            i += m
        if self.rng.random() < 0.002:  # rare bad samples
            k = int(self.rng.integers(0, n))
            out[k : k + int(self.rng.integers(1, 64))] = self.rng.choice([np.nan, np.inf, -np.inf])
        self.n += n
        return out

    def _render(self, m: int) -> np.ndarray:
        r, k = self.rng, self.kind
        if k == "silence":
            return np.zeros((m, self.ch))
        if k == "dc":
            return np.full((m, self.ch), self.amp)
        if k in ("noise", "hot"):
            a = 4.0 if k == "hot" else self.amp
            return a * r.standard_normal((m, self.ch))
        # tones with a glide (phase-continuous), squares, or tone + noise
        pos = (self.seg_len - self.left + np.arange(m)) / max(self.seg_len, 1)
        f = self.f0[None, :] + (self.f1 - self.f0)[None, :] * pos[:, None]
        ph = self.phase[None, :] + np.cumsum(2 * np.pi * f / self.sr, axis=0)
        self.phase = ph[-1] % (2 * np.pi)
        s = np.sin(ph)
        if k == "square":
            return np.sign(s)
        if k == "mix":
            return self.amp * s + 0.05 * r.standard_normal((m, self.ch))
        return self.amp * s


def _random_knobs(rng: np.random.Generator) -> dict:
    knobs = {}
    for k in ("zone_size", "temperature", "centre", "mix"):
        if rng.random() < 0.5:
            knobs[k] = float(rng.choice([0.0, 1.0, rng.random()], p=[0.15, 0.15, 0.7]))
    if rng.random() < 0.05:
        knobs["bypass"] = float(rng.integers(0, 2))
    return knobs


def run_once(bundle, minutes: float, seed: int, channels: int = 1, rate: int | None = None,
             sample_every: float = 5.0, warmup: float = 0.25, progress=None) -> dict:
    from vqblur.engine.core import Params
    from vqblur.engine.resample import make_engine

    gc.collect()
    rss0 = rss_mb()
    eng = make_engine(bundle, sample_rate=rate, params=Params(zone_size=0.3, temperature=0.5),
                      channels=channels, seed=seed)
    sr = eng.sample_rate
    total = int(round(minutes * 60 * sr))
    rng = np.random.default_rng(seed)
    gen = SignalGen(np.random.default_rng([seed, 1]), sr, channels)
    h = hashlib.sha256()
    nonfinite = over = blocks = 0
    max_abs = 0.0
    done = 0
    next_sample = 0.0
    samples = []  # (audio s, wall s, rss MB, python objects)
    t0 = time.perf_counter()
    while done < total:
        if rng.random() < 0.75:
            n = int(rng.integers(1, 4097))
        else:
            n = int(np.exp(rng.uniform(0.0, np.log(4096.0))))
        n = min(n, total - done)
        if rng.random() < 0.125:
            eng.set_params(**_random_knobs(rng))
        x = gen.block(n).astype(np.float32)
        y = eng.process(x)
        if y.shape != x.shape:
            raise AssertionError(f"block {blocks}: output shape {y.shape} != input {x.shape}")
        fin = np.isfinite(y)
        if not fin.all():
            nonfinite += int((~fin).sum())
        m = float(np.max(np.abs(np.where(fin, y, 0.0))))
        max_abs = max(max_abs, m)
        if m > 1.0:
            over += int((np.abs(y) > 1.0).sum())
        h.update(np.ascontiguousarray(y, dtype=np.float32).tobytes())
        done += n
        blocks += 1
        t_audio = done / sr
        if t_audio >= next_sample or done >= total:
            # live Python objects, less the tuples of this very list
            objs = len(gc.get_objects()) - len(samples)
            samples.append((t_audio, time.perf_counter() - t0, rss_mb(), objs))
            next_sample += sample_every
            if progress:
                progress(t_audio, total / sr, samples[-1][2])
    wall = time.perf_counter() - t0
    s = np.array(samples)
    keep = s[:, 0] >= warmup * s[-1, 0]
    if keep.sum() < 2:
        keep[:] = True
    sl_audio = slope(s[keep, 0] / 60.0, s[keep, 2])
    sl_wall = slope(s[keep, 1] / 60.0, s[keep, 2])
    sl_obj = slope(s[keep, 0] / 60.0, s[keep, 3])
    stats = getattr(eng, "stats", None)
    col = stats.recent_column_times() if stats is not None and stats.columns else np.zeros(1)
    return {
        "sha256": h.hexdigest(),
        "samples": done,
        "blocks": blocks,
        "audio_s": done / sr,
        "wall_s": wall,
        "real_time_factor": wall / max(done / sr, 1e-9),
        "sample_rate": sr,
        "nonfinite_samples": nonfinite,
        "samples_over_full_scale": over,
        "max_abs": max_abs,
        "column_time_ms": {"p50": float(np.percentile(col, 50) * 1e3),
                           "p99": float(np.percentile(col, 99) * 1e3),
                           "max": float(col.max() * 1e3)},
        "rss_mb": {
            "before_engine": rss0,
            "start": float(s[0, 2]),
            "end": float(s[-1, 2]),
            "peak": float(s[:, 2].max()),
            "after_warmup_min": float(s[keep, 2].min()),
            "after_warmup_max": float(s[keep, 2].max()),
            "slope_mb_per_audio_min": sl_audio,
            "slope_mb_per_wall_min": sl_wall,
            "warmup_fraction": warmup,
            "series": [[round(a, 3), round(w, 3), round(r, 3), int(o)] for a, w, r, o in samples],
        },
        "python_objects": {"start": int(s[0, 3]), "end": int(s[-1, 3]),
                           "slope_per_audio_min": sl_obj},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/soak.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="minutes of AUDIO (default 30)")
    ap.add_argument("--seed", type=int, default=0)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--bundle", metavar="DIR", help="model bundle (default: the shipped one)")
    src.add_argument("--toy", action="store_true", help="build and use the torch-free toy bundle")
    ap.add_argument("--json", metavar="OUT", help="write the report here")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run N times with the same seed; all output hashes must agree")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--rate", type=int, default=None, help="I/O rate (resampled if not the bundle's)")
    ap.add_argument("--sample-every", type=float, default=5.0, metavar="S",
                    help="RSS sample period in seconds of audio (default 5)")
    ap.add_argument("--warmup", type=float, default=0.25,
                    help="fraction of the run left out of the RSS slope (default 0.25)")
    ap.add_argument("--max-slope", type=float, default=1.0, metavar="MB",
                    help="fail if RSS grows faster than this many MB per audio minute (default 1)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.minutes <= 0 or a.repeat < 1 or a.channels < 1:
        ap.error("--minutes, --repeat and --channels must be positive")

    from vqblur.common.errors import UserError

    try:
        if a.toy:
            from tests.toy_bundle import make_toy_bundle

            tmp = tempfile.mkdtemp(prefix="vqblur-soak-")
            bundle_dir = make_toy_bundle(Path(tmp) / "toy")
        else:
            from vqblur.engine.bundle import default_bundle_path

            bundle_dir = Path(a.bundle) if a.bundle else default_bundle_path()
        from vqblur.engine.bundle import load_bundle

        bundle = load_bundle(bundle_dir)
    except UserError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2

    last = [0.0]

    def progress(t, total, rss):
        now = time.monotonic()
        if not a.quiet and (now - last[0] >= 2.0 or t >= total):
            last[0] = now
            print(f"\rsoak: {t / 60:6.2f} / {total / 60:.2f} audio min  RSS {rss:7.1f} MB",
                  end="", file=sys.stderr, flush=True)

    runs = []
    for i in range(a.repeat):
        r = run_once(bundle, a.minutes, a.seed, a.channels, a.rate, a.sample_every, a.warmup,
                     progress)
        if not a.quiet:
            print(file=sys.stderr)
        runs.append(r)
    first = runs[0]
    hashes = [r["sha256"] for r in runs]
    deterministic = len(set(hashes)) == 1
    failures = []
    for i, r in enumerate(runs):
        if r["nonfinite_samples"]:
            failures.append(f"run {i}: {r['nonfinite_samples']} non-finite output samples")
        if r["samples_over_full_scale"]:
            failures.append(f"run {i}: {r['samples_over_full_scale']} samples above 0 dBFS")
        if r["rss_mb"]["slope_mb_per_audio_min"] > a.max_slope:
            failures.append(f"run {i}: RSS grows {r['rss_mb']['slope_mb_per_audio_min']:.3f} "
                            f"MB per audio minute (limit {a.max_slope})")
    if not deterministic:
        failures.append(f"same seed, different outputs: {hashes}")
    report = {
        "seed": a.seed,
        "minutes_of_audio": a.minutes,
        "bundle": str(bundle.root),
        "channels": a.channels,
        "rate": first["sample_rate"],
        "repeat": a.repeat,
        "deterministic": deterministic if a.repeat > 1 else None,
        "hashes": hashes,
        "max_slope_mb_per_audio_min": a.max_slope,
        "pass": not failures,
        "failures": failures,
        "runs": runs,
    }
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n")
    if not a.quiet:
        for r in runs:
            print(f"soak: {r['audio_s'] / 60:.2f} audio min in {r['wall_s']:.1f} s "
                  f"(RTF {r['real_time_factor']:.3f}), {r['blocks']} blocks, max |y| "
                  f"{r['max_abs']:.4f}, non-finite {r['nonfinite_samples']}, RSS "
                  f"{r['rss_mb']['start']:.1f} -> {r['rss_mb']['end']:.1f} MB, slope "
                  f"{r['rss_mb']['slope_mb_per_audio_min']:+.4f} MB/audio-min "
                  f"({r['rss_mb']['slope_mb_per_wall_min']:+.4f} MB/wall-min), sha256 "
                  f"{r['sha256'][:16]}", file=sys.stderr)
        print(f"soak: {'PASS' if not failures else 'FAIL: ' + '; '.join(failures)}"
              + (f" (deterministic over {a.repeat} runs)" if a.repeat > 1 and deterministic else ""),
              file=sys.stderr)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
