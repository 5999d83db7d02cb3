#!/usr/bin/env bash
# Offline demo: install, start the bundled fake Hub, mirror it, then show what was mirrored.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PY=.venv/bin/python
PORT="${FAKEHUB_PORT:-8765}"
export HF_ENDPOINT="${HF_ENDPOINT:-http://127.0.0.1:$PORT}"
export HF_HUB_OFFLINE=1

$PY main.py fakehub --port "$PORT" --models 20000 --datasets 5000 --spaces 5000 --papers 1000 &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    curl -fsS "$HF_ENDPOINT/api/models?limit=1" >/dev/null 2>&1 && break
    sleep 0.5
done

$PY main.py crawl
$PY main.py stats
