#!/usr/bin/env bash
# Rebuild the shipped default model from a finished training run: fit both Naive Bayes tables
# (micro level 0 and the macro map, in parallel), export presets/default_bundle with its parity
# check against the PyTorch model (exits non-zero when parity fails), and copy the run's config,
# metrics, log, summary and checkpoint to training/default_run. After retraining or any change
# to the architecture, run it and commit the new bundle and run.
#
#   scripts/build_default_bundle.sh RUN_DIR [LIMIT]
#
# RUN_DIR  a `vqblur train` run folder: model.pt, config.json, metrics.jsonl, summary.json
# LIMIT    clips encoded per split for the NB fit (default 2000)
# The CLI is .venv/bin/vqblur, else `vqblur` on the PATH; VQBLUR="..." names another.
# Run it from anywhere; it works in the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
run="${1:?usage: scripts/build_default_bundle.sh RUN_DIR [LIMIT]}"
limit="${2:-2000}"
if [[ -n "${VQBLUR:-}" ]]; then
    read -r -a vq <<< "$VQBLUR"
elif [[ -x .venv/bin/vqblur ]]; then
    vq=(.venv/bin/vqblur)
else
    vq=(vqblur)
fi
if [[ ! -f "$run/model.pt" ]]; then
    echo "error: no model.pt in $run (training not finished?)" >&2
    exit 2
fi
export VQBLUR_DATA="${VQBLUR_DATA:-$PWD/data}"
"${vq[@]}" fit-nb "$run" --out "$run/nb_table.npz" --limit "$limit" --quiet > "$run/nb_micro.txt" &
micro=$!
"${vq[@]}" fit-nb "$run" --map macro --out "$run/nb_macro.npz" --limit "$limit" --quiet > "$run/nb_macro.txt" &
macro=$!
wait "$micro"
wait "$macro"
cat "$run/nb_micro.txt" "$run/nb_macro.txt"
audio=/usr/share/sonic-pi/samples/loop_industrial.flac  # a held-out real recording for the parity check
[ -f "$audio" ] && parity=(--audio "$audio") || parity=()
"${vq[@]}" export "$run" --nb "$run/nb_table.npz" --nb-macro "$run/nb_macro.npz" --out presets/default_bundle "${parity[@]}"
dst=training/default_run
rm -rf "$dst" && mkdir -p "$dst"
cp "$run"/config.json "$run"/metrics.jsonl "$run"/summary.json "$run"/model.pt \
   "$run"/nb_table.eval.json "$run"/nb_macro.eval.json "$dst"/
# the progress bar's log, one line per refresh (carriage returns made newlines), last 400 lines
if [ -f "$run.log" ]; then tr '\r' '\n' < "$run.log" | grep -v '^\s*$' | tail -400 > "$dst/train.log"; fi
echo "default model: $dst, bundle: presets/default_bundle"
