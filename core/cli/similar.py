"""`python main.py similar <repo_id>`: the items nearest to one item in embedding space."""

from __future__ import annotations

import argparse

from core.cli import UsageError
from core.cli.search import add_filter_arguments, filters_from_args, print_hits
from core.config import config_from_args
from core.kinds import parse_kind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("item_id", help="repo id (owner/name) or arXiv id")
    parser.add_argument("--type", dest="item_kind",
                        help="the kind of item_id, and of the results: models|datasets|spaces|papers "
                             "(default: found by id, models first)")
    add_filter_arguments(parser, kind=False)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from core.logs import configure_logging
    from core.search import SearchEngine

    configure_logging("WARNING")  # info lines (index loaded) belong in the daemon's log, not here
    if args.limit < 1:
        raise UsageError("--limit must be ≥ 1")
    filters = filters_from_args(args)
    engine = SearchEngine(config_from_args(args))
    try:
        try:
            kind = parse_kind(args.item_kind) if args.item_kind else None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        kind = kind or engine.resolve_kind(args.item_id)
        if kind is None:
            raise UsageError(f"no item {args.item_id!r} in the mirror")
        filters.kind = kind
        if engine.index.get() is None:
            raise UsageError("the semantic index is empty: run `python main.py embed --until-idle` first")
        try:
            hits = engine.similar(kind, args.item_id, limit=args.limit, filters=filters)
        except LookupError as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print_hits(hits, args.json)
    finally:
        engine.close()
    return 0
