"""`python main.py serve`: the REST API, the search page (/ui) and the docs (/docs) on one port."""

from __future__ import annotations

import argparse
import asyncio
import signal

from core.cli import UsageError
from core.config import config_from_args


def add_address_arguments(parser: argparse.ArgumentParser) -> None:
    """The API's address flags, shared by `serve` and `daemon` (whose API child binds them)."""
    parser.add_argument("--host", help="API address to bind (default: config api.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default: config api.port, 8000)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback address without an API key (anyone can then start crawls)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_address_arguments(parser)
    parser.add_argument("--workers", type=int,
                        help="API processes sharing the port "
                             "(default: config api.workers; auto = one per core, at most 4)")


def run(args: argparse.Namespace) -> int:
    from core.api.server import InsecureBindError, check_bind, run_api
    from core.api.workers import MAX_WORKERS
    from core.logs import configure_logging

    config = config_from_args(args)
    host = args.host or config.api_host
    port = config.api_port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {port}")
    if args.workers is not None and not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}, got {args.workers}")
    try:
        check_bind(config, host, insecure=args.insecure)
    except InsecureBindError as exc:
        raise UsageError(str(exc)) from exc
    configure_logging("INFO", component="api")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        def ready(url: str) -> None:
            print(f"PROMETHEUS API on {url}  (search page {url}/ui, docs {url}/docs)", flush=True)

        await run_api(config, host, port, stop, insecure=args.insecure, ready=ready, workers=args.workers)

    try:
        asyncio.run(serve())
    except OSError as exc:  # port in use, address not available
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return 0
