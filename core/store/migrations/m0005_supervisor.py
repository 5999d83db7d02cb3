"""The supervisor's records: every restart of a child, and each child's current state."""

from __future__ import annotations

import sqlite3

from core.store.migrations import execute_script

_SCRIPT = """
CREATE TABLE restarts (
    id INTEGER PRIMARY KEY,
    child TEXT NOT NULL,             -- crawler | embedder | api
    pid INTEGER,                     -- the process that ended
    reason TEXT NOT NULL,            -- exited | heartbeat_stale | loop_stalled | health_failed | rss_cap | ...
    exit_code INTEGER,               -- negative: killed by that signal
    at TEXT NOT NULL,
    uptime REAL,                     -- seconds the process ran
    backoff REAL,                    -- seconds waited before the next start (NULL: gave up)
    detail TEXT
);
CREATE INDEX restarts_at ON restarts(at);
CREATE INDEX restarts_child ON restarts(child, at);

CREATE TABLE supervisor_children (
    child TEXT PRIMARY KEY,
    pid INTEGER,
    state TEXT NOT NULL,             -- starting | running | idle | backoff | stopped | gave_up
    started_at TEXT,
    restarts INTEGER NOT NULL DEFAULT 0,  -- since this supervisor started
    last_reason TEXT,
    supervisor_pid INTEGER,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
"""


def apply(conn: sqlite3.Connection) -> None:
    execute_script(conn, _SCRIPT)
