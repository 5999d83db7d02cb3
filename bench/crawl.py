"""Crawl benchmark: full sync of a large fake Hub over loopback, then a rate-budgeted run.

    .venv/bin/python bench/crawl.py [--models 1000000] [--budget-quota 200 --budget-window 10 --budget-seconds 40]

Prints items/s end to end, crawler CPU seconds per 1M items, DB bytes per item, peak RSS of
the crawler, the same sync again over the unchanged mirror (the daemon's periodic full sync),
and for the budgeted run the achieved request rate as a share of the budget and the number of
429s. The fake Hub runs in its own process so the figures are the crawler's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import start_fakehub  # noqa: E402
from core.crawler import FULL, Crawler  # noqa: E402
from core.hub.client import HubClient  # noqa: E402
from core.kinds import Kind  # noqa: E402

# The original project's loop: one SELECT + INSERT per row, no FTS, no lineage, no change tracking.
BASELINE_ITEMS_PER_S = 26_000


def _crawl(env: dict[str, str]) -> tuple[dict, float, float, float, int]:
    """One `main.py crawl --mode full` of the models; (summary, wall s, user CPU s, system CPU s, peak RSS KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "crawl", "--type", "models", "--mode", "full",
                          "--json"], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (json.loads(out.stdout)["models"], wall, after.ru_utime - before.ru_utime,
            after.ru_stime - before.ru_stime, after.ru_maxrss)


def full_sync(models: int) -> None:
    """The first mirror of `models` into an empty data dir, then a re-sync of the unchanged Hub into it."""
    hub, url = start_fakehub(models=models)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PROMETHEUS_DATA_DIR": tmp, "HF_ENDPOINT": url}
        summary, wall, user, system, peak_rss = _crawl(env)
        db = Path(tmp) / "prometheus.db"
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        items = conn.execute("SELECT count(*) FROM models").fetchone()[0]
        conn.close()
        size = db.stat().st_size
        resync, resync_wall, resync_user, resync_system, _ = _crawl(env)
    hub.terminate()
    hub.wait()
    rate = items / wall
    print(f"full sync of {items:,} models ({summary['requests']} requests) in {wall:.1f} s")
    print(f"  items/s end to end      {rate:,.0f}   ({rate / BASELINE_ITEMS_PER_S:.2f}x the original's "
          f"{BASELINE_ITEMS_PER_S:,}; target >= 40,000)")
    print(f"  crawler CPU s per 1M    {(user + system) / items * 1e6:.1f}   (target <= 30; user "
          f"{user / items * 1e6:.1f}, system {system / items * 1e6:.1f})")
    print(f"  DB bytes per item       {size / items:,.0f}   (target <= 1,536, FTS included)")
    print(f"  crawler peak RSS        {peak_rss / 1024:.0f} MiB")
    print(f"re-sync of the unchanged mirror ({resync['unchanged']:,} unchanged, {resync['new']} new) in "
          f"{resync_wall:.1f} s: {items / resync_wall:,.0f} items/s, "
          f"{(resync_user + resync_system) / items * 1e6:.1f} CPU s per 1M")


async def _budgeted(url: str, seconds: float, tmp: str) -> tuple[float, float]:
    """Crawl for `seconds` through one paced client; (elapsed, seconds the pacer held requests back)."""
    client = HubClient(url)
    crawler = Crawler(Path(tmp) / "prometheus.db", client, page_size=100)
    task = asyncio.create_task(crawler.sync(Kind.MODEL, FULL))
    started = time.monotonic()
    await asyncio.sleep(seconds)
    crawler.request_stop()
    await task  # the page in flight still counts, so the clock runs until it is in
    elapsed = time.monotonic() - started
    await client.close()
    crawler.close()
    return elapsed, client.pacer.waited_seconds


def budgeted(quota: int, window: float, seconds: float) -> None:
    # Enough items that the crawl outlasts the measurement at 100 items a page.
    hub, url = start_fakehub(models=int(quota / window * seconds * 100 * 2),
                             extra=("--quota", str(quota), "--window", str(window)))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, held = asyncio.run(_budgeted(url, seconds, tmp))
    # The Hub's own count: every request it answered, and how many of those were 429s.
    with urllib.request.urlopen(f"{url}/_fake/admin/stats") as response:
        stats = json.load(response)
    hub.terminate()
    hub.wait()
    accepted = stats["request_count"] - stats["rate_limited_count"]
    # The budget is the quota's rate over the run: `quota` calls per `window` seconds of it. The
    # Hub's first window opened as it began to listen, just before the crawl, so the run's windows
    # line up with the Hub's; a partial window at either end counts for the part the run spent in it.
    budget = quota / window * elapsed
    print(f"budgeted crawl: quota {quota} per {window:g} s for {elapsed:.1f} s "
          f"(load average {load_before:.1f} -> {os.getloadavg()[0]:.1f})")
    print(f"  requests {accepted}, budget {budget:.0f}: {accepted / budget:.1%} of the budget (target >= 95%)")
    print(f"  429 responses           {stats['rate_limited_count']}   (target 0)")
    # Near zero when the budget went unused: then the crawler, not the pacer, set the pace.
    print(f"  pacer held requests back {held:.1f} s of {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1_000_000)
    parser.add_argument("--budget-quota", type=int, default=200)
    parser.add_argument("--budget-window", type=float, default=10.0)
    parser.add_argument("--budget-seconds", type=float, default=40.0)
    parser.add_argument("--skip-budget", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    if not args.skip_full:
        full_sync(args.models)
    if not args.skip_budget:
        budgeted(args.budget_quota, args.budget_window, args.budget_seconds)


if __name__ == "__main__":
    main()
