"""Benchmark of history and trends: snapshot write cost, trends latency, storage.

    .venv/bin/python bench/trends.py                       # 1M items, 30 days, hourly crawls
    .venv/bin/python bench/trends.py --items 20000 --crawls-per-day 4   # a quick check

Builds a throw-away database (FTS triggers dropped: they are not what is measured)
with N models and `days` of change-only history at `crawls-per-day` crawls a day,
each changing `changed` (1%) of the counters: half from a hot set (the same busy
repos keep moving), half anywhere. Then measures:
  1. the snapshot hook's cost for one crawl (N items, 1% changed), page by page;
  2. recomputing the trend cache (what a hot sweep does after its pages);
  3. `trends` latency p50/p95 over a mix of windows, rankings and filters;
  4. bytes per snapshot row and storage per million items.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import trends as tr
from core.hub.records import RepoRecord
from core.kinds import Kind
from core.store import connect, write_tx
from core.store.items import PageChanges, Previous, StoredItem

PAGE = 1000


def build(conn, items: int, days: int, per_day: int, changed: float, now: int, rng: random.Random) -> int:
    for name in ("models_fts_insert", "models_fts_update", "models_fts_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    start = now - days * tr.DAY
    stamp = tr.iso(start).replace("Z", ".000Z")
    authors = [f"org{i}" for i in range(2000)]
    with write_tx(conn):
        conn.executemany(
            "INSERT INTO models (pk, id, name, author, downloads, likes, tags, raw, meta_hash, text_hash, "
            "first_seen, last_seen, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', '', '', ?, ?, ?)",
            ((pk, f"{authors[pk % 2000]}/m{pk}", f"m{pk}", authors[pk % 2000], rng.randrange(0, 5000),
              rng.randrange(0, 200), '["gguf"]' if pk % 10 == 0 else "[]", stamp, stamp, stamp)
             for pk in range(1, items + 1)),
        )
        conn.execute("INSERT INTO snapshots (kind, pk, at, downloads, likes) SELECT 1, pk, ?, downloads, likes "
                     "FROM models", (start,))
    current = dict(conn.execute("SELECT pk, downloads FROM models"))
    likes = dict(conn.execute("SELECT pk, likes FROM models"))
    hot = list(range(1, max(2, items // 100) + 1))
    per_crawl = max(1, int(items * changed))
    rows = 0
    crawls = days * per_day
    for c in range(1, crawls + 1):
        at = start + c * tr.DAY // per_day
        chosen = {rng.choice(hot) for _ in range(per_crawl // 2)} | {rng.randrange(1, items + 1)
                                                                      for _ in range(per_crawl // 2)}
        batch = []
        for pk in sorted(chosen):
            current[pk] += rng.randrange(1, 50)
            if rng.random() < 0.2:
                likes[pk] += 1
            batch.append((1, pk, at, current[pk], likes[pk]))
        with write_tx(conn):
            conn.executemany("INSERT OR REPLACE INTO snapshots (kind, pk, at, downloads, likes) "
                             "VALUES (?, ?, ?, ?, ?)", batch)
        rows += len(batch)
    with write_tx(conn):
        conn.executemany("UPDATE models SET downloads = ?, likes = ?, last_seen = ? WHERE pk = ?",
                         ((current[pk], likes[pk], tr.iso(now).replace("Z", ".000Z"), pk) for pk in current))
        conn.execute("INSERT OR REPLACE INTO trend_state (key, value) VALUES ('last_write', ?)", (now,))
    conn.execute("ANALYZE")
    return rows


def crawl_cost(conn, items: int, changed: float, now: int, rng: random.Random) -> dict:
    """One crawl's worth of hook calls: every page, `changed` of the items with new counters."""
    seen_at = tr.iso(now + 60).replace("Z", ".000Z")
    hook_seconds = 0.0
    tx_seconds = 0.0
    for first in range(1, items + 1, PAGE):
        changes = PageChanges(Kind.MODEL, seen_at)
        for pk in range(first, min(first + PAGE, items + 1)):
            if rng.random() < changed:
                record = RepoRecord(kind=Kind.MODEL, id=f"x/m{pk}", hub_oid=None, author="x", name=f"m{pk}",
                                    downloads=10**6 + pk, likes=pk)
                changes.updated.append(StoredItem(pk, record, Previous(0, 0, None, None, False),
                                                  meta_changed=False, counters_changed=True))
            else:
                changes.unchanged += 1
        t0 = time.perf_counter()
        with write_tx(conn):
            t1 = time.perf_counter()
            tr.snapshot_hook(conn, changes)
            hook_seconds += time.perf_counter() - t1
        tx_seconds += time.perf_counter() - t0
    return {"pages": (items + PAGE - 1) // PAGE, "hook_seconds": round(hook_seconds, 3),
            "hook_plus_commit_seconds": round(tx_seconds, 3)}


def storage(conn) -> dict:
    try:
        sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'snapshots%' "
                                  "OR name LIKE 'trend_cache%' GROUP BY name"))
    except Exception:  # dbstat not compiled in
        sizes = {}
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--crawls-per-day", type=int, default=24)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", help="keep the database here (default: a temp dir)")
    args = parser.parse_args()
    rng = random.Random(7)
    now = int(time.time()) // 3600 * 3600
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "bench.db"
        conn = connect(path)
        t0 = time.perf_counter()
        history_rows = build(conn, args.items, args.days, args.crawls_per_day, args.changed, now, rng)
        build_s = time.perf_counter() - t0
        total_rows = conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        sizes_before = storage(conn)

        t0 = time.perf_counter()
        cached = tr.refresh_cache(conn, now, kinds=(Kind.MODEL,))
        refresh_s = time.perf_counter() - t0
        sizes = storage(conn)

        mix = [dict(window=w, by=b) for w in ("24h", "7d", "30d") for b in ("downloads", "likes", "rising")]
        mix += [dict(window="7d", by="downloads", author="org42"), dict(window="24h", by="rising", tag="gguf")]
        latencies: list[float] = []
        for i in range(args.queries):
            query = tr.TrendQuery.parse(limit=20, **mix[i % len(mix)])
            t = time.perf_counter()
            tr._from_cache(conn, query)  # what trends() does when the cache is fresh
            latencies.append((time.perf_counter() - t) * 1000)
        latencies.sort()
        t = time.perf_counter()
        tr.trends(conn, tr.TrendQuery.parse(window="24h"), now=now)
        direct_24h = time.perf_counter() - t

        crawl = crawl_cost(conn, args.items, args.changed, now, rng)

        snap_bytes = sum(v for k, v in sizes_before.items() if k.startswith("snapshots"))
        per_row = snap_bytes / total_rows if snap_bytes else None
        report = {
            "items": args.items, "days": args.days, "crawls_per_day": args.crawls_per_day, "changed": args.changed,
            "snapshot_rows": total_rows, "history_rows": history_rows, "build_seconds": round(build_s, 1),
            "crawl_snapshot_cost": crawl,
            "cache_refresh_seconds_3_windows": round(refresh_s, 2), "cache_rows": cached,
            "trends_ms": {"p50": round(statistics.median(latencies), 2),
                          "p95": round(latencies[int(len(latencies) * 0.95) - 1], 2),
                          "max": round(latencies[-1], 2)},
            "direct_24h_seconds": round(direct_24h, 3),
            "bytes": sizes,
            "bytes_per_snapshot_row": round(per_row, 1) if per_row else None,
            "snapshot_mb_per_million_items": round(snap_bytes / args.items * 1e6 / 2**20, 1) if snap_bytes else None,
            "file_mb": round(path.stat().st_size / 2**20, 1),
        }
        conn.close()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
