#!/usr/bin/env bash
# Offline demo: install, start the bundled fake Hub, mirror it, print stats, then run the daemon
# (crawler + embedding worker + API on http://127.0.0.1:8000) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
PY=.venv/bin/python
PORT="${FAKEHUB_PORT:-8765}"
export HF_ENDPOINT="${HF_ENDPOINT:-http://127.0.0.1:$PORT}"
export HF_HUB_OFFLINE=1

$PY main.py fakehub --port "$PORT" --models "${DEMO_MODELS:-20000}" --datasets 5000 --spaces 5000 --papers 1000 &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
    curl -fsS "$HF_ENDPOINT/api/models?limit=1" >/dev/null 2>&1 && break
    sleep 0.5
done

$PY main.py crawl
$PY main.py stats
if [ "${DEMO_NO_DAEMON:-}" = "1" ]; then
    exit 0
fi
echo
echo "Starting the daemon: search page http://127.0.0.1:8000/ui, API docs http://127.0.0.1:8000/docs"
echo "(the embedding worker fills the semantic index in the background; Ctrl-C stops everything)"
# In the background, so that a TERM sent to this script (a service manager, `timeout`) reaches the
# daemon too; Ctrl-C reaches it the same way (a script's background jobs ignore SIGINT).
$PY main.py daemon &
daemon_pid=$!
trap 'kill -TERM $daemon_pid 2>/dev/null || true' INT TERM
status=0
wait $daemon_pid || status=$?
if kill -0 $daemon_pid 2>/dev/null; then  # the wait was cut short by the signal: let the daemon finish
    wait $daemon_pid || status=$?
fi
exit $status
