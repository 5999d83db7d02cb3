"""The fast watch poll: the newest repos of each kind every `watch_interval_seconds`.

One `sort=createdAt` request per kind covers every new repo on the Hub however
many authors and tags are watched (the Hub's own webhooks only cover named
users and repos). It stops at its watermark, following `Link: next` only when a
burst filled the whole page. Every `updates_every`-th interval a `lastModified`
request per kind catches repos that gained tags after creation and new commits
on watched repos; every `papers_every`-th, the newest daily papers. All of it
goes through the crawler's HubClient, so it shares the process's rate budget,
and through `write_page` with the standard hooks, so detections commit with the
repos.

`refresh_repo` is the same write for one repo, used by the Hub webhook route.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from core.alerts.outbox import get_state, set_state_in_tx
from core.alerts.settings import AlertSettings, settings_from_config
from core.alerts.watches import reload_watches
from core.config import Config, ConfigError
from core.hub.client import HubClient, HubError
from core.hub.records import EXPAND_FIELDS, PaperRecord, ParseError, RepoRecord, parse_paper, parse_repo, project
from core.kinds import REPO_KINDS, Kind
from core.store import connect, write_tx
from core.store.db import format_ts, parse_ts, utcnow
from core.store.items import PageHook, mark_deleted, write_page

log = structlog.get_logger(__name__)

Writer = Callable[..., Awaitable[Any]]

# The Hub lists a write a little after it happens: re-read this far behind the watermark
# (re-read items are "unchanged" for write_page and deduplicated by the outbox key).
OVERLAP_SECONDS = 120
DAILY_PAPERS_LIMIT = 50


@dataclass
class PollStats:
    requests: int = 0
    new: int = 0
    updated: int = 0
    alerts: int = 0
    errors: int = 0
    seconds: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)


def _hooks() -> list[PageHook]:
    from core.crawler import standard_hooks  # late: the crawler imports this package's hook

    return standard_hooks()


def _parse_all(kind: Kind, items: list[dict]) -> list[RepoRecord | PaperRecord]:
    records: list[RepoRecord | PaperRecord] = []
    for obj in items:
        try:
            records.append(parse_paper(obj) if kind is Kind.PAPER else parse_repo(kind, obj))
        except ParseError as exc:
            log.warning("poll_unparseable", kind=kind.value, error=str(exc))
    return records


def _stamp(record: RepoRecord | PaperRecord, wire_field: str) -> str:
    if isinstance(record, PaperRecord):
        return record.published_at or ""
    return (record.created_at if wire_field == "createdAt" else record.last_modified) or ""


def _behind(mark: str | None) -> str | None:
    if not mark:
        return None
    try:
        return format_ts(parse_ts(mark) - timedelta(seconds=OVERLAP_SECONDS))
    except ValueError:
        return mark


def _outbox_max(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM alert_outbox").fetchone()[0]


def commit_records(conn: sqlite3.Connection, kind: Kind, records: Sequence[RepoRecord | PaperRecord],
                   hooks: Sequence[PageHook], state: dict[str, str] | None = None) -> tuple[int, int, int]:
    """write_page + hooks + state in one transaction; returns (new, updated, alerts queued)."""
    with write_tx(conn):
        before = _outbox_max(conn)
        changes = write_page(conn, kind, records, utcnow(), hooks)
        alerts = conn.execute("SELECT count(*) FROM alert_outbox WHERE id > ?", (before,)).fetchone()[0]
        for key, value in (state or {}).items():
            set_state_in_tx(conn, key, value)
    return len(changes.new), len(changes.updated), alerts


class WatchPoller:
    def __init__(self, db_path: Path, client: HubClient, settings: AlertSettings,
                 hooks: Sequence[PageHook] | None = None) -> None:
        self.db_path = db_path
        self.client = client
        self.settings = settings
        self.hooks = list(hooks) if hooks is not None else _hooks()
        self.conn = connect(db_path)
        self.tick = 0
        self.daily_papers_missing = False

    def close(self) -> None:
        self.conn.close()

    async def _walk(self, kind: Kind, wire_field: str) -> tuple[list[RepoRecord | PaperRecord], int]:
        """Newest-first pages down to the watermark; returns (records, requests)."""
        key = f"poll:{kind.value}:{wire_field}"
        stop_before = _behind(await asyncio.to_thread(get_state, self.conn, key))
        url: str | None = self.client.list_url(kind, sort=wire_field, limit=self.settings.poll_page_size,
                                               expand=EXPAND_FIELDS[kind])
        records: list[RepoRecord | PaperRecord] = []
        requests = 0
        while url and requests < self.settings.poll_max_pages:
            page = await self.client.get_page(url)
            requests += 1
            batch = _parse_all(kind, page.items)
            fresh = [r for r in batch if stop_before is None or _stamp(r, wire_field) >= stop_before]
            records += fresh
            # No watermark yet (first run): one page is the baseline, not the whole Hub.
            if stop_before is None or len(fresh) < len(batch):
                break
            url = page.next_url
        return records, requests

    async def _papers(self) -> tuple[list[RepoRecord | PaperRecord], int]:
        if not self.daily_papers_missing:
            try:
                page = await self.client.get_page(self.client.url("/api/daily_papers",
                                                                  [("limit", str(DAILY_PAPERS_LIMIT))]))
                return _parse_all(Kind.PAPER, page.items), 1
            except HubError as exc:
                if exc.status != 404:
                    raise
                self.daily_papers_missing = True  # a Hub (or fake) without daily papers: use /api/papers
        page = await self.client.get_page(self.client.list_url(Kind.PAPER, limit=DAILY_PAPERS_LIMIT))
        return _parse_all(Kind.PAPER, page.items), 1

    def _plan(self) -> list[tuple[Kind, str]]:
        plan = [(kind, "createdAt") for kind in REPO_KINDS]
        if self.tick % self.settings.updates_every == 0:
            plan += [(kind, "lastModified") for kind in REPO_KINDS]
        if self.tick % self.settings.papers_every == 0:
            plan.append((Kind.PAPER, "publishedAt"))
        return plan

    async def poll_once(self) -> PollStats:
        """One interval's requests (fetched concurrently, paced by the client) and their commits."""
        started = time.monotonic()
        stats = PollStats()
        plan = self._plan()
        self.tick += 1

        async def fetch(kind: Kind, wire_field: str) -> tuple[list, int]:
            return await (self._papers() if kind is Kind.PAPER else self._walk(kind, wire_field))

        results = await asyncio.gather(*(fetch(k, f) for k, f in plan), return_exceptions=True)
        for (kind, wire_field), result in zip(plan, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                stats.errors += 1
                log.warning("watch_poll_failed", kind=kind.value, field=wire_field, error=str(result))
                continue
            records, requests = result
            stats.requests += requests
            if not records:
                continue
            newest = max(_stamp(r, wire_field) for r in records)
            state = {f"poll:{kind.value}:{wire_field}": newest} if newest and kind is not Kind.PAPER else {}
            # Shielded: once a page is being committed, shutdown waits for it (commit is milliseconds).
            new, updated, alerts = await asyncio.shield(asyncio.to_thread(
                self._commit_max, kind, records, state))
            stats.new += new
            stats.updated += updated
            stats.alerts += alerts
            stats.kinds[f"{kind.plural}:{wire_field}"] = len(records)
        stats.seconds = time.monotonic() - started
        if stats.new or stats.alerts or stats.errors:
            log.info("watch_poll", requests=stats.requests, new=stats.new, updated=stats.updated,
                     alerts=stats.alerts, errors=stats.errors, seconds=round(stats.seconds, 3))
        return stats

    def _commit_max(self, kind: Kind, records: list, state: dict[str, str]) -> tuple[int, int, int]:
        # The watermark only moves forward, even if an overlap re-read returns older items.
        if state:
            (key, value), = state.items()
            old = get_state(self.conn, key)
            if old and old > value:
                state = {}
        return commit_records(self.conn, kind, records, self.hooks, state)

    async def run(self, stop: asyncio.Event, config: Config | None = None) -> None:
        log.info("watch_poll_started", interval=self.settings.watch_interval_seconds)
        while not stop.is_set():
            started = time.monotonic()
            if config is not None:
                # The daemon reloads `config` in place on SIGHUP: pick up a new interval or page size.
                try:
                    self.settings = settings_from_config(config)
                except ConfigError as exc:
                    log.error("alert_settings_invalid", error=str(exc))
            interval = self.settings.watch_interval_seconds
            tick = asyncio.create_task(self.poll_once())
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({tick, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if tick not in done:
                # Stopping mid-request: drop the fetch (a commit in progress is shielded and finishes).
                tick.cancel()
                try:
                    await tick
                except (asyncio.CancelledError, Exception):
                    pass
                break
            stopper.cancel()
            try:
                tick.result()
            except Exception as exc:
                log.error("watch_poll_error", error=f"{type(exc).__name__}: {exc}")
            remaining = interval - (time.monotonic() - started)
            if remaining > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=remaining)
                except TimeoutError:
                    pass
        log.info("watch_poll_stopped", ticks=self.tick)


async def run_poll(config: Config, client: HubClient, stop: asyncio.Event,
                   settings: AlertSettings | None = None) -> None:
    settings = settings or settings_from_config(config)
    reload_watches(config)
    poller = WatchPoller(config.db_path, client, settings)
    try:
        await poller.run(stop, config)
    finally:
        poller.close()


@dataclass
class RefreshResult:
    kind: str
    id: str
    status: str  # new | updated | unchanged | deleted | missing
    alerts: int = 0


async def refresh_repo(client: HubClient, kind: Kind, repo_id: str, write: Writer,
                       hooks: Sequence[PageHook] | None = None) -> RefreshResult:
    """Fetch one repo now and write it like a crawled page (alerts included).

    `write(fn, *args)` runs `fn(conn, *args)` on a connection that may write (the API's
    writer thread, or `asyncio.to_thread` around a private connection); the HTTP fetch
    happens before, on the event loop, so no write lock is held across the network.
    """
    body = await client.repo_info(kind, repo_id)
    if body is None:
        gone = await write(_mark_gone, kind, repo_id)
        return RefreshResult(kind.value, repo_id, "deleted" if gone else "missing")
    obj = project(kind, body) if kind.is_repo else body
    record = parse_paper(obj) if kind is Kind.PAPER else parse_repo(kind, obj)
    new, updated, alerts = await write(commit_records, kind, [record], _hooks() if hooks is None else hooks)
    status = "new" if new else "updated" if updated else "unchanged"
    return RefreshResult(kind.value, record.id, status, alerts)


def _mark_gone(conn: sqlite3.Connection, kind: Kind, repo_id: str) -> bool:
    with write_tx(conn):
        return mark_deleted(conn, kind, repo_id, utcnow())
