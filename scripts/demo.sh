#!/usr/bin/env bash
# The main job (README): render the bundled clip through the streaming engine on the shipped
# default model, with a knob automation; writes out/demo_*.wav + a spectrogram PNG and prints
# latency, real-time factor and energy per second of audio. No audio interface needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/vqblur demo --out out "$@"
