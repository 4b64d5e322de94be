#!/usr/bin/env bash
# Set up avs in ./.venv and run the main job (feature extraction) on generated demo data.
#   bash scripts/quickstart.sh          # then look at demo/features/
set -euo pipefail
cd "$(dirname "$0")/.."
# The locked, tested set of every package (requirements/lock-cpu.txt, hashes checked), then avs itself; the GPU
# profile is `bash scripts/install.sh gpu` (README: GPUs).
bash scripts/install.sh cpu
.venv/bin/avs demo-data demo
# Paper 000's features: log-mel + deltas, frames, CLIP embeddings of three encoders, zero-shot CLIP.
# No CLIP weights can be downloaded here, so the demo uses (seeded) random CLIP weights, explicitly, and
# 4 frames per clip instead of 12 to keep CLIP on a CPU quick.
.venv/bin/avs extract demo/tau --preset dcase2021-t1b --out demo/features --clip-random-weights --set video.n_frames=4
echo
echo "Done: feature sets in demo/features/*/ (logmel, frames, clip_*, zeroshot_*), errors in"
echo "demo/features/errors.parquet, counts and throughput in demo/features/run.json"
