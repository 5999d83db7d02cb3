"""What `/health` reports: real state, judged check by check.

`health(conn, config)` runs every check in `CHECKS` and returns a report whose `status` is
the worst of them: `ok`, `degraded` (still 200: something deserves a look) or `unhealthy`
(503: the mirror is not doing its job). Another part of the system adds a check with
`register_check(name, fn)` where `fn(conn, config) -> Check`; a check that raises is itself
reported as unhealthy, so a broken check can never make `/health` lie.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from core.api.db import table_exists
from core.config import Config
from core.kinds import ALL_KINDS
from core.store.db import parse_ts

log = structlog.get_logger(__name__)

OK, DEGRADED, UNHEALTHY = "ok", "degraded", "unhealthy"
_RANK = {OK: 0, DEGRADED: 1, UNHEALTHY: 2}
STALE_CRAWL_FACTOR = 3.0  # a kind not crawled for this many crawl intervals is stale
ALERT_BACKLOG_SECONDS = 3600.0  # an instant alert pending longer than this means the sender is stuck
INDEX_LAG_ITEMS = 50_000  # vectors computed but not yet searchable
QUEUE_COUNT_CAP = 10_000  # embedding queue counts stop here (then reported as a lower bound)


@dataclass
class Check:
    status: str
    detail: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


CheckFn = Callable[[sqlite3.Connection, Config], Check]


def _age_seconds(ts: str | None) -> float | None:
    if not ts:
        return None
    return max(0.0, (datetime.now(UTC) - parse_ts(ts)).total_seconds())


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def supervisor_running(conn: sqlite3.Connection) -> bool:
    """Whether a daemon is supervising children now (then stale crawls are its failure, not a choice)."""
    if not table_exists(conn, "supervisor_children"):
        return False
    pids = {row[0] for row in conn.execute("SELECT DISTINCT supervisor_pid FROM supervisor_children")}
    return any(_pid_alive(pid) for pid in pids)


def check_database(conn: sqlite3.Connection, config: Config) -> Check:
    conn.execute("SELECT count(*) FROM crawl_history").fetchone()
    return Check(OK, {"path": str(config.db_path)})


def check_crawls(conn: sqlite3.Connection, config: Config) -> Check:
    limit = STALE_CRAWL_FACTOR * config.crawl_interval_hours * 3600
    daemon = supervisor_running(conn)
    check = Check(OK)
    running = {row["kind"] for row in conn.execute("SELECT kind FROM crawl_state")}
    for kind in ALL_KINDS:
        last = conn.execute(
            "SELECT finished_at, status FROM crawl_history WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind.value,)
        ).fetchone()
        ok_row = conn.execute(
            "SELECT finished_at FROM crawl_history WHERE kind = ? AND status IN ('ok', 'limited') "
            "ORDER BY id DESC LIMIT 1", (kind.value,)
        ).fetchone()
        age = _age_seconds(ok_row["finished_at"]) if ok_row else None
        check.detail[kind.plural] = {
            "last_success_age_seconds": None if age is None else round(age),
            "last_status": last["status"] if last else None,
            "in_progress": kind.value in running,
        }
        if age is None and kind.value not in running:
            check.problems.append(f"{kind.plural}: never crawled")
            check.status = max(check.status, DEGRADED, key=_RANK.__getitem__)
        elif age is not None and age > limit and kind.value not in running:
            check.problems.append(f"{kind.plural}: last successful crawl {age / 3600:.1f} h ago")
            check.status = max(check.status, UNHEALTHY if daemon else DEGRADED, key=_RANK.__getitem__)
        if last and last["status"] == "failed":
            check.problems.append(f"{kind.plural}: last crawl failed")
            check.status = max(check.status, DEGRADED, key=_RANK.__getitem__)
    return check


def check_embedding(conn: sqlite3.Connection, config: Config) -> Check:
    # Counts capped at QUEUE_COUNT_CAP: an exact count of a million queued jobs cost 40 ms idle and up to
    # a second under load, and the supervisor probes /health with a short timeout while the API is busy.
    # Past the cap the figure is a lower bound (`queue_counts_capped`), which is all a depth check needs.
    pending, parked = (conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM embed_jobs WHERE parked = ? LIMIT ?)", (flag, QUEUE_COUNT_CAP + 1)
    ).fetchone()[0] for flag in (0, 1))
    capped = pending > QUEUE_COUNT_CAP or parked > QUEUE_COUNT_CAP
    check = Check(OK, {"queue_pending": min(pending, QUEUE_COUNT_CAP), "queue_parked": min(parked, QUEUE_COUNT_CAP),
                       "queue_counts_capped": capped})
    if parked:
        check.status = DEGRADED
        more = "+" if parked > QUEUE_COUNT_CAP else ""
        check.problems.append(f"{min(parked, QUEUE_COUNT_CAP)}{more} embedding jobs parked after repeated failures")
    return check


def check_index(conn: sqlite3.Connection, config: Config) -> Check:
    from core.embedder import index_dir
    from core.vectorindex import IndexStore

    meta = IndexStore(index_dir(config)).read_meta()
    latest = conn.execute("SELECT max(seq) FROM index_log").fetchone()[0] if table_exists(conn, "index_log") else None
    if meta is None:
        embedded = table_exists(conn, "embeddings") and \
            conn.execute("SELECT 1 FROM embeddings LIMIT 1").fetchone() is not None
        check = Check(OK, {"built": False, "vectors_exist": embedded})
        if embedded:
            check.status = DEGRADED
            check.problems.append("vectors exist but no index is built: semantic search is unavailable")
        return check
    lag = max((latest or 0) - meta.log_seq, 0)
    check = Check(OK, {"built": True, "count": meta.count, "updated_at": meta.updated_at,
                       "age_seconds": round(_age_seconds(meta.updated_at) or 0), "pending_changes": lag})
    if lag > INDEX_LAG_ITEMS:
        check.status = DEGRADED
        check.problems.append(f"index is {lag} changes behind the embeddings")
    return check


def check_alerts(conn: sqlite3.Connection, config: Config) -> Check:
    if not table_exists(conn, "alert_outbox"):
        return Check(OK, {"enabled": False})
    row = conn.execute(
        "SELECT count(*), min(created_at) FILTER (WHERE mode = 'instant'), "
        "(SELECT count(*) FROM alert_outbox WHERE status = 'failed') FROM alert_outbox WHERE status = 'pending'"
    ).fetchone()
    oldest = _age_seconds(row[1])
    check = Check(OK, {"pending": row[0], "failed": row[2],
                       "oldest_instant_age_seconds": None if oldest is None else round(oldest)})
    if oldest is not None and oldest > ALERT_BACKLOG_SECONDS:
        check.status = DEGRADED
        check.problems.append(f"an instant alert has waited {oldest / 60:.0f} min to be sent")
    return check


def check_children(conn: sqlite3.Connection, config: Config) -> Check:
    if not table_exists(conn, "supervisor_children"):
        return Check(OK, {"supervised": False})
    rows = [dict(row) for row in conn.execute(
        "SELECT child, pid, state, restarts, last_reason, supervisor_pid, updated_at FROM supervisor_children "
        "ORDER BY child")]
    daemon = any(_pid_alive(row["supervisor_pid"]) for row in rows)
    check = Check(OK, {"supervised": daemon, "children": {row.pop("child"): row for row in rows}})
    if not daemon:
        return check  # rows left by a daemon that has stopped: history, not state
    for name, row in check.detail["children"].items():
        if row["state"] == "gave_up":
            check.status = UNHEALTHY
            check.problems.append(f"{name}: the supervisor gave up restarting it ({row['last_reason']})")
        elif row["state"] in ("backoff", "stopped") and check.status == OK:
            check.status = DEGRADED
            check.problems.append(f"{name}: {row['state']} ({row['last_reason']})")
    return check


CHECKS: dict[str, CheckFn] = {
    "database": check_database,
    "crawl": check_crawls,
    "embedding_queue": check_embedding,
    "index": check_index,
    "alerts": check_alerts,
    "children": check_children,
}


def register_check(name: str, fn: CheckFn) -> None:
    CHECKS[name] = fn


def health(conn: sqlite3.Connection | None, config: Config, *, error: str | None = None) -> dict[str, Any]:
    """The report. `conn` None (with `error`) when the database could not even be opened."""
    started = time.perf_counter()
    checks: dict[str, Any] = {}
    problems: list[str] = []
    status = OK
    if conn is None:
        checks["database"] = {"status": UNHEALTHY, "error": error}
        problems.append(f"database: {error}")
        status = UNHEALTHY
    else:
        for name, fn in CHECKS.items():
            try:
                result = fn(conn, config)
            except (sqlite3.Error, OSError, ValueError, KeyError) as exc:
                log.warning("health_check_failed", check=name, error=str(exc))
                result = Check(UNHEALTHY, {"error": str(exc)}, [f"{name}: check failed: {exc}"])
            checks[name] = {"status": result.status, **result.detail}
            problems += result.problems
            status = max(status, result.status, key=_RANK.__getitem__)
    return {"status": status, "problems": problems, "checks": checks,
            "checked_in_ms": round((time.perf_counter() - started) * 1000, 1)}
