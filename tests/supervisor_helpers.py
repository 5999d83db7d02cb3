"""Helpers for the supervisor and chaos tests: real supervisor processes, bounded waits, DB reads."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from tests.conftest import PROJECT_ROOT

T = TypeVar("T")

# Short intervals so a test sees a whole restart cycle in about a second.
FAST_WATCHDOG: dict[str, Any] = {
    "check_interval_seconds": 0.5,
    "heartbeat_interval_seconds": 0.5,
    "heartbeat_timeout_seconds": 1.0,
    "backoff_initial_seconds": 0.1,
    "backoff_cap_seconds": 0.8,
    "backoff_jitter": 0.2,
    "stable_seconds": 3,
    "max_restarts": 6,
    "restart_window_seconds": 60,
    "shutdown_grace_seconds": 5,
    "startup_timeout_seconds": 60,
}

# A supervisor over arbitrary child commands: argv = data_dir, config, then JSON [[name, [argv...], url?], ...].
DRIVER = """
import asyncio, json, sys
from core.config import load_config
from core.logs import configure_logging
from core.supervision.settings import load_settings
from core.supervisor import ChildSpec, Supervisor
config = load_config(sys.argv[1], sys.argv[2])
configure_logging(component="supervisor")
specs = [ChildSpec(*spec) for spec in json.loads(sys.argv[3])]
sys.exit(asyncio.run(Supervisor(config, load_settings(config), specs).run()))
"""


def write_config(path: Path, watchdog: dict[str, Any] | None = None, **extra: Any) -> Path:
    path.write_text(json.dumps({"watchdog": {**FAST_WATCHDOG, **(watchdog or {})}, **extra}), encoding="utf-8")
    return path


# A child that beats and serves /health with the status written in a file (default 200).
HEALTH_CHILD = """
import asyncio, os, sys
from pathlib import Path
from aiohttp import web
from core.supervision.heartbeat import RUNNING, Heartbeat
run_dir, port, status_file = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
beat = Heartbeat(run_dir / "web.heartbeat", 0.5)
beat.start()
beat.phase = RUNNING
async def health(request):
    status = int(status_file.read_text()) if status_file.exists() else 200
    return web.json_response({"status": "x", "checks": {"database": {"status": "ok"}}}, status=status)
async def main():
    asyncio.create_task(beat.tick_loop())
    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def idle_child(data_dir: Path, config: Path) -> list[str]:
    return [sys.executable, "-m", "core.supervision.child", "idle", "--data-dir", str(data_dir),
            "--config", str(config)]


def start_driver(data_dir: Path, config: Path, children: list[tuple[Any, ...]], log: Path,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # Logs go to a file, never to a pipe nobody reads.
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(data_dir), str(config), json.dumps(children)],
            cwd=PROJECT_ROOT, env={**(env or os.environ), "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def start_daemon(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py"), "daemon", *args],
                                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until `predicate` returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def db(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(data_dir / "prometheus.db", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def query(data_dir: Path, sql: str, *params: Any) -> list[sqlite3.Row]:
    if not (data_dir / "prometheus.db").exists():
        return []
    conn = db(data_dir)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        conn.close()


def child_states(data_dir: Path) -> dict[str, sqlite3.Row]:
    return {row["child"]: row for row in query(data_dir, "SELECT * FROM supervisor_children")}


def running_child(data_dir: Path, name: str, phase: str | None = None) -> int | None:
    """The child's pid once it beats (in `phase`, if given)."""
    try:
        beat = json.loads((data_dir / "run" / f"{name}.heartbeat").read_text())
    except (OSError, ValueError):
        return None
    pid = int(beat["pid"])
    if phase and beat["phase"] != phase:
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM, then SIGKILL: used in test cleanup so nothing is left behind whatever happened."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def kill_tree(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
