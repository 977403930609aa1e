#!/usr/bin/env bash
# Train on a lent GPU machine from a pack (vqblur pack-data), for the device tool's `run`, from
# the repository root. The machine has python, torch, numpy, onnx and onnxruntime, but no
# network, soundfonts, FluidSynth, soundfile or soxr, and vqblur is not installed there: the
# package is staged from the checkout under /tmp, and the run reads only the pack.
#
#   scripts/device_train.sh CONFIG PACK MINUTES [RUN_DIR] [--set KEY=VALUE ...]
#
# CONFIG   the model's TOML (e.g. training/configs/default.toml)
# PACK     the pack, carried with the tree (e.g. data/pack.npz: run(..., carry=["data/pack.npz"]))
# MINUTES  wall minutes for this stretch (leave the call's timeout room; the schedule ends with it)
# RUN_DIR  a run to continue (carried too): its checkpoint.pt is resumed
# The run folder is written to $OUT/run (every train.checkpoint_every steps), so what a cut-off
# call had done still comes back. Without $OUT (a local try) it goes to runs/device.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,14p "$0"; exit 2; }
config=$1 pack=$2 minutes=$3
shift 3
resume=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then resume=$1; shift; fi
PY=${PY:-/opt/torch/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
root=$PWD
out=$(realpath -m "${OUT:-runs/device}/run")
config=$(realpath "$config") pack=$(realpath "$pack")
[ -z "$resume" ] || resume=$(realpath "$resume")
stage=$(mktemp -d /tmp/vqblur_stage.XXXXXX)
# the package laid out as pyproject.toml's package-dir maps it (vqblur/ plus top-level folders)
"$PY" - "$root" "$stage" <<'PY'
import os, sys, tomllib
root, stage = sys.argv[1:]
dirs = tomllib.load(open(os.path.join(root, "pyproject.toml"), "rb"))["tool"]["setuptools"]["package-dir"]
os.mkdir(os.path.join(stage, "vqblur"))
for f in os.listdir(os.path.join(root, dirs["vqblur"])):
    os.symlink(os.path.join(root, dirs["vqblur"], f), os.path.join(stage, "vqblur", f))
for name, d in dirs.items():  # vqblur.X -> a folder; deeper packages lie inside their parent's
    if name.count(".") == 1 and not os.path.exists(os.path.join(stage, *name.split("."))):
        os.symlink(os.path.join(root, d), os.path.join(stage, *name.split(".")))
PY
export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}"
cd "$stage"  # (from the checkout's root, python -m would find its bare vqblur/ folder first)
"$PY" - <<'PY'
import torch, vqblur.training.train as t
print(f"vqblur from {t.__file__}; torch {torch.__version__}; cuda {torch.cuda.is_available()}",
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
mkdir -p "$out"
if [ -n "$resume" ]; then
    [ "$resume" -ef "$out" ] || cp -r "$resume"/. "$out"/
    # train.max_minutes counts the run's wall time over all its stretches: this one adds MINUTES
    minutes=$("$PY" -c "import torch, sys; c = torch.load(sys.argv[1], map_location='cpu', weights_only=False); print(round(c.get('wall_seconds', 0) / 60 + float(sys.argv[2]), 2))" "$out/checkpoint.pt" "$minutes")
    start=(--resume "$out/checkpoint.pt")
else
    start=(--config "$config")
fi
"$PY" -m vqblur train "${start[@]}" --set data.source=packed --set "data.path=$pack" \
    --set "train.max_minutes=$minutes" "$@" --no-progress --out "$out"
rm -rf "$stage"
