"""`python main.py crawl`: mirror the Hub (or the fake Hub named by HF_ENDPOINT) into SQLite."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from core.cli import UsageError
from core.cli.output import print_json, print_table
from core.config import config_from_args
from core.crawler import MODES, Crawler, SyncResult, standard_hooks
from core.hub.client import HubClient, HubError
from core.kinds import ALL_KINDS, Kind, parse_kind
from core.logs import configure_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", dest="kind", help="models|datasets|spaces|papers (default: all)")
    parser.add_argument("--mode", choices=MODES, default="incremental",
                        help="full: enumerate everything, mark deletions; incremental (default): "
                             "what changed since the last sync (a full sync the first time)")
    parser.add_argument("--limit", type=int, help="stop after N items per kind (a sample; marks no deletions)")
    parser.add_argument("--endpoint", help="Hub URL (default: $HF_ENDPOINT, config, https://huggingface.co)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


class _Progress:
    """One status line on a terminal, rewritten in place."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, result: SyncResult) -> None:
        if not self.enabled:
            return
        done = result.new + result.updated + result.unchanged
        rate = done / max(time.monotonic() - self.started, 1e-6)
        sys.stderr.write(f"\r{result.kind:<9} {done:>10,} items  {result.new:>9,} new  "
                         f"{result.pages:>6,} pages  {rate:>8,.0f}/s ")
        sys.stderr.flush()

    def reset(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
        self.started = time.monotonic()


def run(args: argparse.Namespace) -> int:
    kinds: tuple[Kind, ...] = ALL_KINDS
    if args.kind:
        try:
            kinds = (parse_kind(args.kind),)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if args.limit is not None and args.limit <= 0:
        raise UsageError("--limit must be a positive number")
    config = config_from_args(args)
    configure_logging("WARNING")
    endpoint = args.endpoint or config.hub_endpoint
    progress = None if args.json else _Progress()
    results, failure = asyncio.run(_crawl(config, endpoint, kinds, args.mode, args.limit, progress))
    if args.json:
        print_json({kind: result.summary() for kind, result in results.items()})
    elif results:
        rows = [[kind, r.new, r.updated, r.deleted, r.unchanged, r.requests, f"{r.seconds:.1f}", r.status]
                for kind, r in results.items()]
        print_table(["kind", "new", "updated", "deleted", "unchanged", "requests", "seconds", "status"], rows)
    if failure is not None:
        # Pages committed before the failure stay; a full sync resumes after the last of them.
        print(f"main.py crawl: error: {failure}", file=sys.stderr)
        return 1
    return 0 if all(r.status in ("ok", "limited") for r in results.values()) else 1


async def _crawl(config, endpoint, kinds, mode, limit, progress) -> tuple[dict[str, SyncResult], str | None]:
    """The kinds' results up to the first that failed, and why that one failed (None: none did)."""
    results: dict[str, SyncResult] = {}
    async with HubClient.from_config(config, endpoint) as client:
        crawler = Crawler(config.db_path, client, hooks=standard_hooks(), page_size=config.page_size,
                          progress=progress)
        try:
            for kind in kinds:
                try:
                    results[kind.plural] = await crawler.sync(kind, mode, limit=limit)
                except HubError as exc:
                    return results, f"{kind.plural}: {exc}"
                finally:
                    if progress:
                        progress.reset()
        finally:
            crawler.close()
    return results, None
