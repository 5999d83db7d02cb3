"""What `stats` and `/stats` report: live counts, crawl history, queues."""

from __future__ import annotations

import sqlite3
from typing import Any

from core.alerts.outbox import outbox_stats
from core.kinds import ALL_KINDS
from core.supervision.records import restart_summary


def live_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        kind.plural: conn.execute(f"SELECT count(*) FROM {kind.table} WHERE deleted_at IS NULL").fetchone()[0]
        for kind in ALL_KINDS
    }


def last_crawls(conn: sqlite3.Connection) -> dict[str, dict[str, Any] | None]:
    crawls: dict[str, dict[str, Any] | None] = {}
    for kind in ALL_KINDS:
        row = conn.execute(
            "SELECT mode, started_at, finished_at, pages, requests, new, updated, unchanged, deleted, errors, "
            "status FROM crawl_history WHERE kind = ? ORDER BY id DESC LIMIT 1",
            (kind.value,),
        ).fetchone()
        crawls[kind.plural] = dict(row) if row else None
    return crawls


def crawls_in_progress(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT kind, mode, started_at, pages, new, updated, unchanged FROM crawl_state")
    return [dict(row) for row in rows]


def embed_queue(conn: sqlite3.Connection) -> dict[str, int]:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE parked = 0), count(*) FILTER (WHERE parked = 1) FROM embed_jobs"
    ).fetchone()
    return {"pending": row[0], "parked": row[1]}


def collect_stats(conn: sqlite3.Connection) -> dict[str, Any]:
    counts = live_counts(conn)
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "last_crawl": last_crawls(conn),
        "in_progress": crawls_in_progress(conn),
        "embed_queue": embed_queue(conn),
        "restarts": restart_summary(conn),  # the daemon's supervisor: child restarts and states
        "alerts": outbox_stats(conn),  # alert outbox: pending / sent / digested / failed
    }
