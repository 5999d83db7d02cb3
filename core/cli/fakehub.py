"""`python main.py fakehub`: serve the seeded fake Hub until SIGINT/SIGTERM.

Prints one line with its URL on stdout once it listens (scripts and benches
wait for that line), nothing else on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _window(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--models", type=_count, default=2000, help="seeded models (default 2000)")
    parser.add_argument("--datasets", type=_count, default=1000, help="seeded datasets (default 1000)")
    parser.add_argument("--spaces", type=_count, default=1000, help="seeded Spaces (default 1000)")
    parser.add_argument("--papers", type=_count, default=500, help="seeded daily papers (default 500)")
    parser.add_argument("--seed", type=_count, default=0, help="corpus and fault seed (default 0)")
    limits = parser.add_argument_group("rate limit (like the Hub's `api` bucket)")
    limits.add_argument("--quota", type=_positive_int, default=None,
                        help="requests allowed per window (default: unlimited)")
    limits.add_argument("--window", type=_window, default=300.0, help="window length in seconds (default 300)")
    faults = parser.add_argument_group("fault injection (applies to /api/*)")
    faults.add_argument("--error-rate", type=_rate, default=0.0, help="fraction answered 500/502/503")
    faults.add_argument("--slow-rate", type=_rate, default=0.0, help="fraction answered after --slow-seconds")
    faults.add_argument("--slow-seconds", type=_seconds, default=0.0, help="delay of a slow answer")
    faults.add_argument("--drop-rate", type=_rate, default=0.0, help="fraction whose connection is dropped")
    faults.add_argument("--truncate-rate", type=_rate, default=0.0,
                        help="fraction whose body is cut short under a full Content-Length")


async def _serve(args: argparse.Namespace) -> int:
    from core.hub.fake import FakeHub, FaultConfig

    faults = FaultConfig(error_rate=args.error_rate, slow_rate=args.slow_rate, slow_seconds=args.slow_seconds,
                         drop_rate=args.drop_rate, truncate_rate=args.truncate_rate, seed=args.seed)
    hub = FakeHub(models=args.models, datasets=args.datasets, spaces=args.spaces, papers=args.papers,
                  seed=args.seed, quota=args.quota, window=args.window, faults=faults)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        url = await hub.start(args.host, args.port)
    except OSError as exc:
        print(f"main.py fakehub: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    print(f"fake hub listening on {url} (models={args.models}, datasets={args.datasets}, spaces={args.spaces}, "
          f"papers={args.papers}, seed={args.seed})", flush=True)
    try:
        await stop.wait()
    finally:
        await hub.close()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_serve(args))
