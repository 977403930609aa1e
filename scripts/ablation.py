#!/usr/bin/env python
"""Codec v2 ablation at equal CPU time: train each row for the same process CPU budget on the
same data (the ``mix`` source), then measure the pure codec (zone 0, detail 0) on the
real-recording test split and the GM test split (TimGM6mb).

    .venv/bin/python scripts/ablation.py --cpu-minutes 10 --out runs/ablation

Writes ``<out>/<row>/`` (the training run), ``<out>/ablation.json`` and prints a Markdown
table (docs/CODEC.md quotes it). Rows are cumulative: each adds one change to the previous.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROWS: list[tuple[str, str, list[str]]] = [
    ("v1 (shipped before)", "training/configs/v1.toml", []),
    ("+ time context", "training/configs/v1.toml",
     ["model.down_time_kernel=2", "model.res_dilations=1,3"]),
    ("+ residual VQ (4 x 256)", "training/configs/v1.toml",
     ["model.down_time_kernel=2", "model.res_dilations=1,3", "model.rvq_levels=4",
      "model.code_dim=16", "model.l2_normalise=false"]),
    ("+ macro map, dropout", "training/configs/v1.toml",
     ["model.down_time_kernel=2", "model.res_dilations=1,3", "model.rvq_levels=4",
      "model.code_dim=16", "model.l2_normalise=false", "model.macro_factor=4",
      "model.quantizer_dropout=0.3"]),
    ("full v2 (+ level loss, 32/48/64)", "training/configs/default.toml", []),
]
COMMON = ["data.source=mix", "train.max_minutes=0", "train.steps=100000", "train.eval_every=1000000",
          "train.checkpoint_every=500"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-minutes", type=float, default=10.0, help="process CPU budget per row")
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--gm-clips", type=int, default=16)
    ap.add_argument("--rows", default="", help="comma-separated row indices to run (default all)")
    ap.add_argument("--eval-only", action="store_true", help="measure rows already trained")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    pick = [int(i) for i in a.rows.split(",")] if a.rows else list(range(len(ROWS)))
    for i in pick:
        name, config, sets = ROWS[i]
        run = out / f"row{i}"
        if a.eval_only or (run / "model.pt").is_file():
            continue
        cmd = [sys.executable, "-m", "vqblur", "train", "--config", config, "--out", str(run), "--no-progress"]
        for s in COMMON + sets + [f"train.max_cpu_minutes={a.cpu_minutes}"]:
            cmd += ["--set", s]
        print("ablation:", name, "->", run, flush=True)
        subprocess.run(cmd, check=True)
    return measure(out, pick, a.gm_clips)


def measure(out: Path, pick: list[int], gm_clips: int) -> int:
    import torch

    from vqblur.common.recordings import test_set
    from vqblur.training.checkpoint import load_checkpoint
    from vqblur.training.data.corpus import load_corpus
    from vqblur.training.data.folder import read_mono
    from vqblur.training.evaluate import evaluate_clips
    from vqblur.training.model import count_macs_per_column

    torch.set_num_threads(1)
    real = [read_mono(r.path, 48000)[0] for r in test_set()]
    gm, _ = load_corpus("gm", None, "test", 48000, limit=gm_clips, render_kwargs={"workers": 1})
    gm = [c.audio for c in gm]
    results = []
    for i in pick:
        run = out / f"row{i}"
        model = load_checkpoint(run / "model.pt")[0]
        summary = json.loads((run / "summary.json").read_text())
        macs = count_macs_per_column(model)
        row = {"row": ROWS[i][0], "steps": summary["steps"], "cpu_minutes": summary.get("cpu_seconds", 0) / 60,
               "macs_encoder": macs["encoder"], "macs_decoder": macs["decoder"],
               "macs_budget": macs["encoder"] + 2 * macs["decoder"],
               "bits_per_column": model.levels * model.rows * 8 + model.rows_macro * 8,
               "real": evaluate_clips(model, real), "gm": evaluate_clips(model, gm)}
        results.append(row)
        print(json.dumps(row), flush=True)
    (out / "ablation.json").write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def table(results: list[dict]) -> str:
    head = ("| row | steps | MACs enc / dec (M) | enc + 2 dec (M) | bits/col | real SC / LSD / level (dB) "
            "| GM SC / LSD / level (dB) |\n|---|---|---|---|---|---|---|")
    lines = [head]
    for r in results:
        f = lambda d: f"{d['sc_db']:.1f} / {d['lsd_db']:.2f} / {d['level_db']:+.2f}"
        lines.append(f"| {r['row']} | {r['steps']} | {r['macs_encoder'] / 1e6:.2f} / {r['macs_decoder'] / 1e6:.2f} "
                     f"| {r['macs_budget'] / 1e6:.2f} | {r['bits_per_column']} | {f(r['real'])} | {f(r['gm'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
