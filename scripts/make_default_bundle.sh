#!/usr/bin/env bash
# Rebuild the shipped default model bundle (presets/default_bundle/) from a training run.
#
#   scripts/make_default_bundle.sh [RUN_DIR] [OUT_DIR]
#
# RUN_DIR  a `vqblur train` run folder (default runs/default): model.pt (or checkpoint.pt),
#          config.json, metrics.jsonl, summary.json
# OUT_DIR  the bundle folder to (re)write (default presets/default_bundle)
#
# Steps: fit the Naive Bayes table on the run's training codemaps (`vqblur fit-nb`, skipped
# when RUN_DIR/nb_table.npz is newer than the checkpoint; FORCE_NB=1 refits), then
# `vqblur export` (ONNX step graphs + manifest + parity check against the PyTorch model; exits
# non-zero when parity fails). Extra arguments for fit-nb: NB_ARGS="--alpha 1.0".
# Run it from anywhere; it works in the repository root. After retraining or any change to
# the architecture, re-run it and commit the new bundle.
set -euo pipefail

cd "$(dirname "$0")/.."
RUN="${1:-runs/default}"
OUT="${2:-presets/default_bundle}"

if [[ -n "${VQBLUR:-}" ]]; then
    read -r -a CLI <<< "$VQBLUR"
elif [[ -x .venv/bin/python ]]; then
    CLI=(.venv/bin/python -m vqblur.cli)
else
    CLI=(vqblur)
fi

if [[ -f "$RUN/model.pt" ]]; then
    CKPT="$RUN/model.pt"
elif [[ -f "$RUN/checkpoint.pt" ]]; then
    CKPT="$RUN/checkpoint.pt"
    echo "note: $RUN has no model.pt (training not finished?); using $CKPT" >&2
else
    echo "error: no model.pt or checkpoint.pt in $RUN" >&2
    exit 2
fi

NB="$RUN/nb_table.npz"
if [[ "${FORCE_NB:-0}" == "1" || ! -f "$NB" || "$CKPT" -nt "$NB" ]]; then
    echo "== fit-nb: $CKPT -> $NB"
    # shellcheck disable=SC2086
    "${CLI[@]}" fit-nb "$CKPT" --out "$NB" ${NB_ARGS:-}
else
    echo "== fit-nb: $NB is newer than $CKPT, kept (FORCE_NB=1 to refit)"
fi

echo "== export: $CKPT + $NB -> $OUT"
"${CLI[@]}" export "$CKPT" --nb "$NB" --out "$OUT"

echo "== done: $OUT"
ls -l "$OUT"
