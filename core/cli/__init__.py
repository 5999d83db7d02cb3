"""Command-line entry point: `python main.py <command>`.

Each command lives in its own module under `core.cli`, named with its line of help in
`COMMANDS`, and exports `add_arguments(parser)` and `run(args) -> int`. Only the module of
the command given is imported (`crawl` starts in 0.27 CPU-s instead of 0.53, `stats` in
0.17 instead of 0.55), and heavy imports (torch, faiss) stay inside `run` so that `--help` and bad
arguments stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys

from core.config import ConfigError, config_from_args

# Each command: its module, imported only when the command runs, and its line of help.
COMMANDS: dict[str, tuple[str, str]] = {
    "crawl": (
        "core.cli.crawl",
        "mirror the Hub: full or incremental sync of models, datasets, spaces and papers",
    ),
    "stats": (
        "core.cli.stats",
        "show what the mirror holds: live items per kind, last crawls, queues",
    ),
    "search": (
        "core.cli.search",
        "search the mirror: keyword (default), --semantic or --hybrid, with filters",
    ),
    "similar": (
        "core.cli.similar",
        "items similar to a model, dataset, Space or paper (nearest neighbours of its embedding)",
    ),
    "embed": (
        "core.cli.embed",
        "embed queued items and keep the semantic index current (--until-idle: drain the queue, then exit)",
    ),
    "index": (
        "core.cli.index",
        "the semantic index: `build` rebuilds it from the stored embeddings, `status` shows it",
    ),
    "watch": (
        "core.cli.watch",
        "watches and alerts: add/list/remove priority authors, tags, repos and saved queries",
    ),
    "trends": (
        "core.cli.trends",
        "what is taking off: downloads/day, likes/day or rising (growth relative to size) over a window",
    ),
    "history": (
        "core.cli.history",
        "show the recorded downloads/likes series of one repo",
    ),
    "serve": (
        "core.cli.serve",
        "serve the REST API, the search page (/ui) and the API docs (/docs)",
    ),
    "daemon": (
        "core.cli.daemon",
        "run everything under a supervisor: crawler, embedding worker and API, restarted when they fail",
    ),
    "fakehub": (
        "core.cli.fakehub",
        "serve a fake Hugging Face Hub (same wire format, seeded synthetic corpus) for demos and tests",
    ),
}
INTERACTIVE = "core.cli.interactive"  # no command given


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line instead of argparse's usage dump.
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _common_flags(suppress: bool) -> argparse.ArgumentParser:
    # Accepted before or after the command; SUPPRESS keeps the sub-parser from
    # overwriting a value given before the command with None.
    common = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    common.add_argument("--data-dir", default=default,
                        help="data directory (default: $PROMETHEUS_DATA_DIR, config, ./data)")
    common.add_argument("--config", default=default,
                        help="config file (default: $PROMETHEUS_CONFIG, configs/agent_config.json)")
    return common


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; only `command`'s own options are loaded (the rest would import its module)."""
    parser = _Parser(prog="main.py", description="PROMETHEUS: a self-hosted Hugging Face Hub mirror.",
                     parents=[_common_flags(suppress=False)])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, (module_name, help_line) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_line, description=help_line,
                                        parents=[_common_flags(suppress=True)])
        if name == command:
            importlib.import_module(module_name).add_arguments(command_parser)
    return parser


class _Unparsable(Exception):
    pass


class _QuietParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Unparsable(message)


def _command_in(argv: list[str] | None) -> str | None:
    """The command named on the command line, found without loading any command's options."""
    before = _QuietParser(add_help=False, parents=[_common_flags(suppress=False)])
    before.add_argument("command", nargs="?")
    try:
        known, _ = before.parse_known_args(argv)
    except _Unparsable:  # a flag without its value: the whole parser says so
        return None
    return known.command if known.command in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    args = build_parser(_command_in(argv)).parse_args(argv)
    command = args.command or "interactive"
    module = importlib.import_module(COMMANDS[command][0] if args.command else INTERACTIVE)
    try:
        return int(module.run(args) or 0)
    except (UsageError, ConfigError) as exc:
        print(f"main.py {command}: error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, _SQL_BUGS):
            raise
        # Not a database, a full disk, a lock held past the busy timeout: the user's to fix.
        print(f"main.py {command}: error: the database {_database_path(args)}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a data directory that cannot be made, a port in use, a full disk
        print(f"main.py {command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# What our own SQL gets wrong, as opposed to what happens to the database: those keep their traceback.
_SQL_BUGS = (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError)


def _database_path(args: argparse.Namespace) -> str:
    try:
        return str(config_from_args(args).db_path)
    except ConfigError:
        return "(see --data-dir)"
