"""A small in-process cache of read results (searches, list pages), invalidated when the data changes.

Popular queries repeat: the same words from the search page, the same dashboard list every few
seconds. Computing them costs tens of milliseconds of SQLite and Python; a hit costs microseconds.

Freshness. Every entry records the database's data version when it was computed (a counter bumped
whenever SQLite's `PRAGMA data_version` on our own read-only connection moves, i.e. whenever any
other connection commits). An entry from the current version is always served. An entry from an
older version is served only while it is younger than `max_stale_seconds`: while the crawler writes
a page every second or so, an answer a few seconds old is still the mirror's answer (the Hub itself
is synced hourly), and without that allowance a busy crawl would empty the cache on every page.
`max_stale_seconds = 0` makes every commit invalidate everything.

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
DEFAULT_MAX_STALE_SECONDS = 2.0
_VERSION_BUSY_MS = 20  # the data-version read runs on the event loop: never wait long for it


@dataclass(frozen=True)
class CachePolicy:
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_stale_seconds: float = DEFAULT_MAX_STALE_SECONDS

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> CachePolicy:
        """`api.cache: {entries: 4096, max_stale_seconds: 2}` in the config file; `entries: 0` turns it off."""
        section = (raw.get("api") or {}).get("cache") or {}
        if not isinstance(section, dict):
            section = {}
        entries = section.get("entries", DEFAULT_MAX_ENTRIES)
        stale = section.get("max_stale_seconds", DEFAULT_MAX_STALE_SECONDS)
        valid = (isinstance(entries, int) and not isinstance(entries, bool) and entries >= 0
                 and isinstance(stale, (int, float)) and not isinstance(stale, bool) and stale >= 0)
        if not valid:
            log.warning("api_cache_config_invalid", section=section, using="defaults")
            return cls()
        return cls(max_entries=entries, max_stale_seconds=float(stale))


@dataclass
class _Entry:
    version: int
    created: float
    value: Any


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
        self._on_lookup = on_lookup  # called with "hit" or "miss" (the /metrics counter)
        self.version = DataVersion(path)
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._in_flight: dict[Hashable, asyncio.Future[Any]] = {}

    def open(self) -> None:
        if self.policy.enabled:
            self.version.open()

    def close(self) -> None:
        self.version.close()
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key`, or `compute()`'s (stored unless it raised)."""
        if not self.policy.enabled:
            return await compute()
        version = self.version.current()
        if version is None:
            return await compute()
        entry = self._entries.get(key)
        if entry is not None and (entry.version == version
                                  or time.monotonic() - entry.created < self.policy.max_stale_seconds):
            self._entries.move_to_end(key)
            self._count("hit")
            return entry.value  # type: ignore[no-any-return]
        self._count("miss")
        flight_key = (key, version)
        pending = self._in_flight.get(flight_key)
        if pending is None:
            pending = asyncio.ensure_future(self._compute(flight_key, key, version, compute))
            self._in_flight[flight_key] = pending
        # Shielded: a client that goes away must not cancel the work others are waiting for.
        return await asyncio.shield(pending)  # type: ignore[no-any-return]

    def _count(self, result: str) -> None:
        if self._on_lookup is not None:
            self._on_lookup(result)

    async def _compute(self, flight_key: Hashable, key: Hashable, version: int,
                       compute: Callable[[], Awaitable[T]]) -> T:
        created = time.monotonic()  # before the work: its age counts from the data it saw
        try:
            value = await compute()
        finally:
            self._in_flight.pop(flight_key, None)
        self._entries[key] = _Entry(version, created, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.policy.max_entries:
            self._entries.popitem(last=False)
        return value
