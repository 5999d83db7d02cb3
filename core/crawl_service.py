"""The crawler child's work: scheduled syncs, queued crawl tasks, the alerts' watch poll and sender, the hot sweep.

Schedules are derived from `crawl_history` rather than kept in memory, so a
restarted child (crash, deploy, kill -9) neither re-crawls what it just did nor
forgets a sync that is due; a full sync interrupted half-way is resumed by the
crawler from `crawl_state`. Syncs run one at a time (two walks of the same kind
would share its resume row); queued tasks are taken between kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
import structlog

from core.alerts import run_sender, run_watch_poll
from core.config import Config
from core.crawler import FULL, INCREMENTAL, MODES, Crawler, SyncResult, standard_hooks
from core.hub.client import HubClient
from core.kinds import ALL_KINDS, Kind, parse_kind
from core.store import connect, write_tx
from core.store.db import parse_ts
from core.tasks import Task, claim_task, finish_task, report_progress
from core.trends import hot_sweep

log = structlog.get_logger(__name__)

TASK_POLL_SECONDS = 2.0  # how soon a crawl asked for through the API starts
FAILURE_RETRY_SECONDS = (30.0, 60.0, 120.0, 300.0, 900.0)  # Hub down: retry sooner than the next interval


@dataclass(frozen=True)
class Plan:
    mode: str | None  # None: nothing due
    kinds: tuple[Kind, ...]
    wait: float  # seconds until the next sync is due (when mode is None)


def plan_sync(now: datetime, last_ok: dict[tuple[str, str], datetime], resuming: set[str],
              crawl_interval: float, full_interval: float) -> Plan:
    """What to sync now. Pure: `last_ok` maps (kind, mode) to the end of its last successful sync.

    A full sync in progress (`resuming`) or one older than the full interval comes first;
    otherwise an incremental sync of each kind whose last sync of any mode is older than the crawl
    interval (a full sync refreshes everything an incremental one would).
    """
    def age(kind: Kind, *modes: str) -> float | None:
        stamps = [last_ok[(kind.value, mode)] for mode in modes if (kind.value, mode) in last_ok]
        return (now - max(stamps)).total_seconds() if stamps else None

    full: list[Kind] = []
    for kind in ALL_KINDS:
        full_age = age(kind, FULL)
        if kind.value in resuming or (full_age is not None and full_age >= full_interval):
            full.append(kind)
    if full:
        return Plan(FULL, tuple(full), 0.0)
    waits: list[float] = []
    due: list[Kind] = []
    for kind in ALL_KINDS:
        since = age(kind, FULL, INCREMENTAL)
        if since is None or since >= crawl_interval:
            due.append(kind)  # never synced: the crawler turns this into a full sync
        else:
            waits.append(crawl_interval - since)
        full_age = age(kind, FULL)
        if full_age is not None:
            waits.append(full_interval - full_age)
    if due:
        return Plan(INCREMENTAL, tuple(due), 0.0)
    return Plan(None, (), max(0.0, min(waits, default=crawl_interval)))


def sync_history(conn: sqlite3.Connection) -> tuple[dict[tuple[str, str], datetime], set[str]]:
    last_ok: dict[tuple[str, str], datetime] = {}
    for row in conn.execute("SELECT kind, mode, max(finished_at) FROM crawl_history WHERE status = 'ok' "
                            "GROUP BY kind, mode"):
        with contextlib.suppress(ValueError, TypeError):
            last_ok[(row[0], row[1])] = parse_ts(row[2])
    resuming = {row[0] for row in conn.execute(
        "SELECT kind FROM crawl_state WHERE mode = ? AND next_url IS NOT NULL", (FULL,))}
    return last_ok, resuming


def requeue_orphaned_tasks(conn: sqlite3.Connection) -> int:
    """Crawl tasks left running by a crawler that died: queue them again now instead of after their lease.

    Only this child runs crawl tasks, so a running task whose worker is gone was interrupted.
    """
    rows = conn.execute("SELECT id, worker_pid FROM tasks WHERE type = 'crawl' AND status = 'running'").fetchall()
    orphans = [row[0] for row in rows if not (row[1] and psutil.pid_exists(row[1]))]
    if orphans:
        with write_tx(conn):
            conn.executemany("UPDATE tasks SET status = 'queued', lease_until = NULL, worker_pid = NULL "
                             "WHERE id = ? AND status = 'running'", [(task_id,) for task_id in orphans])
        log.info("crawl_tasks_requeued", ids=orphans)
    return len(orphans)


def _task_request(task: Task) -> tuple[tuple[Kind, ...], str, int | None]:
    params = task.params or {}
    kind_text = params.get("kind") or params.get("type")
    kinds = ALL_KINDS if kind_text in (None, "", "all") else (parse_kind(str(kind_text)),)
    mode = str(params.get("mode") or INCREMENTAL)
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    limit = params.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError("limit must be a positive integer")
    return kinds, mode, limit


class CrawlService:
    def __init__(self, config: Config, client: HubClient, stop: asyncio.Event) -> None:
        self.config = config
        self.client = client
        self.stop = stop
        self.crawler = Crawler(config.db_path, client, hooks=standard_hooks(), page_size=config.page_size)
        self.conn = connect(config.db_path)
        self.failures = 0

    def close(self) -> None:
        self.crawler.close()
        self.conn.close()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), max(0.0, seconds))

    async def run_tasks(self) -> None:
        """Every queued crawl task, oldest first, until none is left or we are stopping."""
        while not self.stop.is_set():
            task = claim_task(self.conn, "crawl")
            if task is None:
                return
            await self._run_task(task)

    async def _run_task(self, task: Task) -> None:
        log.info("crawl_task_started", task=task.id, params=task.params)
        try:
            kinds, mode, limit = _task_request(task)
        except ValueError as exc:
            finish_task(self.conn, task.id, error=str(exc))
            return

        def progress(result: SyncResult) -> None:
            report_progress(self.conn, task.id, {"kind": result.kind, "pages": result.pages, "new": result.new,
                                                 "updated": result.updated, "unchanged": result.unchanged})

        results: dict[str, Any] = {}
        self.crawler.progress = progress
        try:
            for kind in kinds:
                result = await self.crawler.sync(kind, mode, limit=limit)
                results[kind.plural] = {**result.summary(), "status": result.status}
                if result.status == "stopped":
                    # Interrupted by shutdown: run it again after the restart (a full sync resumes).
                    with write_tx(self.conn):
                        self.conn.execute("UPDATE tasks SET status = 'queued', lease_until = NULL, "
                                          "worker_pid = NULL WHERE id = ?", (task.id,))
                    log.info("crawl_task_requeued", task=task.id)
                    return
        except Exception as exc:
            log.error("crawl_task_failed", task=task.id, error=str(exc))
            finish_task(self.conn, task.id, result=results or None, error=f"{type(exc).__name__}: {exc}")
            return
        finally:
            self.crawler.progress = None
        finish_task(self.conn, task.id, result=results)
        log.info("crawl_task_finished", task=task.id)

    async def run_scheduled(self, plan: Plan) -> None:
        assert plan.mode is not None
        log.info("scheduled_sync", mode=plan.mode, kinds=[k.value for k in plan.kinds])
        for kind in plan.kinds:
            if self.stop.is_set():
                return
            await self.crawler.sync(kind, plan.mode)
            await self.run_tasks()  # an API request waits at most one kind's sync
        if plan.mode == INCREMENTAL and not self.stop.is_set():
            # Counters of busy repos (downloads, likes) that lastModified walks never revisit.
            await hot_sweep(self.client, self.config.db_path, self.stop, pages=self.config.hot_sweep_pages)

    async def loop(self) -> None:
        crawl_interval = self.config.crawl_interval_hours * 3600
        full_interval = self.config.full_sync_interval_hours * 3600
        while not self.stop.is_set():
            await self.run_tasks()
            last_ok, resuming = sync_history(self.conn)
            plan = plan_sync(datetime.now(UTC), last_ok, resuming, crawl_interval, full_interval)
            if plan.mode is None:
                await self._sleep(min(plan.wait, TASK_POLL_SECONDS))
                continue
            try:
                await self.run_scheduled(plan)
                self.failures = 0
            except Exception as exc:  # the Hub is down, a page keeps failing: wait, then try again
                delay = FAILURE_RETRY_SECONDS[min(self.failures, len(FAILURE_RETRY_SECONDS) - 1)]
                self.failures += 1
                log.error("scheduled_sync_failed", error=f"{type(exc).__name__}: {exc}", retry_in=delay)
                deadline = asyncio.get_running_loop().time() + min(delay, crawl_interval)
                while not self.stop.is_set() and asyncio.get_running_loop().time() < deadline:
                    await self.run_tasks()
                    await self._sleep(min(TASK_POLL_SECONDS, deadline - asyncio.get_running_loop().time()))


async def run_crawl_service(config: Config, stop: asyncio.Event) -> None:
    """The crawler child: returns once `stop` is set and the page in hand is committed."""
    async with HubClient(config.hub_endpoint, config.hub_token) as client:
        service = CrawlService(config, client, stop)
        requeue_orphaned_tasks(service.conn)
        jobs = [asyncio.create_task(service.loop(), name="crawl-loop"),
                asyncio.create_task(run_watch_poll(config, client, stop), name="watch-poll"),
                asyncio.create_task(run_sender(config, stop), name="alert-sender")]

        async def stop_crawler() -> None:
            await stop.wait()
            service.crawler.request_stop()  # finish and commit the page in hand

        stopper = asyncio.create_task(stop_crawler())
        try:
            # Any job failing fails the child: the supervisor restarts it with backoff, and counts it.
            done, _ = await asyncio.wait(jobs, return_when=asyncio.FIRST_EXCEPTION)
            for job in done:
                if job.exception() is not None:
                    raise job.exception()  # type: ignore[misc]
            await asyncio.gather(*jobs)
        finally:
            stopper.cancel()
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, stopper, return_exceptions=True)
            service.close()
