"""Tasks: work the API asks for (a crawl, an index build) and a child process carries out."""

from __future__ import annotations

import sqlite3

from core.store.migrations import execute_script

_SCRIPT = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,              -- crawl | index_build
    params TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'queued',  -- queued | running | done | failed
    progress TEXT,
    result TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    worker_pid INTEGER,
    lease_until REAL
);
CREATE INDEX tasks_queue ON tasks(type, status);
"""


def apply(conn: sqlite3.Connection) -> None:
    execute_script(conn, _SCRIPT)
