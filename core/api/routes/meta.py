"""Service routes: `/` (what is here), `/health` (real state; 503 when unhealthy), `/stats`, `/metrics`."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from core.api.db import table_exists
from core.api.health import UNHEALTHY, health
from core.api.metrics import exposition, read_snapshot
from core.api.openapi import API_VERSION, operation, response
from core.store.stats import collect_stats

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    counts = await request.app["db"].read(lambda conn: collect_stats(conn)["counts"])
    return web.json_response({
        "name": "PROMETHEUS",
        "version": API_VERSION,
        "items": counts,
        "links": {"docs": "/docs", "openapi": "/openapi.json", "ui": "/ui", "health": "/health",
                  "stats": "/stats", "metrics": "/metrics", "search": "/search/{query}",
                  "models": "/models", "datasets": "/datasets", "spaces": "/spaces", "papers": "/papers",
                  "tasks": "/tasks", "export": "/export"},
    })


@routes.get("/health")
async def get_health(request: web.Request) -> web.Response:
    config = request.app["config"]
    try:
        report = await request.app["db"].read(health, config)
    except sqlite3.Error as exc:
        report = health(None, config, error=str(exc))
    report["checks"]["search"] = {"status": "ok" if request.app["search"] is not None else "degraded",
                                  "available": request.app["search"] is not None}
    if request.app["search"] is None:
        report["problems"].append("search: the search engine is not available")
        if report["status"] == "ok":
            report["status"] = "degraded"
    return web.json_response(report, status=503 if report["status"] == UNHEALTHY else 200)


def _stats(conn: sqlite3.Connection) -> dict[str, Any]:
    stats = collect_stats(conn)
    stats["tasks"] = {f"{t}/{s}": n for t, s, n in conn.execute(
        "SELECT type, status, count(*) FROM tasks GROUP BY 1, 2")}
    if table_exists(conn, "supervisor_children"):
        from core.supervision.records import restart_summary

        stats["restarts"] = restart_summary(conn)
    if table_exists(conn, "alert_outbox"):
        stats["alerts"] = dict(conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status").fetchall())
    return stats


@routes.get("/stats")
async def get_stats(request: web.Request) -> web.Response:
    return web.json_response(await request.app["db"].read(_stats))


@routes.get("/metrics")
async def get_metrics(request: web.Request) -> web.Response:
    metrics = request.app["metrics"]
    metrics.update(await request.app["db"].read(read_snapshot))
    body, content_type = exposition(metrics)
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


_HEALTH = {
    "type": "object",
    "required": ["status", "problems", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "unhealthy"]},
        "problems": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object"},
    },
}

OPENAPI = {
    "/": {"get": operation("What this server offers", tags=["service"],
                           responses={200: response("name, version, item counts and links", {"type": "object"})})},
    "/health": {"get": operation(
        "Health: database, crawl freshness, queues, index, alerts, children", tags=["service"],
        description="200 while `status` is ok or degraded; 503 when unhealthy (the database is unreachable, "
                    "a supervised child was given up on, or a crawl is stale while the daemon runs).",
        responses={200: response("healthy or degraded", _HEALTH), 503: response("unhealthy", _HEALTH)})},
    "/stats": {"get": operation("What the mirror holds: counts, last crawls, queues, tasks", tags=["service"],
                                responses={200: response("statistics", {"type": "object"})})},
    "/metrics": {"get": operation("Prometheus exposition", tags=["service"],
                                  responses={200: response("metrics", {"type": "string"},
                                                           media_type="text/plain")})},
}
