#!/usr/bin/env bash
# Install avs into ./.venv from a locked, tested set of packages (hashes checked), then avs itself without
# resolving anything again. One profile per kind of machine; faiss-cpu and faiss-gpu share the `faiss` module, so
# a profile holds exactly one of them.
#
#   bash scripts/install.sh            # cpu: requirements/lock-cpu.txt (laptops, CI, CPU-only nodes)
#   bash scripts/install.sh gpu        # gpu: requirements/lock-gpu.txt (CUDA machines: torch cu130, faiss-gpu
#                                      #      1.15.1, NVIDIA DALI 2.4 for CUDA 13.0, ray[default]); needs an
#                                      #      NVIDIA driver for CUDA 13 (>= 580) and x86_64 Linux
#   VENV=/opt/avs PYTHON=python3.11 bash scripts/install.sh gpu
#
# Refresh the locks after a dependency change with: bash scripts/lock.sh (and commit requirements/*.txt).
# Every package comes as a wheel except the three PyPI has only as source (dcase-util, sed-eval,
# sed-scores-eval: the locks' `--no-binary` lines); pip builds those (~30 s) with the locked build tools of
# requirements/lock-build.txt, installed first, and --no-build-isolation, so nothing unlocked is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-cpu}
case "$PROFILE" in
  cpu) LOCK=requirements/lock-cpu.txt ;;
  gpu) LOCK=requirements/lock-gpu.txt ;;
  *) echo "usage: bash scripts/install.sh [cpu|gpu]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# the locks hold CPython 3.11 wheels (x86_64 Linux): another Python would fail later with an obscure hash error
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "avs's locks are for Python 3.11; $VENV has $("$VENV/bin/python" -V). Use PYTHON=python3.11 (and a new VENV)." >&2
  exit 2
fi
other=$([ "$PROFILE" = cpu ] && echo faiss-gpu || echo faiss-cpu)
if "$VENV/bin/python" -m pip show --quiet "$other" 2>/dev/null; then  # switching profiles: never two faiss
  "$VENV/bin/python" -m pip uninstall --quiet --yes "$other"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip==26.3"
"$VENV/bin/python" -m pip install --quiet --require-hashes --only-binary :all: -r requirements/lock-build.txt
"$VENV/bin/python" -m pip install --quiet --require-hashes --only-binary :all: --no-build-isolation -r "$LOCK"
# (setuptools' notes about editable installs are for packaging maintainers, not for this terminal)
PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
echo "avs installed in $VENV ($PROFILE profile: $LOCK)"
