#!/usr/bin/env bash
# Install, lint and run the test suite (what CI runs). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
# pytest exits 5 when it collects nothing: that is a failure here too.
.venv/bin/python -m pytest -q "$@"
