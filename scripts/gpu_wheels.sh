#!/usr/bin/env bash
# Wheels for an offline GPU machine (the device tool's: Python 3.12 with CUDA torch 2.11, timm, numpy, scipy,
# scikit-learn and pyarrow preinstalled, no package index) to run ../shared/gpu/gpu_smoke.sh there:
# that script's own small set (--prepare-wheels, ~38 MB) plus `regex`, which open_clip imports when it loads
# and which that set lacks (without it every CLIP test and measurement on the GPU reports an import error).
#
#   bash scripts/gpu_wheels.sh          # -> .whl/ (git-ignored), ~39 MB: under the device tool's 64 MiB carry
#   then, on the device: run(command="bash .whl/gpu_smoke.sh", carry=[".whl"])  (the script reads .whl/*.whl)
#
# The script itself is copied into .whl/ too: only the repository travels to the device, not ../shared beside it.
#
# Left out on purpose: Ray (~80 MB), faiss-gpu (~135 MB), DALI (~200 MB) and librosa's numba / llvmlite (~47 MB)
# do not fit the carry; their steps and tests report "not available" / are not collected. The GPU tests import
# librosa only where they compare against it, so the CUDA ones run without it.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
smoke=${GPU_SMOKE:-../shared/gpu/gpu_smoke.sh}
[ -f "$smoke" ] || { echo "gpu_wheels.sh: $smoke not found (set GPU_SMOKE=path/to/gpu_smoke.sh)" >&2; exit 2; }
bash "$smoke" --prepare-wheels "$dest" | grep -v "^on the GPU machine\|^  (keep it out"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dest" regex
for want in av open_clip_torch soundfile librosa regex; do   # gpu_smoke.sh --prepare-wheels exits 0 even when pip failed
  compgen -G "$dest/${want}-*.whl" > /dev/null || { echo "gpu_wheels.sh: no $want wheel in $dest (download failed?)" >&2; exit 1; }
done
cp "$smoke" "$dest/gpu_smoke.sh"
echo "$(du -sh "$dest" | cut -f1) in $dest ($(ls "$dest"/*.whl | wc -l) wheels): carry it to the GPU machine"
