#!/usr/bin/env bash
# Set up avs in ./.venv and run the main job (feature extraction) on generated demo data.
#   bash scripts/quickstart.sh          # then look at demo/features/
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# The locked, tested set of every package (requirements/lock-cpu.txt, hashes checked), then avs itself
# without resolving anything again. Refresh the lock with: bash scripts/lock.sh
# Every package comes as a wheel except the three PyPI has only as source (dcase-util, sed-eval,
# sed-scores-eval: the lock's `--no-binary` lines); pip builds those (~30 s) with the locked build tools of
# requirements/lock-build.txt, installed first, and --no-build-isolation, so nothing unlocked is fetched.
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pip==26.3"
.venv/bin/python -m pip install --quiet --require-hashes --only-binary :all: -r requirements/lock-build.txt
.venv/bin/python -m pip install --quiet --require-hashes --only-binary :all: --no-build-isolation \
  -r requirements/lock-cpu.txt
# (setuptools' notes about editable installs are for packaging maintainers, not for this terminal)
PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/avs demo-data demo
# Paper 000's features: log-mel + deltas, frames, CLIP embeddings of three encoders, zero-shot CLIP.
# No CLIP weights can be downloaded here, so the demo uses (seeded) random CLIP weights, explicitly, and
# 4 frames per clip instead of 12 to keep CLIP on a CPU quick.
.venv/bin/avs extract demo/tau --preset dcase2021-t1b --out demo/features --clip-random-weights --set video.n_frames=4
echo
echo "Done: feature sets in demo/features/*/ (logmel, frames, clip_*, zeroshot_*), errors in"
echo "demo/features/errors.parquet, counts and throughput in demo/features/run.json"
