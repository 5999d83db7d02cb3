"""Digests: the periodic roll-up of `digest`-mode watches and the daily summary.

A digest covers a fixed set of outbox rows; the sender marks them `digested` in
the transaction that also records the digest time, after Telegram accepted the
message, so a crash can repeat a digest once but never drop one.

The daily summary ends with a trending section when `core.trends.digest_section(conn)`
exists (owned by the trends module): it returns plain text (or a list of lines),
or None to add nothing; it is escaped here.
"""

from __future__ import annotations

import importlib
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from core.alerts.message import Alert, Line, Span, digest_lines, item_url
from core.alerts.outbox import get_state, mark, pending, set_state
from core.kinds import REPO_KINDS
from core.store.db import format_ts

log = structlog.get_logger(__name__)

HOURLY_KEY = "digest:last_at"
DAILY_KEY = "daily:last_date"


@dataclass
class DigestMessage:
    lines: list[Line]
    ids: list[int] = field(default_factory=list)  # outbox rows it covers (marked `digested`)
    state: dict[str, str] = field(default_factory=dict)  # alert_state keys to move on delivery


def hourly_digest(conn: sqlite3.Connection, now: datetime, interval_seconds: float,
                  describe: dict[str, str] | None = None) -> DigestMessage | None:
    """The digest due now, if any. Quietly moves the clock on when there is nothing to say."""
    stamp = format_ts(now)
    last = get_state(conn, HOURLY_KEY)
    if last is None:
        set_state(conn, HOURLY_KEY, stamp)  # the first window starts now
        return None
    if stamp < format_ts(_parse(last) + timedelta(seconds=interval_seconds)):
        return None
    rows = pending(conn, "digest", limit=5000)
    if not rows:
        set_state(conn, HOURLY_KEY, stamp)
        return None
    # A release already announced on its own (an instant watch matched it too) is not news again.
    instant = _instant_identities(conn, rows)
    listed = [a for a in rows if (a.kind, a.item_id) not in instant]
    if not listed:
        mark(conn, [a.id for a in rows], "digested", stamp, state={HOURLY_KEY: stamp})
        return None
    minutes = round(interval_seconds / 60)
    window = f"in the last {minutes} min" if minutes < 120 else f"in the last {round(minutes / 60)} h"
    return DigestMessage(digest_lines(listed, window, describe), [a.id for a in rows], {HOURLY_KEY: stamp})


def _instant_identities(conn: sqlite3.Connection, rows: list[Alert]) -> set[tuple[str, str]]:
    ids = sorted({a.item_id for a in rows})
    found: set[tuple[str, str]] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found.update(conn.execute(
            f"SELECT kind, item_id FROM alert_outbox WHERE mode = 'instant' AND item_id IN "
            f"({','.join('?' * len(chunk))})", chunk).fetchall())
    return {(k, i) for k, i in found}


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def trends_section(conn: sqlite3.Connection) -> list[str]:
    try:
        module = importlib.import_module("core.trends")
    except ModuleNotFoundError as exc:
        if exc.name != "core.trends":
            raise
        return []
    section = getattr(module, "digest_section", None)
    if section is None:
        return []
    try:
        result = section(conn)
    except Exception as exc:  # a trends bug must not stop the digest
        log.warning("trends_digest_section_failed", error=str(exc))
        return []
    if not result:
        return []
    return result.splitlines() if isinstance(result, str) else [str(line) for line in result]


def daily_digest(conn: sqlite3.Connection, now: datetime, hour_utc: int | None,
                 describe: dict[str, str] | None = None) -> DigestMessage | None:
    if hour_utc is None:
        return None
    today = now.strftime("%Y-%m-%d")
    last = get_state(conn, DAILY_KEY)
    if last is None:
        set_state(conn, DAILY_KEY, today)  # first run: the first summary is tomorrow's
        return None
    if last >= today or now.hour < hour_utc:
        return None
    since = format_ts(now - timedelta(days=1))
    counts = conn.execute(
        "SELECT watch, count(DISTINCT kind || '/' || item_id) FROM alert_outbox WHERE created_at >= ? "
        "GROUP BY watch ORDER BY 2 DESC", (since,)).fetchall()
    top: list[tuple[int, int, str, str]] = []
    for kind in REPO_KINDS:
        top += [(likes, downloads, kind.value, item_id) for item_id, likes, downloads in conn.execute(
            f"SELECT o.item_id, max(t.likes), max(t.downloads) FROM alert_outbox o JOIN {kind.table} t "
            "ON t.id = o.item_id WHERE o.kind = ? AND o.created_at >= ? GROUP BY o.item_id "
            "ORDER BY 2 DESC, 3 DESC LIMIT 10", (kind.value, since))]
    top.sort(reverse=True)
    trends = trends_section(conn)
    if not counts and not trends:
        set_state(conn, DAILY_KEY, today)
        return None
    describe = describe or {}
    lines: list[Line] = [[Span(f"📅 Daily digest {today}", "bold")]]
    if counts:
        total = sum(n for _, n in counts)
        lines.append([Span(f"{total} matches in the last 24 h", "bold")])
        lines += [[Span(f"• {describe.get(w, w)}: {n}")] for w, n in counts[:15]]
    if top:
        lines.append([Span("Most liked so far", "bold")])
        for likes, downloads, kind, item_id in top[:10]:
            lines.append([Span("• "), Span(item_id, "link", item_url(kind, item_id)),
                          Span(f" — {likes} likes, {downloads} downloads")])
    if trends:
        lines.append([Span("Trending", "bold")])
        lines += [[Span(line)] for line in trends[:20]]
    lines.append([Span("daily summary", "italic")])
    return DigestMessage(lines, [], {DAILY_KEY: today})
