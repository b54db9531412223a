#!/usr/bin/env bash
# The test command: lint, type-check, then the test suite (offline, as CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -q -m "not browser" "$@"
# The real-browser tests drive a Streamlit server through Playwright and Chromium; on a loaded machine a
# click can land during a Streamlit rerun and time out. A failed browser test gets one more run (only
# the failed ones), so a timing race does not fail CI while a real defect still fails twice.
.venv/bin/python -m pytest -q -m browser "$@" || .venv/bin/python -m pytest -q -m browser --lf "$@"
