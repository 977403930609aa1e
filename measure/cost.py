"""What the effect costs besides compute: peak memory of a fresh engine process, the bundle's
size, and the training cost (time, energy, CO2e) recorded in a bundle's manifest.

Energy per audio second is measured with the timing runs (:mod:`vqblur.measure.compute`,
:mod:`vqblur.common.energy`: RAPL when readable, otherwise CPU time x watts per core,
labelled ``estimated``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from vqblur.common.energy import GRID_G_CO2E_PER_KWH, GRID_SOURCE, co2e_grams


def bundle_size_mb(root: Path) -> float:
    """Size of the bundle folder's files in MB (1e6 bytes)."""
    return sum(p.stat().st_size for p in Path(root).iterdir() if p.is_file()) / 1e6


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
