"""The API's database access: read-only connections on a small thread pool, one writer.

sqlite3 blocks, so every query runs off the event loop. Each reader thread keeps its own
read-only connection (`mode=ro` and `query_only`): a bug in a read route cannot write, and
WAL lets readers run while the crawler writes. The few writes the API makes (task rows,
watches) go through one writer thread and `core.store.write_tx`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from core.store.db import BUSY_TIMEOUT_MS, connect

P = ParamSpec("P")
T = TypeVar("T")


class ApiDatabase:
    def __init__(self, path: Path, *, readers: int = 4) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="api-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="api-write")
        self._write_conn: sqlite3.Connection | None = None

    def open(self) -> None:
        """Create and migrate the database if needed (the API may start before the first crawl)."""
        self._write_conn = connect(self.path)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                   timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only = 1")
            conn.execute("PRAGMA cache_size = -16384")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _run_read(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        return fn(self._reader(), *args, **kwargs)

    def _run_write(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        if self._write_conn is None:
            raise RuntimeError("ApiDatabase.open() was not called")
        return fn(self._write_conn, *args, **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, *args, **kwargs)` on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, fn, args, kwargs)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` on the writer thread; `fn` wraps its statements in `write_tx`."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._run_write, fn, args, kwargs)

    def close(self) -> None:
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None


def table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def table_columns(conn: sqlite3.Connection, name: str) -> set[str]:
    return {row[1] for row in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))}
