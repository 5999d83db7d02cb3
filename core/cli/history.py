"""`python main.py history <repo_id>`: the recorded downloads and likes of one repo."""

from __future__ import annotations

import argparse

from core.cli import UsageError
from core.cli.output import print_json, print_table
from core.config import config_from_args
from core.store import connect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("repo_id", help="e.g. meta-llama/Llama-3.1-8B")
    parser.add_argument("--type", dest="kind", help="models, datasets or spaces (default: the first that has it)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from core.trends import history

    config = config_from_args(args)
    conn = connect(config.db_path)
    try:
        try:
            found = history(conn, args.repo_id, args.kind)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    finally:
        conn.close()
    if found is None:  # as `similar` and `watch remove`: an argument that names nothing
        raise UsageError(f"no item {args.repo_id!r} in the mirror")
    data = found.as_dict()
    if args.json:
        print_json(data)
        return 0
    print(f"{found.kind.value} {found.id}" + ("  (deleted on the Hub)" if found.deleted else ""))
    if not data["points"]:
        print("no history recorded yet")
        return 0
    print_table(["at", "downloads", "likes", "trending"],
                [[p["at"], f"{p['downloads']:,}", f"{p['likes']:,}",
                  "" if p["trending_score"] is None else f"{p['trending_score']:g}"] for p in data["points"]])
    print(f"\nlast seen {data['last_seen']}; a value holds until the next row")
    return 0
