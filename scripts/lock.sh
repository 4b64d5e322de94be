#!/usr/bin/env bash
# Refresh the locked install sets from pyproject.toml; commit them with the dependency change.
#   bash scripts/lock.sh
#
#   requirements/lock-cpu.txt      the README / CI install: avs + the `dev` extra (tests, librosa, ruff)
#   requirements/lock-cluster.txt  cluster.yaml's nodes: the same set (same versions) + the `cluster` extra
#                                  (ray[default]: the head's dashboard and job-submission API)
#
# A lock pins every package (transitive ones too) at one exact version with its sha256 hashes, for CPython
# 3.11 on x86_64 Linux (manylinux_2_28), the platform of the README and CI. Users install it with plain pip
# (scripts/quickstart.sh); only this refresh needs uv, which it installs into a throw-away venv.
# `pip install -e .` with the ranges of pyproject.toml keeps working for projects that embed avs.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
TOOLS=$(mktemp -d)
trap 'rm -rf "$TOOLS"' EXIT
python3 -m venv "$TOOLS/venv"
"$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>/dev/null
compile() {  # compile OUT [uv options...]
  local out=$1
  shift
  "$TOOLS/venv/bin/uv" pip compile pyproject.toml --generate-hashes --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --index-url https://pypi.org/simple --no-header --quiet \
    --output-file "$out.new" "$@"
  {
    echo "# The tested install set of avs: every package at an exact version, with hashes."
    echo "# CPython 3.11, x86_64 Linux. Made by: bash scripts/lock.sh (do not edit by hand)."
    cat "$out.new"
  } > "$out"
  rm "$out.new"
  echo "wrote $out ($(grep -c '^[a-z0-9]' "$out") packages)"
}
compile requirements/lock-cpu.txt --extra dev
compile requirements/lock-cluster.txt --extra dev --extra cluster --constraint requirements/lock-cpu.txt
