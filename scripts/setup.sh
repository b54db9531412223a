#!/usr/bin/env bash
# Set up BubbleLens from nothing: a virtual environment in .venv with the package, its extras and the
# test tools. Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${BUBBLELENS_EXTRAS:-dev,app}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# torch is pinned: a CPU wheel of 2.13.0 is on this machine's disk; an unpinned torch pulls a CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[${EXTRAS}]"
echo "BubbleLens installed in .venv ($(.venv/bin/bubblelens --version))"
