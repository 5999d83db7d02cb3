"""Reading and marking the alert outbox, and the small alert_state table. Writes run in write_tx."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from core.alerts.message import Alert
from core.store import write_tx

_COLUMNS = "id, watch, mode, kind, item_id, sha, event, group_key, reason, payload, created_at"


def to_alert(row: sqlite3.Row | tuple) -> Alert:
    (id_, watch, mode, kind, item_id, sha, event, group, reason, payload, created) = tuple(row)
    return Alert(id=id_, watch=watch, mode=mode, kind=kind, item_id=item_id, event=event, reason=reason,
                 payload=orjson.loads(payload), sha=sha, group_key=group, created_at=created)


def pending(conn: sqlite3.Connection, mode: str, limit: int = 500) -> list[Alert]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert_outbox WHERE status = 'pending' AND mode = ? ORDER BY id LIMIT ?",
        (mode, limit),
    ).fetchall()
    return [to_alert(r) for r in rows]


def alerts_after(conn: sqlite3.Connection, last_id: int, modes: Sequence[str], limit: int = 50) -> list[Alert]:
    marks = ",".join("?" * len(modes))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert_outbox WHERE id > ? AND mode IN ({marks}) ORDER BY id LIMIT ?",
        (last_id, *modes, limit),
    ).fetchall()
    return [to_alert(r) for r in rows]


def alerts_for_watch(conn: sqlite3.Connection, watch: str, limit: int = 50) -> list[Alert]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alert_outbox WHERE watch = ? ORDER BY id DESC LIMIT ?", (watch, limit)
    ).fetchall()
    return [to_alert(r) for r in rows]


def recent_delivered(conn: sqlite3.Connection, keys: Sequence[str], since: str) -> dict[str, int]:
    if not keys:
        return {}
    marks = ",".join("?" * len(keys))
    rows = conn.execute(
        f"SELECT group_key, count(*) FROM alert_outbox WHERE group_key IN ({marks}) AND mode = 'instant' "
        "AND status IN ('sent', 'grouped') AND sent_at >= ? GROUP BY group_key",
        (*keys, since),
    ).fetchall()
    return {k: n for k, n in rows}


def max_id(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM alert_outbox").fetchone()[0]


def mark(conn: sqlite3.Connection, ids: Sequence[int], status: str, now: str, message_id: int | None = None,
         state: dict[str, str] | None = None) -> None:
    """Mark rows delivered (and optionally move state keys) in one transaction."""
    with write_tx(conn):
        conn.executemany(
            "UPDATE alert_outbox SET status = ?, sent_at = ?, message_id = ?, attempts = attempts + 1 "
            "WHERE id = ? AND status = 'pending'",
            [(status, now, message_id, i) for i in ids],
        )
        for key, value in (state or {}).items():
            _set(conn, key, value)


def record_failure(conn: sqlite3.Connection, ids: Sequence[int], error: str) -> None:
    with write_tx(conn):
        conn.executemany("UPDATE alert_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                         [(error[:500], i) for i in ids])


def mark_failed(conn: sqlite3.Connection, ids: Sequence[int], error: str, now: str) -> None:
    with write_tx(conn):
        conn.executemany(
            "UPDATE alert_outbox SET status = 'failed', last_error = ?, sent_at = ? WHERE id = ? "
            "AND status = 'pending'",
            [(error[:500], now, i) for i in ids],
        )


def get_state(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM alert_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO alert_state (key, value) VALUES (?, ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


def set_state(conn: sqlite3.Connection, key: str, value: str) -> None:
    with write_tx(conn):
        _set(conn, key, value)


def set_state_in_tx(conn: sqlite3.Connection, key: str, value: str) -> None:
    """For callers already inside write_tx."""
    _set(conn, key, value)


def outbox_stats(conn: sqlite3.Connection) -> dict[str, Any]:
    """For `stats` / `/stats`: how the outbox stands."""
    try:
        rows = conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status").fetchall()
        oldest = conn.execute(
            "SELECT min(created_at) FROM alert_outbox WHERE status = 'pending' AND mode = 'instant'"
        ).fetchone()[0]
    except sqlite3.OperationalError:  # the alerts migration has not run on this database
        return {}
    counts = {status: n for status, n in rows}
    return {
        "pending": counts.get("pending", 0),
        "sent": counts.get("sent", 0) + counts.get("grouped", 0),
        "digested": counts.get("digested", 0),
        "failed": counts.get("failed", 0),
        "oldest_pending_instant": oldest,
    }
