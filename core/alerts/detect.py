"""The page hook: match written items against the watches, queue alerts in the same transaction.

Because the outbox row commits with the repo row, a detection is never lost (the
repo is not marked seen without its alert) and never doubled (the dedup key is
UNIQUE, so the poll, the crawler and a Hub webhook seeing the same release all
land on one row).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import structlog

from core.alerts.rules import Watch, decide, group_key, item_time, paper_submitted_at
from core.alerts.watches import active_watches, register_watches
from core.hub.records import PaperRecord, RepoRecord
from core.kinds import Kind
from core.store.db import format_ts, parse_ts, utcnow
from core.store.items import PageChanges, StoredItem

log = structlog.get_logger(__name__)

# Hub timestamps may be truncated to the second (and clocks differ a little): a repo created
# within this many seconds before a watch was armed still counts as new for it.
ARM_GRACE_SECONDS = 2.0


def payload_of(record: RepoRecord | PaperRecord) -> dict[str, Any]:
    """The facts a message needs, frozen at detection (the row may change later)."""
    if isinstance(record, PaperRecord):
        return {
            "title": record.title,
            "authors": record.authors[:8],
            "published_at": record.published_at,
            "ai_keywords": record.ai_keywords[:8],
            "summary": (record.summary or "")[:400] or None,
        }
    return {
        "author": record.author,
        "pipeline_tag": record.pipeline_tag,
        "library_name": record.library_name,
        "sdk": record.sdk,
        "num_parameters": record.num_parameters,
        "quant_format": record.quant_format,
        "base_models": [[b.repo_id, b.relation] for b in record.base_models[:4]],
        "gated": record.gated,
        "license": record.license,
        "created_at": record.created_at,
        "last_modified": record.last_modified,
        "description": (record.description or "")[:400] or None,
        "tags": [t for t in record.tags if ":" not in t][:20],
    }


def _earlier(stamp: str, seconds: float) -> str:
    try:
        return format_ts(parse_ts(stamp) - timedelta(seconds=seconds))
    except ValueError:
        return stamp


def _too_old(record: RepoRecord | PaperRecord, earliest: str) -> bool:
    if type(record) is RepoRecord:  # `item_time` in short: a first mirror asks this a million times
        return (record.created_at or "") < earliest
    created = item_time(record)
    if not created:
        return True
    if isinstance(record, PaperRecord) and paper_submitted_at(record) is None:
        return created[:10] < earliest[:10]
    return created < earliest


def detect(conn: sqlite3.Connection, items: Sequence[StoredItem], watches: Sequence[Watch],
           armed: dict[str, str], now: str) -> int:
    """Queue the alerts `items` cause; returns how many new outbox rows were written."""
    if not watches or not items:
        return 0
    armed = {name: _earlier(stamp, ARM_GRACE_SECONDS) for name, stamp in armed.items()}
    earliest = min(armed.values())
    repo_watches: dict[tuple[Kind, str], list[Watch]] = {}
    for watch in watches:
        if watch.type == "repo" and watch.repo_kind is not None and watch.repo_id:
            repo_watches.setdefault((watch.repo_kind, watch.repo_id), []).append(watch)
    rows: list[tuple] = []
    for item in items:
        record = item.record
        # Most of a full crawl is older than every watch: skip it without matching.
        candidates: Sequence[Watch]
        if _too_old(record, earliest):
            if item.previous is None:
                continue
            candidates = repo_watches.get((record.kind, record.id), [])
        else:
            candidates = watches
        payload: str | None = None
        for watch in candidates:
            decision = decide(watch, armed[watch.name], record, item.previous)
            if decision is None:
                continue
            if payload is None:
                payload = orjson.dumps(payload_of(record)).decode()
            sha = getattr(record, "sha", None)
            hub_time = getattr(record, "last_modified", None) if decision.event == "commit" else item_time(record)
            rows.append((decision.key, watch.name, watch.mode, record.kind.value, record.id, sha, decision.event,
                         group_key(record), decision.reason, payload, hub_time, now))
    if not rows:
        return 0
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO alert_outbox (dedup_key, watch, mode, kind, item_id, sha, event, group_key, "
        "reason, payload, hub_time, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    written = conn.total_changes - before
    if written:
        log.info("alerts_queued", count=written, items=sorted({r[4] for r in rows})[:10])
    return written


def detection_hook(conn: sqlite3.Connection, changes: PageChanges) -> None:
    """`PageHook` run by `write_page` inside the page's transaction (see core.crawler.standard_hooks)."""
    items = [*changes.new, *(u for u in changes.updated if u.meta_changed)]
    if not items:
        return
    watches = active_watches()
    if not watches:
        return
    # A savepoint keeps an alerts bug from rolling back (and so stalling) the crawl's page:
    # the mirror keeps moving, the failure is logged loudly.
    conn.execute("SAVEPOINT alert_detection")
    try:
        armed = register_watches(conn, watches, utcnow())
        detect(conn, items, watches, armed, changes.seen_at)
    except Exception:
        conn.execute("ROLLBACK TO alert_detection")
        conn.execute("RELEASE alert_detection")
        log.exception("alert_detection_failed", kind=changes.kind.value, items=len(items))
        return
    conn.execute("RELEASE alert_detection")
