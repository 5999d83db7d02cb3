"""A small in-process cache of read results (searches, list pages), invalidated when the data changes.

Popular queries repeat: the same words from the search page, the same dashboard list every few
seconds. Computing them costs tens of milliseconds of SQLite and Python; a hit costs microseconds.

Freshness. Every entry records the database's data version when it was computed (a counter bumped
whenever SQLite's `PRAGMA data_version` on our own read-only connection moves, i.e. whenever any
other connection commits). An entry from the current version is always served. While the crawler
writes a page every second or so, every entry goes out of date at once, so an older entry is
- served as it is while younger than `max_stale_seconds` (2 s);
- served while younger than `revalidate_seconds` (30 s), and recomputed in the background, so the
  next request for it gets the new answer (stale-while-revalidate: a popular query never waits),
  unless the server is busy (REFRESH_BELOW computations already running): a background refresh
  costs as much as a miss, and under overload the CPU is better spent on requests that wait;
- otherwise recomputed before answering.
An answer is thus never older than `revalidate_seconds`, and usually one search behind the data.
Both 0: every commit invalidates everything.

Identical requests that arrive while one is being computed wait for that one (single flight), so a
burst of the same query costs one search. Errors are never cached.

Each API worker process has its own cache; the data version is read on the event loop (a few
microseconds: SQLite answers it from the WAL index without reading pages).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_MAX_ENTRIES = 4096
DEFAULT_MAX_ROWS = 50_000  # results and list items held in all, ~1-2 KB each: a bound on memory
DEFAULT_MAX_STALE_SECONDS = 2.0
DEFAULT_REVALIDATE_SECONDS = 30.0
REFRESH_BELOW = 2  # background refreshes start only while fewer computations than this are running
_VERSION_BUSY_MS = 20  # the data-version read runs on the event loop: never wait long for it


@dataclass(frozen=True)
class CachePolicy:
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_rows: int = DEFAULT_MAX_ROWS
    max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS
    revalidate_seconds: float = DEFAULT_REVALIDATE_SECONDS

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> CachePolicy:
        """`api.cache: {entries: 4096, max_rows: 50000, max_stale_seconds: 2, revalidate_seconds: 30}` in
        the config file; `entries: 0` turns the cache off."""
        section = (raw.get("api") or {}).get("cache") or {}
        if not isinstance(section, dict):
            section = {}
        entries = section.get("entries", DEFAULT_MAX_ENTRIES)
        max_rows = section.get("max_rows", DEFAULT_MAX_ROWS)
        stale = section.get("max_stale_seconds", DEFAULT_MAX_STALE_SECONDS)
        revalidate = section.get("revalidate_seconds", max(DEFAULT_REVALIDATE_SECONDS, stale)
                                 if isinstance(stale, (int, float)) else DEFAULT_REVALIDATE_SECONDS)
        seconds = (stale, revalidate)
        valid = (all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (entries, max_rows))
                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in seconds)
                 and revalidate >= stale)
        if not valid:
            log.warning("api_cache_config_invalid", section=section, using="defaults")
            return cls()
        return cls(max_entries=entries, max_rows=max_rows, max_stale_seconds=float(stale),
                   revalidate_seconds=float(revalidate))


@dataclass
class _Entry:
    version: int
    created: float
    value: Any
    rows: int


class DataVersion:
    """A counter that moves whenever another connection has committed to the database."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._seen: int | None = None
        self.value = 0

    def open(self) -> None:
        self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                     timeout=_VERSION_BUSY_MS / 1000, check_same_thread=False)
        self._conn.execute("PRAGMA query_only = 1")

    def current(self) -> int | None:
        """The version now; None when it cannot be read (then nothing may be served from the cache)."""
        if self._conn is None:
            return None
        try:
            seen = self._conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            log.warning("api_cache_version_unreadable", error=str(exc))
            return None
        if seen != self._seen:
            self._seen = seen
            self.value += 1
        return self.value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class ResultCache:
    def __init__(self, path: Path, policy: CachePolicy | None = None,
                 on_lookup: Callable[[str], None] | None = None) -> None:
        self.policy = policy or CachePolicy()
        self._on_lookup = on_lookup  # called with "hit", "stale" or "miss" (the /metrics counter)
        self.version = DataVersion(path)
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._in_flight: dict[Hashable, asyncio.Future[Any]] = {}
        self._rows = 0

    def open(self) -> None:
        if self.policy.enabled:
            self.version.open()

    def close(self) -> None:
        self.version.close()
        self._entries.clear()
        self._rows = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]],
                  rows: Callable[[T], int] = lambda value: 1) -> T:
        """The cached value for `key`, or `compute()`'s (stored unless it raised). `rows(value)`: how
        many results or items it holds, for the `max_rows` bound."""
        if not self.policy.enabled:
            return await compute()
        version = self.version.current()
        if version is None:
            return await compute()
        entry = self._entries.get(key)
        if entry is not None:
            age = time.monotonic() - entry.created
            if entry.version == version or age < self.policy.max_stale_seconds:
                self._entries.move_to_end(key)
                self._count("hit")
                return entry.value  # type: ignore[no-any-return]
            if age < self.policy.revalidate_seconds:
                self._entries.move_to_end(key)
                self._count("stale")
                if len(self._in_flight) < REFRESH_BELOW:
                    self._start(key, version, compute, rows)
                return entry.value  # type: ignore[no-any-return]
        self._count("miss")
        # Shielded: a client that goes away must not cancel the work others are waiting for.
        return await asyncio.shield(self._start(key, version, compute, rows))  # type: ignore[no-any-return]

    def _start(self, key: Hashable, version: int, compute: Callable[[], Awaitable[T]],
               rows: Callable[[T], int]) -> asyncio.Future[T]:
        """The computation of `key` at `version`: the one in flight, or a new one."""
        flight_key = (key, version)
        pending = self._in_flight.get(flight_key)
        if pending is None:
            pending = asyncio.ensure_future(self._compute(flight_key, key, version, compute, rows))
            # A background refresh that fails (the database busy) is not anyone's error: the next
            # request computes again. Retrieving the exception here keeps asyncio from logging it.
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._in_flight[flight_key] = pending
        return pending

    def _count(self, result: str) -> None:
        if self._on_lookup is not None:
            self._on_lookup(result)

    async def _compute(self, flight_key: Hashable, key: Hashable, version: int,
                       compute: Callable[[], Awaitable[T]], rows: Callable[[T], int]) -> T:
        created = time.monotonic()  # before the work: its age counts from the data it saw
        try:
            value = await compute()
        finally:
            self._in_flight.pop(flight_key, None)
        current = self._entries.get(key)
        if current is not None and current.created > created:
            return value  # a later computation already finished
        if current is not None:
            self._rows -= current.rows
        entry = _Entry(version, created, value, rows(value))
        self._entries[key] = entry
        self._rows += entry.rows
        self._entries.move_to_end(key)
        while self._entries and (len(self._entries) > self.policy.max_entries or self._rows > self.policy.max_rows):
            self._rows -= self._entries.popitem(last=False)[1].rows
        return value
