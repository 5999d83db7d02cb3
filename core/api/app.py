"""The aiohttp application: middlewares, shared state, and routes discovered from `core.api.routes`.

Shared state, for route modules (string keys, as the other parts of the system read them):
    app["config"]   core.config.Config
    app["db"]       core.api.db.ApiDatabase (read-only reader pool + one writer)
    app["cache"]    core.api.cache.ResultCache (search and list results, invalidated by data changes)
    app["search"]   core.search.SearchEngine, or None when search is not available
    app["search_pool"] the threads searches run on (`search_thread(request, fn, ...)`)
    app["metrics"]  core.api.metrics.ApiMetrics
    app["openapi"]  the assembled OpenAPI document

Request pipeline: timing/metrics -> problem+json errors -> rate limit -> CORS preflight ->
handler. Headers that every response carries (RateLimit, CORS, security) are added in
`on_response_prepare`, which also reaches streamed responses (`/export`) and error pages.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning

from core.api.cache import CachePolicy, ResultCache
from core.api.db import ApiDatabase
from core.api.errors import Problem, from_problem, problem_response
from core.api.metrics import ApiMetrics
from core.api.openapi import build_document
from core.api.ratelimit import RateLimiter, RateLimitPolicy
from core.api.routes import route_modules
from core.config import Config

log = structlog.get_logger(__name__)

# The documented contract is app["config"], app["search"], ... (see the module docstring).
warnings.filterwarnings("ignore", category=NotAppKeyWarning)

MAX_BODY_BYTES = 1 << 20
# aiohttp's parser refuses longer request lines and header fields (default 8190 bytes) before any middleware
# runs. 64 KiB admits every documented parameter at its documented maxLength, percent-encoded; the server
# (`core.api.server`) answers what is still too long with a problem document.
MAX_REQUEST_LINE = 65536
MAX_HEADER_FIELD = 16384
HANDLER_ARGS = {"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_HEADER_FIELD}
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})  # monitoring must see an overloaded server too
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'")


def _route_label(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource
    # Unmatched (404/405) requests share one label: arbitrary URLs must not grow the label set.
    if resource is None or getattr(info, "http_exception", None) is not None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def _timing(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        request.app["metrics"].observe_request(_route_label(request), request.method, status,
                                                time.perf_counter() - started)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return from_problem(problem, request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
        detail = {404: f"nothing at {request.path}", 405: f"{request.method} is not allowed on {request.path}",
                  413: f"the body is larger than {MAX_BODY_BYTES} bytes"}.get(exc.status, exc.reason)
        return problem_response(exc.status, detail, instance=request.path, headers=headers)
    except asyncio.CancelledError:
        raise
    except sqlite3.OperationalError as exc:
        # A locked or busy database under a heavy crawl is transient: say so and let the client retry.
        log.warning("api_database_busy", path=request.path, error=str(exc))
        return problem_response(503, "the database is busy, retry shortly", instance=request.path,
                                headers={"Retry-After": "1"})
    except Exception:
        log.exception("api_unhandled_error", path=request.path, method=request.method)
        return problem_response(500, "internal error (logged on the server)", instance=request.path)


@web.middleware
async def _rate_limit(request: web.Request, handler: Any) -> web.StreamResponse:
    limiter: RateLimiter = request.app["ratelimiter"]
    if limiter.policy.enabled and request.path not in UNLIMITED_PATHS:
        verdict = limiter.check(request.remote or "unknown")
        request["ratelimit_headers"] = verdict.headers
        if not verdict.allowed:
            request.app["metrics"].rate_limited.inc()
            raise Problem(429, f"rate limit of {limiter.policy.requests} requests per "
                               f"{limiter.policy.window_seconds:g} s exceeded; retry after {verdict.reset_seconds} s")
    return await handler(request)


def _cors_origin(request: web.Request) -> str | None:
    origins: list[str] = request.app["config"].api_cors_origins
    origin = request.headers.get("Origin")
    if not origins or not origin:
        return None
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


@web.middleware
async def _cors_preflight(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers \
            and _cors_origin(request):
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        })
    return await handler(request)


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in request.get("ratelimit_headers", {}).items():
        response.headers[name] = value
    origin = _cors_origin(request)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Link, RateLimit, RateLimit-Policy, Retry-After, Location"
        if origin != "*":
            response.headers["Vary"] = "Origin"
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", _CSP)


async def _startup(app: web.Application) -> None:
    await asyncio.to_thread(app["db"].open)
    app["cache"].open()  # after db.open: the database exists
    if app["search"] is None:
        app["search"] = await asyncio.to_thread(_make_search_engine, app["config"])
        app["owns_search"] = app["search"] is not None


def _make_search_engine(config: Config) -> Any:
    try:
        from core.search import SearchEngine
    except ImportError as exc:  # search not installed in this build: the rest of the API still serves
        log.warning("search_unavailable", error=str(exc))
        return None
    return SearchEngine(config)


async def _cleanup(app: web.Application) -> None:
    await asyncio.to_thread(app["search_pool"].shutdown, True)
    if app.get("owns_search") and app["search"] is not None:
        await asyncio.to_thread(app["search"].close)
    app["cache"].close()
    await asyncio.to_thread(app["db"].close)


def create_app(config: Config, *, search_engine: Any = None, rate_limit: RateLimitPolicy | None = None,
               readers: int = 4) -> web.Application:
    app = web.Application(middlewares=[_timing, _errors, _rate_limit, _cors_preflight],
                          client_max_size=MAX_BODY_BYTES, handler_args=HANDLER_ARGS)
    app["config"] = config
    app["db"] = ApiDatabase(config.db_path, readers=readers)
    app["search"] = search_engine
    app["owns_search"] = False
    # Searches get their own threads, apart from asyncio's default pool (start-up, cleanup) and the
    # reader pool (details, lists, /health). Measured at 1M items: one thread per core made short
    # searches wait behind long ones (search_get p50 637 ms against 199 ms at ~13 req/s offered), so
    # this is asyncio's default size, cores + 4.
    app["search_pool"] = ThreadPoolExecutor(min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="api-search")
    app["metrics"] = metrics = ApiMetrics()
    app["cache"] = ResultCache(config.db_path, CachePolicy.from_config(config.raw),
                               on_lookup=lambda result: metrics.cache_lookups.labels(result).inc())
    app["ratelimiter"] = RateLimiter(rate_limit or RateLimitPolicy.from_config(config.raw))
    modules = route_modules()
    for module in modules:
        app.add_routes(module.routes)
        setup = getattr(module, "setup", None)
        if setup is not None:
            setup(app)
    app["openapi"] = build_document(modules)
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    app.on_response_prepare.append(_on_prepare)
    return app
