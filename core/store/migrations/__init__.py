"""Schema migrations, one module per step, applied in order by `PRAGMA user_version`.

A step is a module `mNNNN_<what>.py` defining `apply(conn)`. NNNN is its version;
each part of the system owns its own steps, so adding a table never edits
someone else's file. Each step runs in its own transaction with the version bump.
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from collections.abc import Callable
from types import ModuleType


def _steps() -> list[tuple[int, ModuleType]]:
    steps = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            steps.append((int(info.name[1:5]), importlib.import_module(f"{__name__}.{info.name}")))
    steps.sort(key=lambda step: step[0])
    return steps


def latest_version() -> int:
    steps = _steps()
    return steps[-1][0] if steps else 0


def migrate(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Apply the steps after the database's version, up to `target` (default: all)."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for version, module in _steps():
        if version <= current:
            continue
        if target is not None and version > target:
            break
        apply: Callable[[sqlite3.Connection], None] = module.apply
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the lock.
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("ROLLBACK")
                continue
            apply(conn)
            conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        current = version
    return current


def execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run several statements inside the caller's transaction.

    `executescript` would COMMIT first, breaking the one-transaction-per-step rule.
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            conn.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in migration: {pending[:200]}")
