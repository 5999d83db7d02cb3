"""Mirroring the Hub into SQLite: resumable full syncs and watermark-bounded incremental syncs.

Full sync walks a kind's whole listing in `createdAt` order (immutable, so the
keyset cursor never skips or repeats an item while others change) and commits
pages together with the URL of the page after them: a crash resumes after the
last committed page. When the walk ends, whatever it did not see is marked
deleted. Incremental sync walks `lastModified` newest first and stops at the
previous sync's watermark.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from operator import attrgetter
from pathlib import Path

import structlog

from core.hub.client import HubClient, Page
from core.hub.records import (
    EXPAND_FIELDS,
    PaperRecord,
    ParseError,
    RepoRecord,
    parse_listed_repos,
    parse_paper,
    parse_repo,
)
from core.kinds import ALL_KINDS, Kind
from core.store import connect, write_tx
from core.store.db import format_ts, parse_ts, utcnow
from core.store.items import (
    PageChanges,
    PageHook,
    PreparedPage,
    defer_indexes,
    mark_unseen_deleted,
    prepare_page,
    restore_indexes,
    write_page,
)
from core.store.rawjson import RawEncoder, encoder_for

log = structlog.get_logger(__name__)

FULL = "full"
INCREMENTAL = "incremental"
MODES = (FULL, INCREMENTAL)
PAPER_PAGE_SIZE = 100  # the papers API caps `limit` at 100
# The Hub indexes writes with a little delay: re-read this much before the watermark.
WATERMARK_OVERLAP_SECONDS = 300
CRAWLER_CHECKPOINT_PAGES = 10_000
# Pages are fetched ahead of the writer, and the writer commits all it finds waiting in one
# transaction: each commit writes out every index page the pages' ids landed on, and ids come
# in random order (the id index and lineage of a re-sync), so fewer commits write far less.
# Full sync of 1M models while first mirrors still kept those in step, CPU-µs an item:
# 8 pages a commit ~94, 16 ~88, 32 ~87 (bench/crawl.py).
# At most this many pages wait: ~1.3 MB each as fetched, ~7 MB once parsed (1,000 items a page).
PREFETCH_PAGES = 16


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """A walk makes ~20,000 short-lived containers a page, all freed by reference counting.

    With the collector on, parsing paid for its passes over every page waiting in the
    queue (~6 µs an item at 1M models), and they found nothing: after a walk of 200K
    items, `gc.collect()` freed 3 objects. The collector is back when the walk ends, so
    the little the rest of a long-running process leaves in cycles meanwhile is still freed.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class SyncResult:
    kind: str
    mode: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    requests: int = 0
    pages: int = 0
    errors: int = 0
    seconds: float = 0.0
    status: str = "ok"
    resumed: bool = False

    def summary(self) -> dict[str, float | int | str]:
        keys = ("new", "updated", "deleted", "unchanged", "requests", "seconds")
        data = {k: v for k, v in asdict(self).items() if k in keys}
        data["seconds"] = round(self.seconds, 3)
        return data


ProgressCallback = Callable[[SyncResult], None]


@dataclass
class _Walk:
    """What one sync has done so far; persisted in crawl_state for full syncs."""

    started_at: str
    next_url: str | None
    result: SyncResult
    newest: dict[str, str] = field(default_factory=dict)  # field → newest timestamp seen
    bulk: bool = False  # a first mirror into an empty table: indexes deferred, every item new
    prior_requests: int = 0  # made before a resume, by an earlier process
    client_base: int = 0  # the client's request counter when this process took over
    # The kind's raw JSON dictionary as the writer last had it: pages are compressed with it as they
    # are prepared, before the transaction (the writer compresses again a page it finds stale).
    dictionary: bytes | None = None
    writer_encoder: RawEncoder | None = None  # the writer thread's own, for the pages it prepares

    def encoder(self, current: RawEncoder | None) -> RawEncoder | None:
        """`current` while it compresses with `dictionary`, else a new one that does.

        Each thread that prepares pages keeps its own: zstd compressors are not thread-safe.
        """
        if self.dictionary is not None and (current is None or current.dictionary is not self.dictionary):
            return RawEncoder(self.dictionary)
        return current

    def requests(self, client: HubClient) -> int:
        return self.prior_requests + client.requests - self.client_base


def _parse(kind: Kind, page: Page) -> tuple[list[RepoRecord | PaperRecord], list[bytes | None], int]:
    """The page's records, the wire JSON of each, and the count of bad items.

    A record's wire JSON is None where its raw JSON is not the item as sent.
    """
    listed = None if kind is Kind.PAPER else parse_listed_repos(kind, page.body)
    if listed is not None:
        return listed, page.documents, 0
    records: list[RepoRecord | PaperRecord] = []
    documents: list[bytes | None] = []
    errors = 0
    for obj, document in zip(page.items, page.documents, strict=True):
        try:
            record = parse_paper(obj) if kind is Kind.PAPER else parse_repo(kind, obj)
        except ParseError as exc:
            errors += 1
            log.warning("unparseable_item", kind=kind.value, error=str(exc))
            continue
        records.append(record)
        documents.append(document if record.raw is obj else None)
    return records, documents, errors


@dataclass
class _Fetched:
    next_url: str | None  # None: the walk ends with this page
    prepared: PreparedPage
    errors: int
    ends_walk: bool  # it reached the incremental sync's stopping point, or the limit
    newest: str  # the newest `_watermark_field` value of its records ("" when none has one)


@dataclass
class _End:
    failure: Exception | None  # why the pages stopped coming, when they did not simply run out


def _watermark_field(kind: Kind) -> str:
    return "publishedAt" if kind is Kind.PAPER else "lastModified"


def _stamp_of(kind: Kind) -> Callable[[RepoRecord | PaperRecord], str | None]:
    """The record's value of `_watermark_field(kind)`."""
    return attrgetter("published_at" if kind is Kind.PAPER else "last_modified")


class Crawler:
    def __init__(
        self,
        db_path: Path,
        client: HubClient,
        *,
        hooks: Sequence[PageHook] = (),
        page_size: int = 1000,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.db_path = db_path
        self.client = client
        self.hooks = list(hooks)
        self.page_size = page_size
        self.progress = progress
        self._conn: sqlite3.Connection | None = None
        self._stop = asyncio.Event()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.db_path)
            # Checkpoint every 10,000 database pages of WAL instead of 1,000 (160 MB with 16 KiB
            # pages, 40 MB with the 4 KiB of older databases): a page of 1,000 items dirties the
            # same index and FTS pages again and again, and each checkpoint copies them all back
            # (a fifth less CPU per item on a full sync; 40 MB against 160 MB made no difference).
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {CRAWLER_CHECKPOINT_PAGES}")
            # The sorts that end a bulk load (`restore_indexes`) spill their runs to temporary files,
            # which the OS keeps in its cache, instead of SQLite's in-memory temp store, which copies
            # them around in small chunks: 7.1 against 4.3 CPU-s for the index builds of 1M models.
            self._conn.execute("PRAGMA temp_store = FILE")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request_stop(self) -> None:
        """Finish the page in hand, commit it, and return (graceful shutdown)."""
        self._stop.set()

    # -- public entry points -------------------------------------------------

    async def sync(self, kind: Kind, mode: str, *, limit: int | None = None) -> SyncResult:
        if mode == INCREMENTAL and self._watermark(kind) is None:
            mode = FULL  # nothing mirrored yet: an incremental sync has nowhere to stop
        started = time.monotonic()
        walk = self._resume_or_start(kind, mode, limit)
        walk.prior_requests = walk.result.requests
        walk.dictionary = encoder_for(self.conn, kind).dictionary
        walk.client_base = self.client.requests
        try:
            with _no_cycle_collection():
                await self._walk(kind, mode, walk, limit)
        except BaseException as exc:
            walk.result.requests = walk.requests(self.client)
            walk.result.status = "cancelled" if isinstance(exc, asyncio.CancelledError) else "failed"
            walk.result.errors += 1
            self._record_history(kind, walk, error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            walk.result.requests = walk.requests(self.client)
            walk.result.seconds = time.monotonic() - started
        self._finish(kind, mode, walk, complete=limit is None and not self._stop.is_set())
        return walk.result

    async def sync_all(self, kinds: Sequence[Kind] = ALL_KINDS, mode: str = INCREMENTAL,
                       *, limit: int | None = None) -> dict[str, SyncResult]:
        results = {}
        for kind in kinds:
            if self._stop.is_set():
                break
            results[kind.plural] = await self.sync(kind, mode, limit=limit)
        return results

    # -- the walk ------------------------------------------------------------

    def _first_url(self, kind: Kind, mode: str) -> str:
        if kind is Kind.PAPER:
            return self.client.list_url(kind, limit=PAPER_PAGE_SIZE)
        sort = "createdAt" if mode == FULL else "lastModified"
        return self.client.list_url(kind, sort=sort, limit=self.page_size, expand=EXPAND_FIELDS[kind])

    def _resume_or_start(self, kind: Kind, mode: str, limit: int | None) -> _Walk:
        if mode == FULL and limit is None:
            row = self.conn.execute(
                "SELECT * FROM crawl_state WHERE kind = ? AND mode = ?", (kind.value, mode)
            ).fetchone()
            if row is not None and row["next_url"]:
                result = SyncResult(kind.plural, mode, new=row["new"], updated=row["updated"],
                                    unchanged=row["unchanged"], requests=row["requests"],
                                    pages=row["pages"], errors=row["errors"], resumed=True)
                log.info("sync_resumed", kind=kind.value, pages=row["pages"], next_url=row["next_url"])
                return _Walk(row["started_at"], row["next_url"], result, bulk=row["deferred_indexes"] is not None)
        walk = _Walk(utcnow(), self._first_url(kind, mode), SyncResult(kind.plural, mode))
        if mode == FULL and limit is None:
            with write_tx(self.conn):
                self._restore_indexes(kind, mode)  # left by a walk that ended without finishing
                # The first mirror of a kind is a bulk load: its indexes are built once, at the end.
                empty = self.conn.execute(f"SELECT 1 FROM {kind.table} LIMIT 1").fetchone() is None
                deferred = json.dumps(defer_indexes(self.conn, kind)) if empty else None
                walk.bulk = empty
                self.conn.execute(
                    "INSERT OR REPLACE INTO crawl_state (kind, mode, started_at, next_url, deferred_indexes) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (kind.value, mode, walk.started_at, walk.next_url, deferred),
                )
        return walk

    def _prepare(self, kind: Kind, page: Page, stop_before: str | None, room: int | None,
                 encoder: RawEncoder | None, *, bulk: bool) -> _Fetched:
        """Parse a page and lay out its rows (`prepare_page`), on the thread that calls it.

        `room`: how many more items the sync's `--limit` lets in (None: no limit); the walk ends with
        a page that fills it, as with one that reaches an incremental sync's `stop_before`.
        `encoder` must be the calling thread's own.
        """
        records, documents, errors = _parse(kind, page)
        stamp = _stamp_of(kind)
        ends_walk = False
        if stop_before is not None:
            fresh = [(r, d) for r, d in zip(records, documents, strict=True) if (stamp(r) or "") >= stop_before]
            ends_walk = len(fresh) < len(records)
            records, documents = [r for r, _ in fresh], [d for _, d in fresh]
        if room is not None and len(records) >= room:
            records, documents = records[:room], documents[:room]
            ends_walk = True
        newest = max(filter(None, map(stamp, records)), default="")
        prepared = prepare_page(records, documents, encoder=encoder, bulk=bulk)
        return _Fetched(page.next_url, prepared, errors, ends_walk, newest)

    async def _walk(self, kind: Kind, mode: str, walk: _Walk, limit: int | None) -> None:
        """Fetch pages ahead (`_fetch_ahead`) and write every page waiting in one transaction.

        Each transaction opens and commits inside one call on the writer thread: the write
        lock is never held while the event loop runs something else, which may itself be
        waiting for that lock (the hot sweep, the watch poll).
        """
        wire_field = _watermark_field(kind)
        waiting: asyncio.Queue[_Fetched | Page | _End] = asyncio.Queue(PREFETCH_PAGES)
        stop_before = self._stop_before(kind) if mode == INCREMENTAL else None
        fetcher = asyncio.create_task(self._fetch_ahead(kind, walk, stop_before, limit, waiting))
        try:
            while True:
                batch: list[_Fetched | Page] = []
                item = await waiting.get()
                while isinstance(item, _Fetched | Page):
                    batch.append(item)
                    item = waiting.get_nowait() if not waiting.empty() else None
                if batch:
                    await asyncio.to_thread(self._write_pages, kind, mode, walk, batch, wire_field)
                    if self.progress:
                        self.progress(walk.result)
                if isinstance(item, _End):
                    if item.failure is not None:
                        raise item.failure
                    return
                if self._stop.is_set():
                    return
        finally:
            fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetcher

    async def _fetch_ahead(self, kind: Kind, walk: _Walk, stop_before: str | None, limit: int | None,
                           waiting: asyncio.Queue[_Fetched | Page | _End]) -> None:
        """Fetch pages in order until the walk's end, a stop or a failure; a failure is handed on
        after the pages fetched before it. This runs on the event loop while the writer thread
        holds the previous pages' SQL, so the two overlap.

        A walk that may end before the Hub's last page (an incremental sync, a `--limit`) must
        parse each page to know whether to fetch the next, so it prepares its pages here. Any
        other walk hands its pages on as fetched, and the writer prepares them just before it
        writes them: binding rows another core laid out cost the writer more than laying them
        out itself. 1M models, alternated with preparing here: a re-sync of the unchanged mirror
        took 1.8-5.1 CPU-s and 3.0-6.4 s less (six pairs), a first mirror 1.0 CPU-s less on
        average (from 2.8 less to 1.4 more, eight pairs).
        """
        url, seen = walk.next_url, 0
        prepare_here = stop_before is not None or limit is not None
        encoder: RawEncoder | None = None  # the event loop's own (`_Walk.encoder`)
        failure: Exception | None = None
        try:
            while url and not self._stop.is_set():
                room = None if limit is None else limit - seen
                page = await self.client.get_page(url)
                if not prepare_here:
                    await waiting.put(page)
                    url = page.next_url
                    continue
                encoder = walk.encoder(encoder)
                fetched = self._prepare(kind, page, stop_before, room, encoder, bulk=walk.bulk)
                seen += len(fetched.prepared.records)
                if fetched.ends_walk:
                    fetched.next_url = None
                await waiting.put(fetched)
                url = fetched.next_url
        except Exception as exc:
            failure = exc
        await waiting.put(_End(failure))

    def _write_pages(self, kind: Kind, mode: str, walk: _Walk, batch: list[_Fetched | Page], wire_field: str) -> None:
        # Pages handed on as fetched are prepared before the transaction, which holds the write lock.
        encoder = walk.writer_encoder = walk.encoder(walk.writer_encoder)
        prepared = [
            item if isinstance(item, _Fetched) else self._prepare(kind, item, None, None, encoder, bulk=walk.bulk)
            for item in batch
        ]
        with write_tx(self.conn):
            for fetched in prepared:
                self._write_page(kind, mode, walk, fetched, wire_field)
        if walk.dictionary is None:  # a kind's dictionary is trained once, by its first big page
            walk.dictionary = encoder_for(self.conn, kind).dictionary

    def _write_page(self, kind: Kind, mode: str, walk: _Walk, fetched: _Fetched, wire_field: str) -> None:
        result, next_url = walk.result, fetched.next_url
        changes: PageChanges = write_page(self.conn, kind, fetched.prepared, utcnow(), self.hooks, bulk=walk.bulk)
        result.pages += 1
        result.new += len(changes.new)
        result.updated += len(changes.updated)
        result.unchanged += changes.unchanged
        result.errors += fetched.errors
        walk.next_url = next_url
        if fetched.newest > walk.newest.get(wire_field, ""):
            walk.newest[wire_field] = fetched.newest
        if mode == FULL:
            self.conn.execute(
                "UPDATE crawl_state SET next_url = ?, pages = ?, requests = ?, new = ?, updated = ?, "
                "unchanged = ?, errors = ?, newest_seen = max(coalesce(newest_seen, ''), ?) "
                "WHERE kind = ? AND mode = ?",
                (next_url, result.pages, walk.requests(self.client), result.new, result.updated,
                 result.unchanged, result.errors, walk.newest.get(wire_field, ""), kind.value, mode),
            )

    # -- bookkeeping ---------------------------------------------------------

    def _watermark(self, kind: Kind) -> str | None:
        row = self.conn.execute(
            "SELECT value FROM sync_watermarks WHERE kind = ? AND field = ?", (kind.value, _watermark_field(kind))
        ).fetchone()
        return row[0] if row else None

    def _stop_before(self, kind: Kind) -> str | None:
        mark = self._watermark(kind)
        if mark is None:
            return None
        try:
            return format_ts(parse_ts(mark) - timedelta(seconds=WATERMARK_OVERLAP_SECONDS))
        except ValueError:
            return mark

    def _finish(self, kind: Kind, mode: str, walk: _Walk, *, complete: bool) -> None:
        result = walk.result
        if not complete:
            result.status = "stopped" if self._stop.is_set() else "limited"
        with write_tx(self.conn):
            if complete and mode == FULL:
                # A bulk load began with an empty table: every row came in after the walk began, so
                # none can be unseen, and the scan for them would read every row (~0.3 s a million).
                if not walk.bulk:
                    result.deleted = mark_unseen_deleted(self.conn, kind, walk.started_at, utcnow())
                row = self.conn.execute(
                    "SELECT newest_seen FROM crawl_state WHERE kind = ? AND mode = ?", (kind.value, mode)
                ).fetchone()
                if row and row[0]:
                    walk.newest.setdefault(_watermark_field(kind), row[0])
                    walk.newest[_watermark_field(kind)] = max(walk.newest[_watermark_field(kind)], row[0])
            if complete or result.status == "limited":
                self._restore_indexes(kind, mode)
                self.conn.execute("DELETE FROM crawl_state WHERE kind = ? AND mode = ?", (kind.value, mode))
            if complete:
                for wire_field, stamp in walk.newest.items():
                    self.conn.execute(
                        "INSERT INTO sync_watermarks (kind, field, value) VALUES (?, ?, ?) "
                        "ON CONFLICT (kind, field) DO UPDATE SET value = max(value, excluded.value)",
                        (kind.value, wire_field, stamp),
                    )
            self._insert_history(kind, walk, None)
        log.info("sync_finished", kind=kind.value, mode=mode, **result.summary(), status=result.status)

    def _restore_indexes(self, kind: Kind, mode: str) -> None:
        row = self.conn.execute(
            "SELECT deferred_indexes FROM crawl_state WHERE kind = ? AND mode = ?", (kind.value, mode)
        ).fetchone()
        if row is not None and row[0]:
            started = time.monotonic()
            restore_indexes(self.conn, kind, json.loads(row[0]))
            log.info("indexes_restored", kind=kind.value, seconds=round(time.monotonic() - started, 2))

    def _record_history(self, kind: Kind, walk: _Walk, error: str) -> None:
        try:
            with write_tx(self.conn):
                self._insert_history(kind, walk, error)
        except sqlite3.Error as exc:  # never mask the original failure
            log.error("history_write_failed", error=str(exc))

    def _insert_history(self, kind: Kind, walk: _Walk, error: str | None) -> None:
        r = walk.result
        self.conn.execute(
            "INSERT INTO crawl_history (kind, mode, started_at, finished_at, pages, requests, new, updated, "
            "unchanged, deleted, errors, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind.value, r.mode, walk.started_at, utcnow(), r.pages, r.requests, r.new, r.updated,
             r.unchanged, r.deleted, r.errors, r.status, error),
        )


def standard_hooks() -> list[PageHook]:
    """Hooks every production crawl runs inside its page transactions (alerts, trend snapshots)."""
    hooks: list[PageHook] = []
    for module_name, hook_name in (("core.trends", "snapshot_hook"), ("core.alerts", "detection_hook")):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        hooks.append(getattr(module, hook_name))
    return hooks
