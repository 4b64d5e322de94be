#!/usr/bin/env bash
# Set up avs in ./.venv and run the main job (feature extraction) on generated demo data.
#   bash scripts/quickstart.sh          # then look at demo/features/
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/avs demo-data demo
.venv/bin/avs extract demo/tau --preset dcase2021-t1b --out demo/features
echo
echo "Done: features in demo/features/logmel/, errors in demo/features/errors.parquet, summary in demo/features/run.json"
