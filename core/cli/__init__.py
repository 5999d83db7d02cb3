"""Command-line entry point: `python main.py <command>`.

Each command lives in its own module under `core.cli` and exports
`HELP: str`, `add_arguments(parser)` and `run(args) -> int`. Heavy imports
(torch, faiss) stay inside `run` so that `--help` and bad arguments stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from types import ModuleType

from core.config import ConfigError, config_from_args

COMMANDS: dict[str, str] = {
    "crawl": "core.cli.crawl",
    "stats": "core.cli.stats",
    "search": "core.cli.search",
    "similar": "core.cli.similar",
    "embed": "core.cli.embed",
    "index": "core.cli.index",
    "watch": "core.cli.watch",
    "trends": "core.cli.trends",
    "history": "core.cli.history",
    "serve": "core.cli.serve",
    "daemon": "core.cli.daemon",
    "fakehub": "core.cli.fakehub",
}


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line instead of argparse's usage dump.
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(COMMANDS[name])
    except ModuleNotFoundError as exc:
        if exc.name == COMMANDS[name]:
            return None  # command not built yet
        raise


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", description="PROMETHEUS: a self-hosted Hugging Face Hub mirror.",
                     parents=[_common_flags(suppress=False)])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                        parents=[_common_flags(suppress=True)])
        module.add_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "interactive"
    module = importlib.import_module(COMMANDS.get(command, "core.cli.interactive"))
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
