"""History and trends: counter snapshots, velocity, rising repos, hot sweep, retention, charts.

Model of the data. `snapshots` holds one row per item each time a crawl saw its
counters change (and when first seen): a step function, the value holding
until the next row, each change attributed to the crawl that saw it. The item
row's `last_seen` extends the last value to the last time we looked, which is
what makes "unchanged" distinguishable from "not looked at".

Velocity over a window [a, b] comes from the two observations that bracket it:
the last row at or before `a` (its value holds at `a`), or, for an item first
seen inside the window, its first row; and the last observation at or before
`b`. When those are the same instant there is no second observation and no
figure (None), never a made-up zero.

Note that the Hub's `downloads` is itself a rolling 30-day count, so
downloads/day here is the change of that count: positive while a repo gains
momentum, negative as it fades.
"""

from __future__ import annotations

import asyncio
import math
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import structlog

from core.kinds import REPO_KINDS, Kind, parse_kind
from core.store import write_tx
from core.store.db import insert_rows, parse_ts
from core.store.items import PageChanges

if TYPE_CHECKING:
    from core.hub.client import HubClient

log = structlog.get_logger(__name__)

DAY = 86_400
WEEK = 7 * DAY
WINDOWS: dict[str, int] = {"24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
BY_CHOICES = ("downloads", "likes", "rising")
# Smoothing priors for "rising": growth is measured as log((end + K) / (start + K)),
# so a repo must gain a fair multiple of K to register. 1 -> 4 likes scores
# ln(29/26) = 0.11, 2,000 -> 3,000 scores ln(3025/2025) = 0.40; 10 -> 60 likes
# (a small repo really taking off) scores ln(85/35) = 0.89.
LIKES_PRIOR = 25.0
DOWNLOADS_PRIOR = 500.0
# Retention: every row for DETAIL_DAYS, then the last row of each UTC day until
# DAILY_DAYS, then the last row of each week (weeks start on Monday).
DETAIL_DAYS = 30
DAILY_DAYS = 365
# The cache is recomputed when snapshots were written after it, or when it is this old;
# the long windows at most this often (see `cache_is_fresh`).
CACHE_MAX_AGE = 3600
_REFRESH_EVERY = {7 * DAY: 6 * 3600, 30 * DAY: DAY}
HOT_SWEEP_PAGE_SIZE = 1000
SWEEP_SORTS: dict[Kind, tuple[str, ...]] = {
    Kind.MODEL: ("trendingScore", "likes", "downloads"),
    Kind.DATASET: ("trendingScore", "likes", "downloads"),
    Kind.SPACE: ("trendingScore", "likes"),  # spaces have no download counts to sort by
}


# -- time helpers ---------------------------------------------------------------


def epoch(ts: str | datetime | int | float) -> int:
    if isinstance(ts, int | float):
        return int(ts)
    moment = parse_ts(ts) if isinstance(ts, str) else ts
    return int(moment.timestamp())


def iso(seconds: int | float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_window(text: str) -> int:
    """`24h`, `7d`, `30d` (or any `<n>h` / `<n>d` up to a year) to seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([hd])\s*", text.lower())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad window {text!r} (expected e.g. 24h, 7d, 30d)")
    seconds = int(match.group(1)) * (3600 if match.group(2) == "h" else DAY)
    if seconds > 365 * DAY:
        raise ValueError("window longer than a year")
    return seconds


def _kind(kind: Kind | str) -> Kind:
    result = kind if isinstance(kind, Kind) else parse_kind(kind)
    if not result.is_repo:
        raise ValueError("trends cover models, datasets and spaces")
    return result


# -- pure figures ---------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    at: int
    downloads: int
    likes: int
    trending_score: float | None = None


@dataclass(frozen=True)
class Velocity:
    downloads_per_day: float
    likes_per_day: float
    start: Point  # the value at the start of the measured span (at = span start)
    end: Point  # the value at its end (at = span end)
    partial: bool  # the span covers less than the window (first seen inside it)

    @property
    def span_days(self) -> float:
        return (self.end.at - self.start.at) / DAY

    @property
    def rising(self) -> float:
        return rising_score(self.start, self.end)


def growth(start: float, end: float, prior: float) -> float:
    """Smoothed relative growth: log((end + K) / (start + K))."""
    return math.log((max(end, 0) + prior) / (max(start, 0) + prior))


def rising_score(start: Point, end: Point) -> float:
    """Growth relative to size, per day of the measured span.

    Likes and downloads both count; a short span (a repo first seen inside the
    window) is scaled up like any rate, which is what makes new repos that take
    off show at once.
    """
    span = (end.at - start.at) / DAY
    if span <= 0:
        return 0.0
    likes = growth(start.likes, end.likes, LIKES_PRIOR)
    return (likes + growth(start.downloads, end.downloads, DOWNLOADS_PRIOR)) / span


def velocity_from_bracket(before: Point | None, first_in: Point | None, last_in: Point | None,
                          window_start: int, window_end: int, last_seen: int | None,
                          changed_after: bool) -> Velocity | None:
    """Velocity from the observations around a window.

    before: last row at or before the window start; first_in/last_in: first and
    last rows inside (start, end]; last_seen: the last time the item was looked
    at; changed_after: a row exists after the window end (then we cannot tell
    how long past `last_in` the value held).
    """
    if before is not None:
        start = Point(window_start, before.downloads, before.likes, before.trending_score)
        partial = False
    elif first_in is not None:
        start, partial = first_in, True
    else:
        return None
    last = last_in or before
    assert last is not None
    end_at = last.at
    if not changed_after and last_seen is not None:
        # Unchanged since `last` up to the last look: the value is known until then.
        end_at = max(end_at, min(last_seen, window_end))
    if end_at <= start.at:
        return None  # one observation only: no second snapshot, no figure
    days = (end_at - start.at) / DAY
    end = Point(end_at, last.downloads, last.likes, last.trending_score)
    return Velocity((end.downloads - start.downloads) / days, (end.likes - start.likes) / days, start, end, partial)


def velocity(points: Sequence[Point], window_start: int, window_end: int,
             last_seen: int | None = None) -> Velocity | None:
    """Velocity of one item's full (change-only, any order) series over [start, end]."""
    ordered = sorted(points, key=lambda p: p.at)
    before = next((p for p in reversed(ordered) if p.at <= window_start), None)
    inside = [p for p in ordered if window_start < p.at <= window_end]
    changed_after = any(p.at > window_end for p in ordered)
    return velocity_from_bracket(before, inside[0] if inside else None, inside[-1] if inside else None,
                                 window_start, window_end, last_seen, changed_after)


def value_at(points: Sequence[Point], moment: int) -> Point | None:
    """The step function: the last row at or before `moment`."""
    best = None
    for p in points:
        if p.at <= moment and (best is None or p.at > best.at):
            best = p
    return best


def resample(points: Sequence[Point], start: int, end: int, n: int, field: str = "downloads") -> list[float]:
    """n evenly spaced values of the step function (for sparklines); before the first row: the first value."""
    ordered = sorted(points, key=lambda p: p.at)
    if not ordered or n < 2:
        return []
    values = []
    for i in range(n):
        moment = start + (end - start) * i // (n - 1)
        point = value_at(ordered, moment) or ordered[0]
        values.append(float(getattr(point, field)))
    return values


# -- snapshots ------------------------------------------------------------------


def snapshot_hook(conn: sqlite3.Connection, changes: PageChanges) -> None:
    """Page hook: record counters of new items and of items whose counters changed.

    Runs inside the page's transaction. Papers are skipped: their upvotes are
    not part of the trends views.
    """
    if not changes.kind.is_repo:
        return
    code = changes.kind.code
    at = epoch(changes.seen_at)
    new_pks = changes.new_pks
    if new_pks is not None:
        # New rows hold the counters just written: copied in SQL, with no tuple to build and bind for each.
        conn.execute(
            f"INSERT OR REPLACE INTO snapshots (kind, pk, at, downloads, likes, trending_score) "
            f"SELECT ?, pk, ?, downloads, likes, trending_score FROM {changes.kind.table} WHERE pk BETWEEN ? AND ?",
            (code, at, *new_pks),
        )
    rows = [
        (code, item.pk, at, item.record.downloads, item.record.likes, item.record.trending_score)
        for item in changes.updated if item.counters_changed or item.previous is None
    ]
    if rows:
        # Two writes at the same second (a sweep right after a sync): the later value wins.
        insert_rows(conn, "INSERT OR REPLACE INTO snapshots (kind, pk, at, downloads, likes, trending_score)", rows)
    if new_pks is None and not rows:
        return
    conn.execute(
        "INSERT INTO trend_state (key, value) VALUES ('last_write', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        (at,),
    )


def item_series(conn: sqlite3.Connection, kind: Kind | str, pk: int) -> list[Point]:
    kind = _kind(kind)
    return [Point(*row) for row in conn.execute(
        "SELECT at, downloads, likes, trending_score FROM snapshots WHERE kind = ? AND pk = ? ORDER BY at",
        (kind.code, pk),
    )]


@dataclass
class History:
    id: str
    kind: Kind
    pk: int
    points: list[Point]
    last_seen: int | None
    deleted: bool

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "last_seen": iso(self.last_seen) if self.last_seen else None,
            "deleted": self.deleted,
            "points": [{"at": iso(p.at), "downloads": p.downloads, "likes": p.likes,
                        "trending_score": p.trending_score} for p in self.points],
        }


def find_item(conn: sqlite3.Connection, repo_id: str,
              kind: Kind | str | None = None) -> tuple[Kind, sqlite3.Row] | None:
    kinds = (_kind(kind),) if kind else REPO_KINDS
    for candidate in kinds:
        row = conn.execute(f"SELECT pk, id, last_seen, deleted_at FROM {candidate.table} WHERE id = ?",
                           (repo_id,)).fetchone()
        if row is not None:
            return candidate, row
    return None


def history(conn: sqlite3.Connection, repo_id: str, kind: Kind | str | None = None) -> History | None:
    """The counter series of one repo (by id; the first kind holding it when kind is None)."""
    found = find_item(conn, repo_id, kind)
    if found is None:
        return None
    found_kind, row = found
    return History(row["id"], found_kind, row["pk"], item_series(conn, found_kind, row["pk"]),
                   epoch(row["last_seen"]) if row["last_seen"] else None, row["deleted_at"] is not None)


# -- window computation and the cache -----------------------------------------------


@dataclass(frozen=True)
class Figures:
    pk: int
    velocity: Velocity

    def row(self, kind: Kind, window: int) -> tuple:
        v = self.velocity
        return (kind.code, window, self.pk, v.downloads_per_day, v.likes_per_day, v.rising,
                v.start.downloads, v.start.likes, v.end.downloads, v.end.likes, v.span_days, int(v.partial))


def compute_window(conn: sqlite3.Connection, kind: Kind, window: int, now: int) -> list[Figures]:
    """Velocity of every item with a counter row inside the window.

    Items with no row inside did not move (velocity 0) or were not looked at
    (None): neither is a mover, so they are not candidates.
    """
    a, b = now - window, now
    sql = f"""
    WITH cand AS (
        SELECT pk, min(at) AS first_in, max(at) AS last_in FROM snapshots
        WHERE kind = :k AND at > :a AND at <= :b GROUP BY pk
    ), brk AS (
        SELECT c.*, (SELECT p.at FROM snapshots p WHERE p.kind = :k AND p.pk = c.pk AND p.at <= :a
                     ORDER BY p.at DESC LIMIT 1) AS before_at
        FROM cand c
    )
    SELECT x.pk, x.first_in, x.last_in, x.before_at,
           s.downloads, s.likes, f.downloads, f.likes, e.downloads, e.likes, t.last_seen,
           EXISTS (SELECT 1 FROM snapshots y WHERE y.kind = :k AND y.pk = x.pk AND y.at > :b) AS later
    FROM brk x
    JOIN {kind.table} t ON t.pk = x.pk AND t.deleted_at IS NULL
    JOIN snapshots f ON f.kind = :k AND f.pk = x.pk AND f.at = x.first_in
    JOIN snapshots e ON e.kind = :k AND e.pk = x.pk AND e.at = x.last_in
    LEFT JOIN snapshots s ON s.kind = :k AND s.pk = x.pk AND s.at = x.before_at
    """
    out: list[Figures] = []
    for (pk, first_in, last_in, before_at, s_dl, s_likes, f_dl, f_likes, e_dl, e_likes,
         last_seen, later) in conn.execute(sql, {"k": kind.code, "a": a, "b": b}):
        before = Point(before_at, s_dl, s_likes) if before_at is not None else None
        v = velocity_from_bracket(before, Point(first_in, f_dl, f_likes), Point(last_in, e_dl, e_likes),
                                  a, b, epoch(last_seen) if last_seen else None, bool(later))
        if v is not None:
            out.append(Figures(pk, v))
    return out


_CACHE_COLUMNS = ("kind, win, pk, downloads_per_day, likes_per_day, rising, start_downloads, start_likes, "
                  "end_downloads, end_likes, span_days, partial")


def _last_write(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM trend_state WHERE key = 'last_write'").fetchone()
    return row[0] if row else 0


def refresh_cache(conn: sqlite3.Connection, now: int | None = None, kinds: Iterable[Kind] = REPO_KINDS,
                  windows: Iterable[int] = WINDOWS.values(), *, only_stale: bool = False) -> int:
    """Recompute the cached figures of the standard windows; returns rows written."""
    now = int(time.time()) if now is None else now
    through = _last_write(conn)
    written = 0
    for kind in kinds:
        for window in windows:
            if only_stale and cache_is_fresh(conn, kind, window, now):
                continue
            figures = compute_window(conn, kind, window, now)
            with write_tx(conn):
                conn.execute("DELETE FROM trend_cache WHERE kind = ? AND win = ?", (kind.code, window))
                conn.executemany(f"INSERT INTO trend_cache ({_CACHE_COLUMNS}) VALUES ({','.join('?' * 12)})",
                                 [f.row(kind, window) for f in figures])
                conn.execute("INSERT OR REPLACE INTO trend_cache_runs (kind, win, computed_at, through) "
                             "VALUES (?, ?, ?, ?)", (kind.code, window, now, through))
            written += len(figures)
    return written


def cache_is_fresh(conn: sqlite3.Connection, kind: Kind, window: int, now: int | None = None) -> bool:
    """Whether the cached figures can answer a query now.

    The 24 h window is recomputed after any new snapshot; the longer windows
    move slowly and cost more (a 30 d recompute reads a month of rows: ~50 s
    at 1M items), so they are recomputed at most every 6 h / 24 h.
    """
    now = int(time.time()) if now is None else now
    row = conn.execute("SELECT computed_at, through FROM trend_cache_runs WHERE kind = ? AND win = ?",
                       (kind.code, window)).fetchone()
    if row is None:
        return False
    age = now - row[0]
    max_age = max(CACHE_MAX_AGE, _REFRESH_EVERY.get(window, 0))
    return 0 <= age <= max_age and (row[1] >= _last_write(conn) or age < _REFRESH_EVERY.get(window, 0))


# -- queries ----------------------------------------------------------------------


@dataclass
class TrendRow:
    id: str
    kind: str
    author: str | None
    downloads: int
    likes: int
    downloads_per_day: float
    likes_per_day: float
    rising: float
    score: float
    trending_score: float | None
    span_days: float
    partial: bool
    start_downloads: int
    start_likes: int
    pk: int

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "pk"}
        for key in ("downloads_per_day", "likes_per_day", "rising", "score", "span_days"):
            data[key] = round(data[key], 4)
        return data


@dataclass
class TrendQuery:
    kind: Kind = Kind.MODEL
    window: int = DAY
    by: str = "downloads"
    author: str | None = None
    tag: str | None = None
    base_model: str | None = None
    limit: int = 20

    @classmethod
    def parse(cls, *, kind: str | None = None, window: str | None = None, by: str | None = None,
              author: str | None = None, tag: str | None = None, base_model: str | None = None,
              limit: int | str | None = None) -> TrendQuery:
        """Validate user input (CLI flags, query string); raises ValueError with a one-line reason."""
        parsed_kind = _kind(kind) if kind else Kind.MODEL
        if by is not None and by not in BY_CHOICES:
            raise ValueError(f"bad --by {by!r} (expected one of: {', '.join(BY_CHOICES)})")
        try:
            n = 20 if limit is None else int(limit)
        except ValueError as exc:
            raise ValueError(f"bad limit {limit!r}") from exc
        if not 1 <= n <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        if base_model and parsed_kind is not Kind.MODEL:
            raise ValueError("--base-model applies to models only")
        if window is not None and window not in WINDOWS:
            # Only the standard windows are cached; any other would scan history on each call.
            raise ValueError(f"bad window {window!r} (expected one of: {', '.join(WINDOWS)})")
        return cls(parsed_kind, WINDOWS[window or "24h"], by or "downloads", author or None, tag or None,
                   base_model or None, n)


_MEASURE = {"downloads": "downloads_per_day", "likes": "likes_per_day", "rising": "rising"}

def trends(conn: sqlite3.Connection, query: TrendQuery, now: int | float | str | None = None, *,
           refresh: bool = True) -> list[TrendRow]:
    """Top movers, best first; only items that moved (measure > 0) are listed.

    Without `now`: served from the cache of the standard windows, recomputed
    first when stale (or, with refresh=False, e.g. on a read-only connection,
    computed directly). With `now`: computed for the window ending then.
    """
    kind, window = query.kind, query.window
    if now is None and window in WINDOWS.values():
        at = int(time.time())
        if cache_is_fresh(conn, kind, window, at):
            return _from_cache(conn, query)
        if refresh:
            refresh_cache(conn, at, kinds=(kind,), windows=(window,))
            return _from_cache(conn, query)
        return _rank(conn, query, compute_window(conn, kind, window, at))
    at = int(time.time()) if now is None else epoch(now)
    return _rank(conn, query, compute_window(conn, kind, window, at))


def _filters(query: TrendQuery) -> tuple[str, list]:
    where = ["t.deleted_at IS NULL"]
    params: list = []
    if query.author:
        where.append("t.author = ? COLLATE NOCASE")
        params.append(query.author)
    if query.tag:
        where.append("EXISTS (SELECT 1 FROM json_each(t.tags) WHERE json_each.value = ?)")
        params.append(query.tag)
    if query.base_model:
        where.append("t.pk IN (SELECT child_pk FROM lineage WHERE base_id = ?)")
        params.append(query.base_model)
    return " AND ".join(where), params


def _from_cache(conn: sqlite3.Connection, query: TrendQuery) -> list[TrendRow]:
    measure = _MEASURE[query.by]
    where, params = _filters(query)
    # An author or a base model selects few repos: walk those (CROSS JOIN fixes the order,
    # the planner would otherwise walk the whole ranking and filter); else walk the ranking.
    table = query.kind.table
    source = (f"{table} t CROSS JOIN trend_cache c ON c.kind = ? AND c.win = ? AND c.pk = t.pk"
              if query.author or query.base_model else f"trend_cache c JOIN {table} t ON t.pk = c.pk")
    sql = (f"SELECT t.id, t.author, c.end_downloads, c.end_likes, c.downloads_per_day, c.likes_per_day, c.rising, "
           f"c.{measure}, t.trending_score, c.span_days, c.partial, c.start_downloads, c.start_likes, t.pk "
           f"FROM {source} "
           f"WHERE c.kind = ? AND c.win = ? AND c.{measure} > 0 AND {where} "
           f"ORDER BY c.{measure} DESC, t.id LIMIT ?")
    head = [query.kind.code, query.window] * (2 if query.author or query.base_model else 1)
    rows = conn.execute(sql, [*head, *params, query.limit])
    return [TrendRow(r[0], query.kind.value, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], bool(r[10]),
                     r[11], r[12], r[13]) for r in rows]


def _rank(conn: sqlite3.Connection, query: TrendQuery, figures: list[Figures]) -> list[TrendRow]:
    """Rank freshly computed figures; read-only (the filters run against the item rows)."""
    measure = _MEASURE[query.by]
    moving = {f.pk: f.velocity for f in figures if getattr(f.velocity, measure) > 0}
    if not moving:
        return []
    where, params = _filters(query)
    sql = (f"SELECT t.pk, t.id, t.author, t.trending_score FROM {query.kind.table} t "
           f"WHERE t.pk IN (SELECT value FROM json_each(?)) AND {where}")
    rows = []
    for pk, item_id, author, trending in conn.execute(sql, [orjson.dumps(list(moving)).decode(), *params]):
        v = moving[pk]
        rows.append(TrendRow(item_id, query.kind.value, author, v.end.downloads, v.end.likes, v.downloads_per_day,
                             v.likes_per_day, v.rising, getattr(v, measure), trending, v.span_days, v.partial,
                             v.start.downloads, v.start.likes, pk))
    rows.sort(key=lambda r: (-r.score, r.id))
    return rows[: query.limit]


def as_of(conn: sqlite3.Connection, kind: Kind, window: int) -> str | None:
    row = conn.execute("SELECT computed_at FROM trend_cache_runs WHERE kind = ? AND win = ?",
                       (kind.code, window)).fetchone()
    return iso(row[0]) if row else None


# -- retention ----------------------------------------------------------------------


def _compact_zone(conn: sqlite3.Connection, lo: int, hi: int, bucket: int, offset: int) -> int:
    """Keep the last row per item per bucket among rows with lo < at <= hi; one transaction per bucket.

    Buckets are (boundary, next boundary], boundaries where (at + offset) % bucket == 0,
    so the row kept is the value *at* the next boundary (`at <= t`, as velocity reads it).
    `hi` must be a boundary.
    """
    deleted = 0
    start = lo - (lo + offset) % bucket
    while start < hi:
        end = start + bucket
        with write_tx(conn):
            for kind in REPO_KINDS:
                cursor = conn.execute(
                    "DELETE FROM snapshots WHERE kind = ? AND at > ? AND at <= ? AND EXISTS ("
                    " SELECT 1 FROM snapshots later WHERE later.kind = snapshots.kind AND later.pk = snapshots.pk"
                    " AND later.at > snapshots.at AND later.at <= ?)",
                    (kind.code, max(start, lo), min(end, hi), end),
                )
                deleted += cursor.rowcount
        start = end
    return deleted


def _state(conn: sqlite3.Connection, key: str) -> int | None:
    row = conn.execute("SELECT value FROM trend_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _compaction_due(conn: sqlite3.Connection, now: int | None = None) -> bool:
    now = int(time.time()) if now is None else now
    return (_state(conn, "compacted_daily_until") or 0) < (now - DETAIL_DAYS * DAY) // DAY * DAY


def compact_history(conn: sqlite3.Connection, now: int | float | str | None = None) -> dict:
    """Retention: all rows for 30 days, then the last of each day to a year, then the last of each week.

    Keeping the last row of a bucket keeps the value at every bucket boundary
    exact (the step function), so velocities between day boundaries older than
    30 days, and between week boundaries older than a year, are unchanged.
    Each zone resumes where the previous run stopped, so a daily run only
    touches the day that just aged out.
    """
    started = time.monotonic()
    now_s = int(time.time()) if now is None else epoch(now)
    detail_cut = (now_s - DETAIL_DAYS * DAY) // DAY * DAY
    week_offset = 3 * DAY  # 1970-01-01 was a Thursday: +3 days puts week starts on Mondays
    weekly_cut = ((now_s - DAILY_DAYS * DAY + week_offset) // WEEK) * WEEK - week_offset
    first = conn.execute("SELECT min(at) FROM snapshots").fetchone()[0]
    first = detail_cut if first is None else first - 1  # zones are (lo, hi]
    daily_from = max(_state(conn, "compacted_daily_until") or first, weekly_cut)
    weekly_from = _state(conn, "compacted_weekly_until") or first
    daily = _compact_zone(conn, daily_from, detail_cut, DAY, 0) if daily_from < detail_cut else 0
    # The weekly zone's rows were compacted per day while they crossed the daily zone
    # (or, on a first run over old data, go straight to weekly: the last row of a week
    # is also the last of its last day, so the result is the same).
    weekly = _compact_zone(conn, weekly_from, weekly_cut, WEEK, week_offset) if weekly_from < weekly_cut else 0
    with write_tx(conn):
        for key, value in (("compacted_daily_until", detail_cut), ("compacted_weekly_until", weekly_cut)):
            conn.execute("INSERT INTO trend_state (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)", (key, value))
    result = {"daily_deleted": daily, "weekly_deleted": weekly, "detail_from": iso(detail_cut),
              "weekly_before": iso(weekly_cut), "seconds": round(time.monotonic() - started, 3)}
    log.info("history_compacted", **result)
    return result


# -- hot sweep ----------------------------------------------------------------------


async def hot_sweep(client: HubClient, db_path: Path | str, stop: asyncio.Event | None = None, *,
                    pages: int = 1) -> dict:
    """Re-read the first pages of the hottest listings, so counters of busy repos stay fresh.

    Incremental syncs walk lastModified, which a download or a like does not
    bump; the daily full sync covers the long tail. Cost: `pages` requests per
    (kind, sort): 8 per sweep at pages=1, through the caller's client and so
    inside its rate budget. Pages go through `write_page` with the standard
    hooks, so snapshots (and alerts) are recorded as for any crawl.
    """
    from core.crawler import standard_hooks
    from core.hub.records import EXPAND_FIELDS, ParseError, parse_repo
    from core.store import connect
    from core.store.db import utcnow
    from core.store.items import write_page

    started = time.monotonic()
    hooks = standard_hooks()
    result = {"requests": 0, "pages": 0, "new": 0, "updated": 0, "unchanged": 0, "errors": 0}
    conn = connect(db_path)

    def commit(kind: Kind, records: list) -> None:
        with write_tx(conn):
            changes = write_page(conn, kind, records, utcnow(), hooks)
        result["new"] += len(changes.new)
        result["updated"] += len(changes.updated)
        result["unchanged"] += changes.unchanged

    try:
        for kind in REPO_KINDS:
            for sort in SWEEP_SORTS[kind]:
                url: str | None = client.list_url(kind, sort=sort, limit=HOT_SWEEP_PAGE_SIZE,
                                                  expand=EXPAND_FIELDS[kind])
                for _ in range(pages):
                    if url is None or (stop is not None and stop.is_set()):
                        break
                    page = await client.get_page(url)
                    result["requests"] += 1
                    result["pages"] += 1
                    records = []
                    for obj in page.items:
                        try:
                            records.append(parse_repo(kind, obj))
                        except ParseError as exc:
                            result["errors"] += 1
                            log.warning("unparseable_item", kind=kind.value, error=str(exc))
                    await asyncio.to_thread(commit, kind, records)
                    url = page.next_url
        if stop is None or not stop.is_set():
            result["trend_rows"] = await asyncio.to_thread(refresh_cache, conn, only_stale=True)
            if _compaction_due(conn):
                # Retention rides on the sweep: once a day, only the day that just aged out.
                result["compaction"] = await asyncio.to_thread(compact_history, conn)
    finally:
        conn.close()
    result["seconds"] = round(time.monotonic() - started, 3)
    log.info("hot_sweep_finished", **result)
    return result


# -- for other parts: digest, charts ----------------------------------------------------


def digest_section(conn: sqlite3.Connection, *, limit: int = 5, now: int | float | str | None = None) -> str | None:
    """Top risers of the last 24 hours per kind, as plain text lines; None when nothing moved."""
    lines: list[str] = []
    for kind in REPO_KINDS:
        rows = trends(conn, TrendQuery(kind, DAY, "rising", limit=limit), now=now)
        for row in rows:
            parts = [f"+{row.likes_per_day:,.0f} likes/day"]
            if kind is not Kind.SPACE:
                parts.insert(0, f"{row.downloads_per_day:+,.0f} downloads/day")
            lines.append(f"{kind.plural:<8} {row.id}  ({', '.join(parts)}; {row.likes:,} likes)")
    if not lines:
        return None
    return "Rising in the last 24 hours:\n" + "\n".join(lines)


def item_chart_svg(conn: sqlite3.Connection, kind: Kind | str, pk: int) -> str:
    """Downloads and likes of one item over time, as an inline SVG (step lines, two axes)."""
    from core.charts import Series, line_chart

    kind = _kind(kind)
    row = conn.execute(f"SELECT id, last_seen FROM {kind.table} WHERE pk = ?", (pk,)).fetchone()
    points = item_series(conn, kind, pk)
    if row is not None and points and row["last_seen"]:
        # The last value held until we last looked: draw it to there.
        seen = epoch(row["last_seen"])
        if seen > points[-1].at:
            points.append(Point(seen, points[-1].downloads, points[-1].likes, points[-1].trending_score))
    series = [Series("likes", [(p.at, p.likes) for p in points], "#dc2626")]
    if kind is not Kind.SPACE:
        series.insert(0, Series("downloads (30 d)", [(p.at, p.downloads) for p in points], "#2563eb"))
    title = f"{row['id']}: downloads and likes" if row is not None else "history"
    return line_chart(series, title=title)


def sparkline_svg(conn: sqlite3.Connection, kind: Kind | str, pk: int, window: int, now: int | None = None,
                  field: str = "downloads") -> str:
    from core.charts import sparkline

    kind = _kind(kind)
    now = int(time.time()) if now is None else now
    values = resample(item_series(conn, kind, pk), now - window, now, 24, field)
    return sparkline(values, label=f"{field} over the window")
