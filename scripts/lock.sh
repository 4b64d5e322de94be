#!/usr/bin/env bash
# Refresh the locked install sets from pyproject.toml; commit them with the dependency change.
#   bash scripts/lock.sh
#
#   requirements/lock-cpu.txt      the README / CI install: avs + the `dev` extra (tests, librosa, ruff)
#   requirements/lock-cluster.txt  cluster.yaml's head and CPU workers: the same set (same versions) + the
#                                  `cluster` extra (ray[default]: the head's dashboard and job-submission API)
#   requirements/lock-gpu.txt      the GPU profile (GPU machines, cluster.yaml's GPU workers): the same versions,
#                                  faiss-gpu instead of faiss-cpu, NVIDIA DALI (CUDA 13.0), ray[default]
#   requirements/lock-build.txt    what the locked source-only packages need to build (setuptools, Cython,
#                                  numpy), at the versions of lock-cpu.txt; installed before the lock
#
# A lock pins every package (transitive ones too) at one exact version with its sha256 hashes, for CPython
# 3.11 on x86_64 Linux (manylinux_2_28), the platform of the README and CI. Users install it with plain pip
# (scripts/quickstart.sh); only this refresh needs uv, which it installs into a throw-away venv.
# `pip install -e .` with the ranges of pyproject.toml keeps working for projects that embed avs.
#
# Every package is installed from a wheel except the few that PyPI has only as source (SDISTS below): the
# locks carry pip's options `--only-binary :all:` and then `--no-binary NAME` for each of SDISTS (in that order: a later
# `--only-binary :all:` would cancel the exception), and the locks are resolved with the same rule, so a new
# source-only dependency stops this script with uv's "has no usable wheels" naming it: add it to SDISTS if
# it builds with the tools of lock-build.txt. quickstart.sh installs lock-build.txt first and builds the
# source packages with --no-build-isolation, so their build uses only locked, hash-checked tools.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
# Locked packages with no wheel on PyPI (checked with uv --only-binary :all:): pure Python (dcase-util,
# sed-eval) or Cython + numpy (sed-scores-eval).
SDISTS=dcase-util,sed-eval,sed-scores-eval
BUILD_TOOLS=(setuptools Cython numpy)  # sed-scores-eval's [build-system] requires, less `wheel` (setuptools has it)
TOOLS=$(mktemp -d)
trap 'rm -rf "$TOOLS"' EXIT
python3 -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>/dev/null
binary_rule=(--only-binary :all:)
for name in ${SDISTS//,/ }; do binary_rule+=(--no-binary "$name"); done
compile() {  # compile OUT HEADER [uv options...]
  local out=$1 header=$2
  shift 2
  # the current lock as uv's preferences (uv keeps the versions of an existing output file where they still fit):
  # a refresh after one dependency change moves only what that change needs
  [ -f "$out" ] && cp "$out" "$out.new"
  "$TOOLS/venv/bin/uv" pip compile --generate-hashes --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple --no-header --quiet \
    "${binary_rule[@]}" --output-file "$out.new" "$@"
  {
    echo "# $header"
    echo "# CPython 3.11, x86_64 Linux. Made by: bash scripts/lock.sh (do not edit by hand)."
    echo "--only-binary :all:"
    for name in ${SDISTS//,/ }; do echo "--no-binary $name"; done  # one a line: uv reads no comma lists
    cat "$out.new"
  } > "$out"
  rm "$out.new"
  echo "wrote $out ($(grep -c '^[a-z0-9]' "$out") packages)"
}
compile requirements/lock-cpu.txt "The tested install set of avs: every package at an exact version, with hashes." \
  pyproject.toml --extra cpu --extra dev
compile requirements/lock-cluster.txt "The tested install set of avs: every package at an exact version, with hashes." \
  pyproject.toml --extra cpu --extra dev --extra cluster --constraint requirements/lock-cpu.txt
# The GPU profile: the CPU set's versions, faiss-gpu instead of faiss-cpu, DALI, and ray[default] (GPU workers of
# cluster.yaml and single GPU machines alike). Left out of the constraint: faiss-cpu (it must not come along) and
# packaging (DALI 2.4 caps it at <=26.3; the CPU set may have a newer one).
GPU_FREE='^(faiss-cpu|packaging)=='
awk -v free="$GPU_FREE" '/^[^ #]/ { skip = tolower($0) ~ free } !skip' requirements/lock-cpu.txt \
  > "$TOOLS/lock-cpu-no-faiss.txt"
compile requirements/lock-gpu.txt "The tested install set of avs on CUDA machines (GPU profile), with hashes." \
  pyproject.toml --extra gpu --extra dev --extra cluster --constraint "$TOOLS/lock-cpu-no-faiss.txt"
printf "%s\n" "${BUILD_TOOLS[@]}" | compile requirements/lock-build.txt \
  "Build tools of the source packages of lock-cpu.txt ($SDISTS), at its versions." - \
  --constraint requirements/lock-cpu.txt
