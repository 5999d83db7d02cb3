"""`python main.py trends`: the repos moving fastest over a window."""

from __future__ import annotations

import argparse

from core.cli import UsageError
from core.cli.output import print_json, print_table
from core.config import config_from_args
from core.store import connect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", dest="kind", default="models", help="models (default), datasets or spaces")
    parser.add_argument("--window", default="24h", choices=("24h", "7d", "30d"), help="24h (default), 7d or 30d")
    parser.add_argument("--by", default="downloads", choices=("downloads", "likes", "rising"),
                        help="rank by downloads/day (default), likes/day, or rising")
    parser.add_argument("--author", help="only this author's repos")
    parser.add_argument("--tag", help="only repos with this tag")
    parser.add_argument("--base-model", help="only models derived from this base model")
    parser.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _rate(value: float) -> str:
    return f"{value:+,.1f}"


def run(args: argparse.Namespace) -> int:
    from core.trends import TrendQuery, as_of, trends

    try:
        query = TrendQuery.parse(kind=args.kind, window=args.window, by=args.by, author=args.author,
                                 tag=args.tag, base_model=args.base_model, limit=args.limit)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    config = config_from_args(args)
    conn = connect(config.db_path)
    try:
        rows = trends(conn, query)
        stamp = as_of(conn, query.kind, query.window)
    finally:
        conn.close()
    if args.json:
        print_json({"kind": query.kind.value, "window": args.window, "by": query.by, "as_of": stamp,
                    "results": [row.as_dict() for row in rows]})
        return 0
    if not rows:
        print(f"no {query.kind.plural} moved in the last {args.window} (history builds up with each crawl)")
        return 0
    print_table(
        ["#", "id", "downloads", "dl/day", "likes", "likes/day", "rising", "span"],
        [[i, r.id, f"{r.downloads:,}", _rate(r.downloads_per_day), f"{r.likes:,}", _rate(r.likes_per_day),
          f"{r.rising:.3f}", f"{r.span_days:.2f}d" + ("*" if r.partial else "")]
         for i, r in enumerate(rows, 1)],
    )
    if any(r.partial for r in rows):
        print("\n* first seen inside the window: measured from its first sighting")
    return 0
