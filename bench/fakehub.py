"""Fake Hub benchmark: build cost at Hub scale, first-page latency, and items/s served over loopback.

    .venv/bin/python bench/fakehub.py [--models 2000000] [--walk 200000] [--page 1000]

The corpus is built in this process (RSS and build seconds are this process's);
the fake Hub then serves from here while a client in a child process times the
first page of several sorts and walks `--walk` items by following `Link`
headers, parsing every page, the way the crawler does. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The crawler's expand set (core.hub.records.EXPAND_FIELDS for models).
CRAWLER_EXPAND = ("author", "createdAt", "disabled", "downloads", "downloadsAllTime", "gated", "lastModified",
                  "library_name", "likes", "pipeline_tag", "private", "safetensors", "sha", "tags", "trendingScore")


def _figures(times: list[float]) -> dict[str, float]:
    return {"first_ms": round(times[0] * 1000, 1), "median_ms": round(statistics.median(times) * 1000, 1)}


async def client(url: str, walk: int, page: int) -> dict[str, object]:
    import aiohttp
    import orjson

    results: dict[str, object] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:

        async def fetch(target: str) -> tuple[float, list, str | None, int]:
            started = time.perf_counter()
            async with session.get(target) as response:
                body = await response.read()
                link = response.headers.get("Link")
            items = orjson.loads(body)
            elapsed = time.perf_counter() - started
            return elapsed, items, (link[1:link.index(">")] if link else None), len(body)

        latencies = {}
        for sort in ("trendingScore", "createdAt", "lastModified", "likes", "downloads"):
            times = [(await fetch(f"{url}/api/models?sort={sort}&limit={page}"))[0] for _ in range(5)]
            latencies[sort] = _figures(times)
        for name, query in (("filter=gguf", "filter=gguf"), ("search=coder", "search=coder"),
                            ("author=mradermacher", "author=mradermacher")):
            times = [(await fetch(f"{url}/api/models?{query}&limit={page}"))[0] for _ in range(3)]
            latencies[name] = _figures(times)
        results["first_page"] = latencies

        walks = {}
        expand = "&".join(f"expand[]={f}" for f in CRAWLER_EXPAND)
        for name, query in (("default, sort=createdAt", f"sort=createdAt&limit={page}"),
                            ("expand (crawler fields), sort=createdAt", f"sort=createdAt&limit={page}&{expand}"),
                            ("default, sort=trendingScore", f"limit={page}")):
            target: str | None = f"{url}/api/models?{query}"
            items = pages = size = 0
            started = time.perf_counter()
            while target and items < walk:
                _, batch, target, nbytes = await fetch(target)
                items += len(batch)
                size += nbytes
                pages += 1
            elapsed = time.perf_counter() - started
            walks[name] = {"items": items, "pages": pages, "seconds": round(elapsed, 2),
                           "items_per_s": round(items / elapsed), "bytes_per_item": round(size / max(items, 1))}
        results["walk"] = walks
    return results


async def serve_and_measure(args: argparse.Namespace) -> None:
    import psutil

    from core.hub.fake import FakeHub

    started = time.perf_counter()
    hub = FakeHub(models=args.models, datasets=args.datasets, spaces=args.spaces, papers=args.papers, seed=0)
    build = time.perf_counter() - started
    rss = psutil.Process().memory_info().rss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"corpus: models={args.models:,} datasets={args.datasets:,} spaces={args.spaces:,} papers={args.papers:,}")
    print(f"build (incl. sort orders): {build:.1f} s   RSS after build: {rss / 2**20:,.0f} MiB   "
          f"peak RSS: {peak / 2**20:,.0f} MiB")
    url = await hub.start("127.0.0.1", 0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", url, "--walk", str(args.walk), "--page", str(args.page),
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    await hub.close()
    results = json.loads(out)
    print(f"first page, limit={args.page} (client in another process, parse included):")
    for sort, figures in results["first_page"].items():
        print(f"  {sort:<22} first {figures['first_ms']:>7.1f} ms   median of repeats {figures['median_ms']:>7.1f} ms")
    print(f"full walk of {args.walk:,} items, pages of {args.page}, following Link:")
    for name, figures in results["walk"].items():
        print(f"  {name:<42} {figures['items_per_s']:>8,} items/s   {figures['pages']} pages in "
              f"{figures['seconds']} s   {figures['bytes_per_item']} B/item")
    print(f"requests served: {hub.request_count}   final RSS: {psutil.Process().memory_info().rss / 2**20:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2_000_000)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=500)
    parser.add_argument("--walk", type=int, default=200_000)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client(args.client, args.walk, args.page))))
    else:
        asyncio.run(serve_and_measure(args))


if __name__ == "__main__":
    main()
