"""`python main.py stats`: what the mirror holds."""

from __future__ import annotations

import argparse

from core.cli.output import print_json, print_table
from core.config import config_from_args
from core.store import connect
from core.store.stats import collect_stats

HELP = "show what the mirror holds: live items per kind, last crawls, queues"


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
    for extra in ("restarts", "alerts"):
        if extra in stats:
            print(f"{extra}: {stats[extra]}")
    return 0
