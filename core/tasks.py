"""The task table: the API records work, a child process claims and runs it.

A claim is a lease: a worker killed mid-task stops renewing it, and the task is
claimed again once the lease runs out, so tasks survive any restart.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from core.store import write_tx
from core.store.db import utcnow

TASK_TYPES = ("crawl", "index_build")
LEASE_SECONDS = 60.0


@dataclass
class Task:
    id: int
    type: str
    params: dict[str, Any]
    status: str
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _task(row: sqlite3.Row) -> Task:
    return Task(row["id"], row["type"], _loads(row["params"]) or {}, row["status"], _loads(row["progress"]),
                _loads(row["result"]), row["error"], row["created_at"], row["started_at"], row["finished_at"])


def create_task(conn: sqlite3.Connection, task_type: str, params: dict[str, Any] | None = None) -> Task:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task type {task_type!r}")
    with write_tx(conn):
        cursor = conn.execute(
            "INSERT INTO tasks (type, params, created_at) VALUES (?, ?, ?)",
            (task_type, json.dumps(params or {}), utcnow()),
        )
    task = get_task(conn, int(cursor.lastrowid or 0))
    assert task is not None
    return task


def get_task(conn: sqlite3.Connection, task_id: int) -> Task | None:
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return _task(row) if row else None


def list_tasks(conn: sqlite3.Connection, *, status: str | None = None, limit: int = 100) -> list[Task]:
    if status:
        rows = conn.execute("SELECT * FROM tasks WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit))
    else:
        rows = conn.execute("SELECT * FROM tasks ORDER BY id DESC LIMIT ?", (limit,))
    return [_task(row) for row in rows]


def claim_task(conn: sqlite3.Connection, task_type: str, lease_seconds: float = LEASE_SECONDS) -> Task | None:
    """Atomically take the oldest queued task of a type, or one whose worker died."""
    now = time.time()
    with write_tx(conn):
        row = conn.execute(
            "UPDATE tasks SET status = 'running', started_at = coalesce(started_at, ?), worker_pid = ?, "
            "lease_until = ? WHERE id = (SELECT id FROM tasks WHERE type = ? AND "
            "(status = 'queued' OR (status = 'running' AND lease_until < ?)) ORDER BY id LIMIT 1) RETURNING *",
            (utcnow(), os.getpid(), now + lease_seconds, task_type, now),
        ).fetchone()
    return _task(row) if row else None


def report_progress(conn: sqlite3.Connection, task_id: int, progress: dict[str, Any],
                    lease_seconds: float = LEASE_SECONDS) -> None:
    """Record progress and renew the lease."""
    with write_tx(conn):
        conn.execute("UPDATE tasks SET progress = ?, lease_until = ? WHERE id = ? AND status = 'running'",
                     (json.dumps(progress), time.time() + lease_seconds, task_id))


def finish_task(conn: sqlite3.Connection, task_id: int, *, result: dict[str, Any] | None = None,
                error: str | None = None) -> None:
    with write_tx(conn):
        conn.execute(
            "UPDATE tasks SET status = ?, result = ?, error = ?, finished_at = ?, lease_until = NULL WHERE id = ?",
            ("failed" if error else "done", json.dumps(result) if result is not None else None, error, utcnow(),
             task_id),
        )
