"""`python main.py embed`: run the embedding worker in the foreground (or drain the queue and exit)."""

from __future__ import annotations

import argparse
import asyncio
import signal

from core.cli.output import print_json
from core.config import config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--until-idle", action="store_true",
                        help="exit once the queue is empty and the index is up to date")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


async def _main(args: argparse.Namespace) -> dict:
    from core.embedder import run_worker

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)  # finish the batch in hand, then return
    return await run_worker(config_from_args(args), stop, until_idle=args.until_idle)


def run(args: argparse.Namespace) -> int:
    from core.logs import configure_logging

    configure_logging()
    result = asyncio.run(_main(args))
    if args.json:
        print_json(result)
    else:
        index = result.get("index") or {}
        print(f"embedded {result['embedded']:,} items ({result['skipped']:,} unchanged, {result['failed']:,} failed, "
              f"{result['parked']:,} parked) in {result['seconds']:.1f}s, {result['texts_per_second']:.0f} texts/s")
        if index:
            print(f"index: {index.get('type', 'updated')} {index.get('count', 0):,} vectors")
    return 0
