"""`python main.py stats`: what the mirror holds."""

from __future__ import annotations

import argparse

from core.cli.output import print_json, print_table
from core.config import config_from_args
from core.store import connect
from core.store.stats import collect_stats


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    conn = connect(config.db_path)
    stats = collect_stats(conn)
    if args.json:
        print_json(stats)
        return 0
    rows = []
    for kind, count in stats["counts"].items():
        last = stats["last_crawl"].get(kind) or {}
        rows.append([kind, f"{count:,}", last.get("mode", "-"), last.get("finished_at", "-"), last.get("status", "-")])
    print_table(["kind", "live", "last crawl", "finished", "status"], rows)
    print(f"\ntotal {stats['total']:,} items in {config.db_path}")
    queue = stats["embed_queue"]
    print(f"embedding queue: {queue['pending']:,} pending, {queue['parked']:,} parked")
    for crawl in stats["in_progress"]:
        print(f"{crawl['mode']} sync of {crawl['kind']}s in progress since {crawl['started_at']}: "
              f"{crawl['pages']:,} pages committed")
    alerts = stats["alerts"]
    print(f"alerts: {alerts['pending']:,} pending, {alerts['sent']:,} sent, {alerts['digested']:,} in digests, "
          f"{alerts['failed']:,} failed")
    restarts = stats["restarts"]
    print(f"daemon: {restarts['last_24h']} child restarts in 24 h ({restarts['total']} in all)")
    for child in restarts["children"]:
        print(f"  {child['child']:<9} {child['state']:<9} pid {child['pid']}  restarts {child['restarts']}"
              + (f"  last: {child['last_reason']}" if child["last_reason"] else ""))
    return 0
