"""`/metrics`: Prometheus exposition of the mirror's state and the API's own latency.

Two sources. The API process observes request and search latency in histograms. Everything
else (crawl counters, queue depths, alerts, restarts) lives in the database, written by other
processes, so it is read at scrape time (`read_snapshot`, on a reader thread) and exposed by a
collector: a scrape always shows the current truth, whichever process did the work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.api.db import table_exists
from core.kinds import ALL_KINDS
from core.store.db import parse_ts

NAMESPACE = "hubmirror"  # not "prometheus_": that prefix belongs to the Prometheus server's own metrics
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Snapshot:
    items: dict[str, int] = field(default_factory=dict)
    crawl_runs: list[tuple[str, str, str, int]] = field(default_factory=list)  # kind, mode, status, runs
    crawl_items: list[tuple[str, str, int]] = field(default_factory=list)  # kind, change, count
    crawl_requests: dict[str, int] = field(default_factory=dict)
    crawl_errors: dict[str, int] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)
    embed_queue: dict[str, int] = field(default_factory=dict)
    tasks: list[tuple[str, str, int]] = field(default_factory=list)
    alerts: dict[str, int] | None = None
    restarts: dict[str, int] | None = None
    children_up: dict[str, int] | None = None


def read_snapshot(conn: sqlite3.Connection) -> Snapshot:
    snap = Snapshot()
    for kind in ALL_KINDS:
        snap.items[kind.plural] = conn.execute(
            f"SELECT count(*) FROM {kind.table} WHERE deleted_at IS NULL").fetchone()[0]
    for row in conn.execute("SELECT kind, mode, status, count(*), sum(new), sum(updated), sum(deleted), "
                            "sum(unchanged), sum(requests), sum(errors) FROM crawl_history GROUP BY 1, 2, 3"):
        kind, mode, status, runs, new, updated, deleted, unchanged, requests, errors = row
        snap.crawl_runs.append((kind, mode, status, runs))
        for change, count in (("new", new), ("updated", updated), ("deleted", deleted), ("unchanged", unchanged)):
            snap.crawl_items.append((kind, change, count or 0))
        snap.crawl_requests[kind] = snap.crawl_requests.get(kind, 0) + (requests or 0)
        snap.crawl_errors[kind] = snap.crawl_errors.get(kind, 0) + (errors or 0)
    for kind, finished in conn.execute("SELECT kind, max(finished_at) FROM crawl_history "
                                       "WHERE status IN ('ok', 'limited') GROUP BY kind"):
        if finished:
            snap.last_success[kind] = parse_ts(finished).timestamp()
    snap.embed_queue = {state: conn.execute("SELECT count(*) FROM embed_jobs WHERE parked = ?", (flag,)).fetchone()[0]
                        for state, flag in (("pending", 0), ("parked", 1))}
    snap.tasks = [tuple(r) for r in conn.execute("SELECT type, status, count(*) FROM tasks GROUP BY 1, 2")]
    if table_exists(conn, "alert_outbox"):
        snap.alerts = dict(conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status").fetchall())
    if table_exists(conn, "restarts"):
        snap.restarts = dict(conn.execute("SELECT child, count(*) FROM restarts GROUP BY child").fetchall())
    if table_exists(conn, "supervisor_children"):
        snap.children_up = {child: int(state == "running") for child, state in
                            conn.execute("SELECT child, state FROM supervisor_children")}
    return snap


class _DatabaseCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        items = GaugeMetricFamily(f"{NAMESPACE}_items", "Live items in the mirror", labels=["kind"])
        for kind, count in s.items.items():
            items.add_metric([kind], count)
        yield items
        runs = CounterMetricFamily(f"{NAMESPACE}_crawl_runs", "Finished crawl runs", labels=["kind", "mode", "status"])
        for kind, mode, status, count in s.crawl_runs:
            runs.add_metric([kind, mode, status], count)
        yield runs
        changes = CounterMetricFamily(f"{NAMESPACE}_crawl_items", "Items seen by crawls, by outcome",
                                      labels=["kind", "change"])
        merged: dict[tuple[str, str], int] = {}
        for kind, change, count in s.crawl_items:
            merged[(kind, change)] = merged.get((kind, change), 0) + count
        for (kind, change), count in merged.items():
            changes.add_metric([kind, change], count)
        yield changes
        requests = CounterMetricFamily(f"{NAMESPACE}_crawl_requests", "Hub requests made by crawls", labels=["kind"])
        errors = CounterMetricFamily(f"{NAMESPACE}_crawl_errors", "Items the crawler could not parse",
                                     labels=["kind"])
        for kind, count in s.crawl_requests.items():
            requests.add_metric([kind], count)
            errors.add_metric([kind], s.crawl_errors.get(kind, 0))
        yield requests
        yield errors
        last = GaugeMetricFamily(f"{NAMESPACE}_crawl_last_success_timestamp_seconds",
                                 "When the last successful crawl of a kind finished", labels=["kind"])
        for kind, ts in s.last_success.items():
            last.add_metric([kind], ts)
        yield last
        queue = GaugeMetricFamily(f"{NAMESPACE}_embed_queue_depth", "Embedding jobs waiting", labels=["state"])
        for state, count in s.embed_queue.items():
            queue.add_metric([state], count)
        yield queue
        tasks = GaugeMetricFamily(f"{NAMESPACE}_tasks", "Task rows by type and status", labels=["type", "status"])
        for task_type, status, count in s.tasks:
            tasks.add_metric([task_type, status], count)
        yield tasks
        if s.alerts is not None:
            alerts = GaugeMetricFamily(f"{NAMESPACE}_alerts", "Alert outbox rows by status", labels=["status"])
            for status, count in s.alerts.items():
                alerts.add_metric([status], count)
            yield alerts
        if s.restarts is not None:
            restarts = CounterMetricFamily(f"{NAMESPACE}_child_restarts", "Child restarts recorded by the supervisor",
                                           labels=["child"])
            for child, count in s.restarts.items():
                restarts.add_metric([child], count)
            yield restarts
        if s.children_up is not None:
            up = GaugeMetricFamily(f"{NAMESPACE}_child_up", "1 when the supervisor reports the child running",
                                   labels=["child"])
            for child, value in s.children_up.items():
                up.add_metric([child], value)
            yield up


class ApiMetrics:
    """One per app, on its own registry, so tests with several apps never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.database = _DatabaseCollector()
        self.registry.register(self.database)
        self.requests = Counter(f"{NAMESPACE}_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.request_seconds = Histogram(f"{NAMESPACE}_http_request_seconds", "Time to answer a request",
                                         ["route"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.search_seconds = Histogram(f"{NAMESPACE}_search_seconds", "Search latency inside the API",
                                        ["mode"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.rate_limited = Counter(f"{NAMESPACE}_http_rate_limited", "Requests refused with 429",
                                    registry=self.registry)
        self.cache_lookups = Counter(f"{NAMESPACE}_api_cache_lookups", "Result cache lookups (this API process)",
                                     ["result"], registry=self.registry)

    def update(self, snapshot: Snapshot) -> None:
        self.database.snapshot = snapshot

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)


def exposition(metrics: ApiMetrics) -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


