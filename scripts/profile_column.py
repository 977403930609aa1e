#!/usr/bin/env python
"""A Python-level profile of the engine's per-column work (docs/MEASURING.md quotes it).

    .venv/bin/python scripts/profile_column.py [--bundle DIR] [--seconds 10] [--zone 0.3] [--detail 1]

Runs the streaming engine on the demo clip in 128-sample blocks, one thread, and prints
cProfile's top functions by own time (tottime) per code column, plus the engine's own
per-step breakdown (EngineStats) in microseconds per column.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--zone", type=float, default=0.3)
    ap.add_argument("--detail", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=18)
    a = ap.parse_args()

    import numpy as np
    import soundfile as sf
    from importlib import resources

    from vqblur.engine.bundle import default_bundle_path, load_bundle
    from vqblur.engine.core import Engine, Params

    clip = resources.files("vqblur.presets") / "clips" / "demo.wav"
    x, sr = sf.read(str(clip), dtype="float32")
    x = x.mean(axis=1) if x.ndim > 1 else x
    n = int(a.seconds * sr)
    x = np.resize(x, n).astype(np.float32)
    bundle = load_bundle(a.bundle or default_bundle_path())
    eng = Engine(bundle, Params(zone_size=a.zone, detail=a.detail), threads=1)
    blocks = [x[i:i + 128] for i in range(0, n, 128)]
    for b in blocks[:200]:
        eng.process(b)
    eng.reset()
    eng.stats.reset()
    prof = cProfile.Profile()
    prof.enable()
    for b in blocks:
        eng.process(b)
    prof.disable()
    cols = eng.stats.columns
    print(f"{bundle.root.name}: {cols} columns, zone {a.zone}, detail {a.detail}, 1 thread, 128-sample blocks")
    st = eng.stats.as_dict()
    print("engine steps, us per column: " + ", ".join(
        f"{k} {1e6 * st[k] / cols:.1f}" for k in ("stft", "encoder", "blur", "decoder", "overlap_add", "mix", "total")))
    ps = pstats.Stats(prof)
    rows = sorted(ps.stats.items(), key=lambda kv: kv[1][2], reverse=True)[: a.top]
    print(f"{'own us/col':>10} {'calls/col':>9}  function")
    for (file, line, fn), (cc, nc, tt, ct, callers) in rows:
        where = f"{file.split('/')[-1]}:{line}" if line else file
        print(f"{1e6 * tt / cols:10.1f} {nc / cols:9.2f}  {fn} ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
