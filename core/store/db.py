"""Opening the database: WAL, sane pragmas, migrations, and explicit transactions.

Connections run in autocommit mode (`isolation_level=None`) and every write goes
through `write_tx`, which takes the write lock up front with BEGIN IMMEDIATE so
two processes never deadlock upgrading a read lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

from core.store.memstatus import disable_memory_statistics
from core.store.migrations import migrate
from core.store.rawjson import forget_encoders, remember_database

BUSY_TIMEOUT_MS = 30_000
PAGE_SIZE = 16384


def _as_is(value: bytes | None) -> bytes | None:
    return value


# sqlite3 passes every parameter that is not an exact int, float, str or bytearray through
# its adapter protocol, which costs ~250 ns for a None and ~330 for bytes against ~20 for an
# int; an adapter registered for the type is one dict lookup and a call (~100 and ~175 ns). A
# mirrored row binds six Nones on average and its raw JSON, and a first mirror binds a million rows.
sqlite3.register_adapter(type(None), _as_is)
sqlite3.register_adapter(bytes, _as_is)


def connect(path: Path | str, *, migrate_schema: bool = True) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    disable_memory_statistics()
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Takes effect only when the file is created. 16 KiB pages instead of 4: a quarter of the
    # B-tree pages and I/O calls; a first mirror of 1M models took ~5% less CPU and its index
    # builds a fifth less, and the API's latency under load did not move (bench/api.py).
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts;
    # a process crash (kill -9) loses nothing that was committed.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -65536")
    if migrate_schema:
        migrate(conn)
    remember_database(path)
    return conn


@contextmanager
def write_tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        forget_encoders(conn)  # a dictionary trained in this transaction is gone with it
        raise
    conn.execute("COMMIT")


@contextmanager
def read_tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot across several SELECTs."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


# SQLite's default bound on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
MAX_PARAMETERS = 32_766


def insert_rows(conn: sqlite3.Connection, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """`{head} VALUES (?, ...), (?, ...), ... {tail}` for every row, in as few statements as fit.

    Not `executemany`, which takes the GIL back after every row: beside a thread that runs
    Python (the crawler's writer thread beside its event loop) each row then waits for the
    other thread's switch interval. 200K rows took 97 s that way against 0.8 s alone; one
    statement for many rows runs without the GIL from its first row to its last (3.5 s).
    """
    if not rows:
        return
    width = len(rows[0])
    row_sql = "(" + ", ".join("?" * width) + ")"
    most = MAX_PARAMETERS // width
    for start in range(0, len(rows), most):
        chunk = rows[start:start + most]
        conn.execute(f"{head} VALUES {', '.join([row_sql] * len(chunk))} {tail}", list(chain.from_iterable(chunk)))


def utcnow() -> str:
    """Timestamps are stored in the Hub's own format so they compare as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
