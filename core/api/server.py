"""Serving the API: `run_api` binds, serves until `stop` is set, then drains in-flight requests.

The daemon's API child calls `run_api` directly; `python main.py serve` wraps it with signal
handling. With no API key configured, writes are open to whoever can connect, so the server
refuses a non-loopback address unless the operator says `insecure=True` (`--insecure`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from core.api.app import MAX_HEADER_FIELD, MAX_REQUEST_LINE, create_app
from core.api.errors import problem_response
from core.api.workers import READY_TIMEOUT_SECONDS, WorkerPool, worker_count
from core.config import Config

log = structlog.get_logger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
__all__ = ["MAX_HEADER_FIELD", "MAX_REQUEST_LINE", "ProblemAppRunner", "run_api"]


class _ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering what its parser refuses (a request line over
    MAX_REQUEST_LINE, a header over MAX_HEADER_FIELD, a malformed request) with a problem document
    instead of `text/plain`: those requests never reach the app's error middleware."""

    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if a response was already sent
        if status >= 500:
            detail = "internal error (logged on the server)"
        elif isinstance(exc, LineTooLong):
            detail = (f"the request line or a header is too long (at most {MAX_REQUEST_LINE} bytes for the "
                      f"request line, {MAX_HEADER_FIELD} for a header)")
        else:
            detail = f"the request could not be parsed: {type(exc).__name__ if exc else 'malformed'}"
        response = problem_response(status, detail)
        response.force_close()
        return response


class _ProblemServer(Server):
    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """An AppRunner whose low-level parse errors are `application/problem+json` (see `_ProblemRequestHandler`)."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _ProblemServer  # same object and state; only the handler it makes differs
        return server


class InsecureBindError(ValueError):
    """A non-loopback bind without an API key and without --insecure."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or "" / 0.0.0.0 (every interface)


def check_bind(config: Config, host: str, *, insecure: bool) -> None:
    if not config.api_key and not is_loopback(host) and not insecure:
        raise InsecureBindError(
            f"refusing to listen on {host or 'every interface'} without an API key: set PROMETHEUS_API_KEY "
            f"(or api.key), bind 127.0.0.1, or pass --insecure to accept unauthenticated writes")


async def run_api(config: Config, host: str, port: int, stop: asyncio.Event, *, insecure: bool = False,
                  ready: Callable[[str], Any] | None = None, app: web.Application | None = None,
                  workers: int | None = None, reuse_port: bool = False) -> None:
    """Serve until `stop` is set. `ready(url)` is called once listening (the URL has the real port when
    `port` is 0); `app` replaces the default application (tests, benchmarks). `workers` processes
    share the port (default: config `api.workers`; see `core.api.workers`); a custom `app` is served
    by this process alone."""
    check_bind(config, host, insecure=insecure)
    if workers is None:
        workers = 1 if app is not None else worker_count(config.raw)
    reuse_port = reuse_port or workers > 1
    if not config.api_key and not is_loopback(host):
        log.warning("api_insecure_bind", host=host, hint="no API key: anyone who can connect can start work")
    application = app if app is not None else create_app(config)
    # access_log=None: one log line per request would flood the journal under load; /metrics counts them.
    # max_line_size: aiohttp's default (8 KiB) rejects long-but-valid query strings in its parser, before
    # our middleware; 64 KiB lets every documented parameter reach validation, and the runner answers
    # anything longer with a problem document rather than aiohttp's text/plain 400.
    runner = ProblemAppRunner(application, access_log=None, handle_signals=False,
                              shutdown_timeout=SHUTDOWN_GRACE_SECONDS, max_line_size=MAX_REQUEST_LINE,
                              max_field_size=MAX_HEADER_FIELD)
    await runner.setup()
    pool: WorkerPool | None = None
    keeper: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, host, port, shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
                           reuse_port=reuse_port or None)
        await site.start()
        url = _url(runner, host, port)
        if workers > 1:  # the others bind the port this one got (port 0 picks one)
            pool = WorkerPool(config, host, _bound_port(runner, port), insecure, workers - 1)
            pool.start()
            if not await asyncio.to_thread(pool.wait_listening):
                log.warning("api_workers_slow", waited_seconds=READY_TIMEOUT_SECONDS)
            keeper = asyncio.create_task(pool.keep_running())
        log.info("api_listening", url=url, auth="api_key" if config.api_key else "none (loopback only)",
                 cors=config.api_cors_origins or "off", workers=workers)
        if ready is not None:
            ready(url)
        await stop.wait()
        log.info("api_stopping", grace_seconds=SHUTDOWN_GRACE_SECONDS)
    finally:
        if pool is not None:
            if keeper is not None:
                keeper.cancel()
            await asyncio.to_thread(pool.stop, SHUTDOWN_GRACE_SECONDS)
        # Stops accepting, lets in-flight requests finish (up to the grace period), runs on_cleanup.
        await runner.cleanup()
    log.info("api_stopped")


def _bound_port(runner: web.AppRunner, port: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return port


def _url(runner: web.AppRunner, host: str, port: int) -> str:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_host, bound_port = address[0], address[1]
            shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
            return f"http://{shown}:{bound_port}"
    return f"http://{host}:{port}"
