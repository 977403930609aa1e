#!/usr/bin/env bash
# The test command (README, and .ci/run): set up what is missing, then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh train,dev
export VQBLUR_DATA="${VQBLUR_DATA:-$PWD/data}"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
