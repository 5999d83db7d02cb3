"""The supervisor's rows: restarts and child states (writes), and the summary `stats` and `/health` show."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from core.store import write_tx
from core.store.db import format_ts, utcnow


def record_restart(conn: sqlite3.Connection, *, child: str, pid: int | None, reason: str, exit_code: int | None,
                   at: str, uptime: float, backoff: float | None, detail: str | None = None,
                   keep_days: float = 30.0) -> None:
    """`at` is when the supervisor saw the child end (the write itself may run later, on a thread)."""
    cutoff = format_ts(datetime.now(UTC) - timedelta(days=keep_days))
    with write_tx(conn):
        conn.execute(
            "INSERT INTO restarts (child, pid, reason, exit_code, at, uptime, backoff, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (child, pid, reason, exit_code, at, round(uptime, 3),
             None if backoff is None else round(backoff, 3), detail),
        )
        # Months unattended: keep the table bounded.
        conn.execute("DELETE FROM restarts WHERE at < ?", (cutoff,))


def record_state(conn: sqlite3.Connection, *, child: str, pid: int | None, state: str, started_at: str | None,
                 restarts: int, last_reason: str | None, supervisor_pid: int) -> None:
    with write_tx(conn):
        conn.execute(
            "INSERT INTO supervisor_children (child, pid, state, started_at, restarts, last_reason, supervisor_pid, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (child) DO UPDATE SET pid = excluded.pid, "
            "state = excluded.state, started_at = excluded.started_at, restarts = excluded.restarts, "
            "last_reason = excluded.last_reason, supervisor_pid = excluded.supervisor_pid, "
            "updated_at = excluded.updated_at",
            (child, pid, state, started_at, restarts, last_reason, supervisor_pid, utcnow()),
        )


def restart_summary(conn: sqlite3.Connection, *, recent: int = 5) -> dict[str, Any]:
    """Restarts in the last 24 h per child, the latest few, and each child's state."""
    since = format_ts(datetime.now(UTC) - timedelta(days=1))
    by_child = {row[0]: row[1] for row in conn.execute(
        "SELECT child, count(*) FROM restarts WHERE at >= ? GROUP BY child ORDER BY child", (since,))}
    rows = conn.execute(
        "SELECT child, pid, reason, exit_code, at, uptime, backoff FROM restarts ORDER BY id DESC LIMIT ?", (recent,))
    children = conn.execute(
        "SELECT child, pid, state, started_at, restarts, last_reason, updated_at FROM supervisor_children "
        "ORDER BY child")
    return {
        "total": conn.execute("SELECT count(*) FROM restarts").fetchone()[0],
        "last_24h": sum(by_child.values()),
        "last_24h_by_child": by_child,
        "recent": [dict(row) for row in rows],
        "children": [dict(row) for row in children],
    }
