"""Trends: pure velocity/rising, snapshots through write_page, queries, retention, charts (no network)."""

from __future__ import annotations

import asyncio
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core import trends as tr
from core.charts import Series, line_chart, sparkline
from core.hub.records import parse_repo
from core.kinds import Kind
from core.store import connect, write_tx
from core.store.items import write_page
from core.trends import DAY, Point, TrendQuery

T0 = tr.epoch("2025-06-01T00:00:00.000Z")


def ts(seconds: int) -> str:
    return tr.iso(seconds).replace("Z", ".000Z")


def _model(repo_id: str, downloads: int = 0, likes: int = 0, tags: list[str] | None = None, **extra) -> dict:
    item = {"_id": "0" * 24, "id": repo_id, "likes": likes, "downloads": downloads, "tags": tags or [],
            "createdAt": "2025-01-01T00:00:00.000Z", "lastModified": "2025-01-01T00:00:00.000Z", "sha": "a" * 40}
    item.update(extra)
    return item


def crawl(conn: sqlite3.Connection, at: int, items: list[dict], kind: Kind = Kind.MODEL) -> None:
    with write_tx(conn):
        write_page(conn, kind, [parse_repo(kind, i) for i in items], ts(at), [tr.snapshot_hook])


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    return connect(tmp_path / "db.sqlite")


# -- pure -------------------------------------------------------------------------


def test_velocity_brackets_the_window() -> None:
    series = [Point(T0 - 10 * DAY, 100, 10), Point(T0 + DAY // 2, 600, 20)]
    v = tr.velocity(series, T0, T0 + DAY, last_seen=T0 + DAY)
    assert v is not None and not v.partial
    # The value before the window holds at its start; the change is spread over the window.
    assert v.downloads_per_day == pytest.approx(500) and v.likes_per_day == pytest.approx(10)
    assert v.span_days == pytest.approx(1)


def test_velocity_gaps_are_none_not_zero() -> None:
    # One sighting only: no second snapshot, no figure.
    assert tr.velocity([Point(T0 + 100, 5, 1)], T0, T0 + DAY, last_seen=T0 + 100) is None
    # Not looked at inside the window at all.
    assert tr.velocity([Point(T0 - 5 * DAY, 5, 1)], T0, T0 + DAY, last_seen=T0 - 4 * DAY) is None
    # Looked at inside the window and unchanged: an honest zero.
    zero = tr.velocity([Point(T0 - 5 * DAY, 5, 1)], T0, T0 + DAY, last_seen=T0 + 3600)
    assert zero is not None and zero.downloads_per_day == 0 and zero.span_days == pytest.approx(1 / 24)
    # No history at all.
    assert tr.velocity([], T0, T0 + DAY) is None


def test_velocity_first_seen_inside_window_is_partial() -> None:
    v = tr.velocity([Point(T0 + 12 * 3600, 0, 0), Point(T0 + 18 * 3600, 300, 6)], T0, T0 + DAY,
                    last_seen=T0 + 18 * 3600)
    assert v is not None and v.partial
    assert v.downloads_per_day == pytest.approx(1200) and v.likes_per_day == pytest.approx(24)


def test_velocity_of_a_past_window_ignores_later_rows() -> None:
    series = [Point(T0 - DAY, 0, 0), Point(T0 + 3600, 100, 1), Point(T0 + 3 * DAY, 9999, 99)]
    v = tr.velocity(series, T0, T0 + DAY, last_seen=T0 + 3 * DAY)
    # A later change exists, so the value is only known up to the row that set it.
    assert v is not None and v.end.at == T0 + 3600 and v.end.downloads == 100


def test_rising_is_relative_and_smoothed() -> None:
    small = tr.rising_score(Point(0, 0, 1), Point(DAY, 0, 4))
    big = tr.rising_score(Point(0, 0, 2000), Point(DAY, 0, 3000))
    takeoff = tr.rising_score(Point(0, 0, 10), Point(DAY, 0, 60))
    assert big > small > 0
    assert takeoff > big
    assert tr.rising_score(Point(0, 100, 5), Point(DAY, 100, 5)) == 0


def test_parse_window_and_query() -> None:
    assert tr.parse_window("24h") == DAY and tr.parse_window("7d") == 7 * DAY and tr.parse_window("30D") == 30 * DAY
    for bad in ("", "7", "0d", "7w", "400d"):
        with pytest.raises(ValueError):
            tr.parse_window(bad)
    with pytest.raises(ValueError):
        TrendQuery.parse(kind="datasets", base_model="x/y")
    with pytest.raises(ValueError):
        TrendQuery.parse(kind="papers")
    with pytest.raises(ValueError):
        TrendQuery.parse(limit=0)


# -- through the store ---------------------------------------------------------------


def test_snapshots_are_change_only(conn: sqlite3.Connection) -> None:
    crawl(conn, T0, [_model("a/one", 10, 1), _model("a/two", 5, 0)])
    crawl(conn, T0 + 3600, [_model("a/one", 10, 1), _model("a/two", 5, 0)])
    crawl(conn, T0 + 7200, [_model("a/one", 50, 2), _model("a/two", 5, 0, tags=["new-tag"])])
    rows = conn.execute("SELECT m.id, s.at, s.downloads FROM snapshots s JOIN models m ON m.pk = s.pk "
                        "ORDER BY m.id, s.at").fetchall()
    # a/two's metadata changed but not its counters: no row.
    assert [tuple(r) for r in rows] == [("a/one", T0, 10), ("a/one", T0 + 7200, 50), ("a/two", T0, 5)]


def test_trends_rank_the_movers(conn: sqlite3.Connection) -> None:
    base = [_model(f"org/m{i}", 1000, 100, tags=["gguf"] if i % 2 else []) for i in range(10)]
    crawl(conn, T0 - 2 * DAY, base)
    moved = {"org/m3": (4000, 100), "org/m4": (1500, 900), "org/m7": (1100, 130)}
    now_items = [_model(i["id"], *moved.get(i["id"], (i["downloads"], i["likes"])), tags=i["tags"]) for i in base]
    crawl(conn, T0 - 3600, now_items)
    crawl(conn, T0, [*now_items, _model("late/newcomer", 50, 5)])  # seen once: no velocity

    def top(by: str, **kw) -> list[str]:
        return [r.id for r in tr.trends(conn, TrendQuery.parse(by=by, **kw), now=T0)]

    assert top("downloads") == ["org/m3", "org/m4", "org/m7"]
    assert top("likes") == ["org/m4", "org/m7"]
    assert set(top("rising")) == set(moved)
    assert top("downloads", tag="gguf") == ["org/m3", "org/m7"]
    assert top("downloads", author="nobody") == []
    rows = tr.trends(conn, TrendQuery.parse(by="downloads"), now=T0)
    assert rows[0].downloads == 4000 and rows[0].start_downloads == 1000
    # 3000 more over the 24 h window: from the value before it (held at its start) to the last look.
    assert rows[0].downloads_per_day == pytest.approx(3000)
    # The newcomer has no second snapshot: it never shows, whatever the ranking.
    assert "late/newcomer" not in top("rising") + top("likes")
    # A week earlier nothing had moved.
    assert top("downloads", window="24h") and tr.trends(conn, TrendQuery.parse(), now=T0 - 3 * DAY) == []


def test_base_model_filter(conn: sqlite3.Connection) -> None:
    crawl(conn, T0 - DAY, [_model("q/base"), _model("x/ft", 0, 0, tags=["base_model:q/base"]),
                           _model("y/other")])
    crawl(conn, T0, [_model("q/base", 10), _model("x/ft", 20, 0, tags=["base_model:q/base"]),
                     _model("y/other", 30)])
    ids = [r.id for r in tr.trends(conn, TrendQuery.parse(window="7d", base_model="q/base"), now=T0)]
    assert ids == ["x/ft"]


def test_cache_serves_and_refreshes(conn: sqlite3.Connection) -> None:
    import time

    now = int(time.time())
    crawl(conn, now - 7200, [_model("a/x", 10), _model("a/y", 10)])
    crawl(conn, now - 60, [_model("a/x", 20), _model("a/y", 10)])
    assert [r.id for r in tr.trends(conn, TrendQuery.parse())] == ["a/x"]
    assert tr.as_of(conn, Kind.MODEL, DAY) is not None
    crawl(conn, now - 30, [_model("a/x", 20), _model("a/y", 500)])  # the cache is now stale
    assert [r.id for r in tr.trends(conn, TrendQuery.parse())] == ["a/y", "a/x"]


def test_history_and_chart(conn: sqlite3.Connection) -> None:
    crawl(conn, T0, [_model("a/<odd>&name", 10, 1)])
    crawl(conn, T0 + DAY, [_model("a/<odd>&name", 90, 4)])
    found = tr.history(conn, "a/<odd>&name")
    assert found is not None and [p.downloads for p in found.points] == [10, 90]
    assert found.as_dict()["points"][1]["likes"] == 4
    assert tr.history(conn, "no/such") is None
    svg = tr.item_chart_svg(conn, "models", found.pk)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and "a/&lt;odd&gt;&amp;name" in svg
    assert len(root.findall("{http://www.w3.org/2000/svg}path")) == 2


def test_charts_are_well_formed_xml() -> None:
    for svg in (sparkline([]), sparkline([1, 5, 3], label='x"<y>'), line_chart([]),
                line_chart([Series("a & b", [(T0, 1)])]),
                line_chart([Series("dl", [(T0, 0), (T0 + 60, 1e6)]), Series("likes", [(T0, 3), (T0 + 60, 3)])],
                           title="<script>alert(1)</script>")):
        ET.fromstring(svg)
        assert "<script>" not in svg


def test_digest_section(conn: sqlite3.Connection) -> None:
    assert tr.digest_section(conn, now=T0) is None
    crawl(conn, T0 - 7200, [_model("a/x", 10, 1)])
    crawl(conn, T0 - 60, [_model("a/x", 900, 40)])
    text = tr.digest_section(conn, now=T0)
    assert text is not None and "a/x" in text and "likes/day" in text


# -- retention -----------------------------------------------------------------------


def _all(conn: sqlite3.Connection) -> list[Point]:
    return [Point(*r) for r in conn.execute("SELECT at, downloads, likes, trending_score FROM snapshots ORDER BY at")]


def test_compaction_keeps_what_it_promises(conn: sqlite3.Connection) -> None:
    now = T0
    crawl(conn, now - 500 * DAY, [_model("a/x", 0, 0)])
    pk = conn.execute("SELECT pk FROM models").fetchone()[0]
    # Back-dated history: a change every 6 hours for 500 days.
    rows = [(1, pk, now - 500 * DAY + i * 6 * 3600, i * 10, i, None) for i in range(1, 500 * 4)]
    with write_tx(conn):
        conn.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?)", rows)
    before = _all(conn)
    detail_cut = (now - 30 * DAY) // DAY * DAY
    result = tr.compact_history(conn, now=now)
    after = _all(conn)
    assert result["daily_deleted"] > 0 and result["weekly_deleted"] > 0
    # Full detail for the last 30 days.
    assert [p for p in after if p.at >= detail_cut] == [p for p in before if p.at >= detail_cut]
    # The value at every day boundary of the daily zone, every week boundary beyond it, is unchanged.
    weekly_cut = tr.epoch(result["weekly_before"])
    for day in range(weekly_cut, detail_cut + 1, DAY):
        assert tr.value_at(after, day) == tr.value_at(before, day)
    for week in range(weekly_cut - 20 * 7 * DAY, weekly_cut + 1, 7 * DAY):
        assert tr.value_at(after, week) == tr.value_at(before, week)
    # At most one row per day (daily zone) and per week (weekly zone).
    daily = [p.at // DAY for p in after if weekly_cut <= p.at < detail_cut]
    assert len(daily) == len(set(daily))
    weekly = [(p.at + 3 * DAY) // (7 * DAY) for p in after if p.at < weekly_cut]
    assert len(weekly) == len(set(weekly))
    # Velocity over a day-aligned 7-day window older than 30 days is exact.
    a = detail_cut - 10 * DAY
    assert tr.velocity(after, a, a + 7 * DAY) == tr.velocity(before, a, a + 7 * DAY)
    # Idempotent; the next day only the newly aged day is compacted.
    assert tr.compact_history(conn, now=now)["daily_deleted"] == 0
    assert tr.compact_history(conn, now=now + DAY)["daily_deleted"] == 3


def test_migration_seeds_a_baseline(tmp_path: Path) -> None:
    """A mirror that predates the snapshots table gets one row per live item at its last_seen."""
    from core.store.migrations import m0006_snapshots

    conn = connect(tmp_path / "db.sqlite")
    crawl(conn, T0, [_model("a/x", 7, 2)])
    with write_tx(conn):
        for table in ("snapshots", "trend_state", "trend_cache", "trend_cache_runs"):
            conn.execute(f"DROP TABLE {table}")
        m0006_snapshots.apply(conn)
    assert [tuple(r) for r in conn.execute("SELECT at, downloads, likes FROM snapshots")] == [(T0, 7, 2)]


def test_read_only_and_cached_filters(tmp_path: Path) -> None:
    import time

    conn = connect(tmp_path / "db.sqlite")
    now = int(time.time())
    crawl(conn, now - 7200, [_model("a/x", 10), _model("b/y", 10, tags=["base_model:q/base"]), _model("a/z", 10)])
    crawl(conn, now - 60, [_model("a/x", 20), _model("b/y", 90, tags=["base_model:q/base"]), _model("a/z", 15)])
    ro = sqlite3.connect(f"{(tmp_path / 'db.sqlite').as_uri()}?mode=ro", uri=True, isolation_level=None)
    ro.execute("PRAGMA query_only = 1")
    # Stale cache on a read-only connection: computed directly, nothing written.
    assert [r.id for r in tr.trends(ro, TrendQuery.parse(author="a"), refresh=False)] == ["a/x", "a/z"]
    assert not tr.cache_is_fresh(ro, Kind.MODEL, DAY)
    tr.refresh_cache(conn)
    assert tr.cache_is_fresh(ro, Kind.MODEL, DAY)
    assert [r.id for r in tr.trends(ro, TrendQuery.parse(author="a"), refresh=False)] == ["a/x", "a/z"]
    assert [r.id for r in tr.trends(ro, TrendQuery.parse(base_model="q/base"), refresh=False)] == ["b/y"]
    assert [r.id for r in tr.trends(ro, TrendQuery.parse(window="30d"), refresh=False)] == ["b/y", "a/x", "a/z"]


async def test_hot_sweep_reads_the_hot_listings(tmp_path: Path) -> None:
    """Against a minimal stand-in Hub (the full fake Hub is exercised in test_trends_e2e)."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from core.hub.client import HubClient

    counters = {"a/x": [10, 1], "a/y": [5, 0]}
    seen: list[str] = []

    async def listing(request: web.Request) -> web.Response:
        seen.append(f"{request.match_info['kind']}:{request.query.get('sort')}")
        if request.match_info["kind"] != "models":
            return web.json_response([])
        return web.json_response([_model(i, d, lk) for i, (d, lk) in counters.items()])

    app = web.Application()
    app.router.add_get("/api/{kind}", listing)
    async with TestServer(app) as server, HubClient(str(server.make_url(""))) as client:
        db = tmp_path / "db.sqlite"
        first = await tr.hot_sweep(client, db)
        counters["a/x"] = [500, 9]
        await asyncio.sleep(1.05)  # snapshots have one-second resolution
        second = await tr.hot_sweep(client, db)
    assert first["requests"] == 8 and first["new"] == 2
    assert sorted(set(seen)) == sorted({f"{k}:{s}" for k, sorts in (("models", tr.SWEEP_SORTS[Kind.MODEL]),
                                        ("datasets", tr.SWEEP_SORTS[Kind.DATASET]),
                                        ("spaces", tr.SWEEP_SORTS[Kind.SPACE])) for s in sorts})
    assert second["updated"] == 1 and "compaction" in first
    conn = connect(db)
    assert [r.id for r in tr.trends(conn, TrendQuery.parse())] == ["a/x"]
