"""`python main.py` with no command: a prompt that searches the mirror and shows its stats."""

from __future__ import annotations

import argparse
import sys

from core.cli.search import hits_table
from core.config import config_from_args
from core.search import MODES

_HELP_TEXT = """type words to search; commands:
  :keyword | :semantic | :hybrid   switch search mode (now: {mode})
  :type models|datasets|spaces|papers|all   restrict the kind
  :similar <id>                    items similar to one item
  :stats                           what the mirror holds
  :help                            this text
  quit | exit | Ctrl-D             leave"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _print_stats(engine) -> None:  # type: ignore[no-untyped-def]
    stats = engine.stats()
    counts = ", ".join(f"{kind} {count:,}" for kind, count in stats["counts"].items())
    index = stats["search_index"]
    described = f"{index['index']['type']} {index['index']['count']:,} vectors" if index["index"] else "none yet"
    print(f"items: {counts} (total {stats['total']:,})")
    print(f"embeddings: {index['embedded']:,} stored, {index['pending']:,} queued, {index['parked']:,} parked; "
          f"semantic index: {described}")


def run(args: argparse.Namespace) -> int:
    from core.kinds import parse_kind
    from core.logs import configure_logging
    from core.search import SearchEngine, SearchFilters

    configure_logging("WARNING")  # info lines (index loaded) belong in the daemon's log, not here
    engine = SearchEngine(config_from_args(args))
    mode = "keyword"
    filters = SearchFilters()
    interactive = sys.stdin.isatty()
    try:
        print("PROMETHEUS search — type :help for commands, quit to leave")
        _print_stats(engine)
        while True:
            try:
                line = input(f"{mode}> " if interactive else "").strip()
            except EOFError:
                print()
                return 0
            if not line:
                continue
            if line in ("quit", "exit", ":quit", ":q"):
                return 0
            try:
                if line.startswith(":"):
                    command, _, rest = line[1:].partition(" ")
                    rest = rest.strip()
                    if command in MODES:
                        mode = command
                        print(f"mode: {mode}")
                    elif command == "type":
                        filters.kind = None if rest in ("", "all") else parse_kind(rest)
                        print(f"type: {filters.kind.plural if filters.kind else 'all'}")
                    elif command == "stats":
                        _print_stats(engine)
                    elif command == "similar" and rest:
                        kind = engine.resolve_kind(rest)
                        if kind is None:
                            print(f"no item {rest!r} in the mirror")
                            continue
                        hits = engine.similar(kind, rest, limit=10)
                        print(hits_table(hits) if hits else "no results (is the semantic index built?)")
                    elif command == "similar":
                        print("usage: :similar <id>")
                    else:
                        if command not in ("help", "h", "?"):
                            print(f"unknown command :{command}")
                        print(_HELP_TEXT.format(mode=mode))
                    continue
                hits = engine.search(line, filters, mode=mode, limit=10)
                print(hits_table(hits) if hits else "no results")
            except (ValueError, LookupError) as exc:
                print(f"error: {exc}")
    finally:
        engine.close()
