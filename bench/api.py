"""API load benchmark: concurrent clients, mixed queries, while a writer commits crawl pages.

    .venv/bin/python bench/api.py [--items 1000000] [--seconds 30] [--clients 100] [--data-dir DIR]

Builds (or reuses, with --data-dir) a mirror of N synthetic items written through the crawler's
page writer (`core.store.items.write_page` with the standard hooks, so FTS, lineage, trends and
alert hooks all run), starts `python main.py serve` in its own process with the rate limit off,
starts a writer process committing crawler-sized pages (updated counters and new repos) for the
whole run, then runs the clients: keyword search (GET and POST with filters), lists with cursors,
item details, papers, the HTML search page and /health. Prints requests/s, p50, p99, errors, per
route and overall, plus the writer's rows/s. Targets: p99 < 100 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.hub.records import parse_paper, parse_repo  # noqa: E402
from core.kinds import Kind  # noqa: E402
from core.store import connect, write_tx  # noqa: E402
from core.store.items import write_page  # noqa: E402

_WORD_TEXT = ("llama mistral qwen gemma phi bert roberta t5 whisper clip vit diffusion stable sdxl flux lora gguf awq "
         "gptq instruct chat code math vision audio speech translation summarization sentiment ner embedding "
         "retrieval rerank tiny small base large xl medical legal finance climate protein chemistry robot agent "
         "tool reasoning multilingual arabic hindi japanese korean french german spanish dataset corpus bench "
         "eval arena leaderboard demo space gradio streamlit")
WORDS = tuple(_WORD_TEXT.split())
AUTHORS = [f"org{i}" for i in range(2000)] + ["TheBloke", "unsloth", "meta-llama", "Qwen", "google", "microsoft"]
PAGE = 1000
SHARES = {Kind.MODEL: 0.70, Kind.DATASET: 0.15, Kind.SPACE: 0.12, Kind.PAPER: 0.03}


def _ts(rng: random.Random) -> str:
    return f"202{rng.randint(2, 5)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00.000Z"


def synthetic(kind: Kind, index: int, rng: random.Random) -> dict[str, Any]:
    words = rng.sample(WORDS, 3)
    if kind is Kind.PAPER:
        return {"id": f"{2300 + index // 99999}.{index % 99999:05d}", "title": " ".join(words).title(),
                "summary": " ".join(rng.choices(WORDS, k=30)), "authors": [f"Author {rng.randint(1, 5000)}"],
                "publishedAt": _ts(rng), "upvotes": rng.randint(0, 500)}
    author = rng.choice(AUTHORS)
    repo_id = f"{author}/{'-'.join(words)}-{index}"
    tags = rng.sample(WORDS, 4)
    if kind is Kind.MODEL and index > 100 and rng.random() < 0.15:
        tags.append(f"base_model:{rng.choice(('finetune', 'quantized', 'adapter'))}:"
                    f"{rng.choice(AUTHORS)}/{'-'.join(rng.sample(WORDS, 3))}-{rng.randint(0, index - 1)}")
    if rng.random() < 0.05:
        tags.append(f"arxiv:2300.{rng.randint(0, 99999):05d}")
    item = {"_id": f"{index:024x}", "id": repo_id, "author": author, "downloads": int(rng.paretovariate(1.2) * 10),
            "likes": int(rng.paretovariate(1.5)), "tags": tags, "createdAt": _ts(rng), "lastModified": _ts(rng),
            "sha": f"{index:040x}", "private": False}
    if kind is Kind.MODEL:
        item["pipeline_tag"] = rng.choice(("text-generation", "text-classification", "image-classification"))
        item["library_name"] = rng.choice(("transformers", "gguf", "diffusers", "peft"))
    if kind is Kind.SPACE:
        item["sdk"] = rng.choice(("gradio", "streamlit", "docker"))
    item["cardData"] = {"description": " ".join(rng.choices(WORDS, k=20))}
    return item


def records(kind: Kind, items: list[dict[str, Any]]) -> list[Any]:
    return [parse_paper(i) if kind is Kind.PAPER else parse_repo(kind, i) for i in items]


def build(db_path: Path, total: int, seed: int = 1) -> dict[str, int]:
    from core.crawler import standard_hooks

    rng = random.Random(seed)
    conn = connect(db_path)
    hooks = standard_hooks()
    counts: dict[str, int] = {}
    started = time.monotonic()
    for kind, share in SHARES.items():
        n = int(total * share)
        counts[kind.plural] = n
        for start in range(0, n, PAGE):
            page = [synthetic(kind, i, rng) for i in range(start, min(start + PAGE, n))]
            with write_tx(conn):
                write_page(conn, kind, records(kind, page), "2025-06-01T00:00:00.000Z", hooks)
        print(f"  {kind.plural}: {n:,} written ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return counts


def writer_main(db_path: str, total: int, seconds: float, out: str) -> None:
    """The crawler's write load: pages of changed counters and new repos, committed back to back."""
    from core.crawler import standard_hooks
    from core.store.db import utcnow

    rng = random.Random(7)
    conn = connect(db_path)
    hooks = standard_hooks()
    n_models = int(total * SHARES[Kind.MODEL])
    existing = [row[0] for row in conn.execute("SELECT id FROM models ORDER BY random() LIMIT 50000")]
    written, pages, next_new = 0, 0, n_models + 1
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        batch = []
        for _ in range(PAGE):
            if rng.random() < 0.1:
                batch.append(synthetic(Kind.MODEL, next_new, rng))
                next_new += 1
            else:
                # An existing repo seen again with new counters and (often) new metadata.
                item = synthetic(Kind.MODEL, rng.randrange(n_models), rng)
                item["id"] = rng.choice(existing)
                item["author"] = item["id"].split("/")[0]
                item["downloads"] = rng.randint(0, 10**6)
                batch.append(item)
        with write_tx(conn):
            write_page(conn, Kind.MODEL, records(Kind.MODEL, batch), utcnow(), hooks)
        written += len(batch)
        pages += 1
        time.sleep(0.05)  # the real crawler waits on the Hub between pages
    conn.close()
    Path(out).write_text(json.dumps({"rows": written, "pages": pages, "rows_per_s": written / seconds}))


def _sample_ids(db_path: Path) -> dict[str, list[str]]:
    conn = connect(db_path)
    ids = {kind.plural: [r[0] for r in conn.execute(
        f"SELECT id FROM {kind.table} WHERE pk % 97 = 0 LIMIT 5000")] for kind in SHARES}
    conn.close()
    return ids


def _request(rng: random.Random, ids: dict[str, list[str]]) -> tuple[str, str, str, Any]:
    roll = rng.random()
    word = rng.choice(WORDS)
    if roll < 0.30:
        return "search_get", "GET", f"/search/{word}%20{rng.choice(WORDS)}?limit=20", None
    if roll < 0.40:
        kind = rng.choice(("models", "datasets", "all"))
        return "search_get_type", "GET", f"/search/{word}?type={kind}&sort=downloads", None
    if roll < 0.55:
        body = {"query": word, "type": "models", "filters": {"pipeline_tag": "text-generation"}, "limit": 20}
        return "search_post", "POST", "/search", body
    if roll < 0.65:
        return "list", "GET", f"/models?limit=50&sort={rng.choice(('downloads', 'likes', 'created'))}", None
    if roll < 0.70:
        return "list_author", "GET", f"/models?author={rng.choice(AUTHORS)}&limit=20", None
    if roll < 0.85:
        kind = rng.choice(("models", "models", "datasets", "spaces"))
        return "detail", "GET", f"/{kind}/{rng.choice(ids[kind])}", None
    if roll < 0.90:
        return "paper", "GET", f"/papers/{rng.choice(ids['papers'])}", None
    if roll < 0.98:
        return "ui", "GET", f"/ui?q={word}", None
    return "health", "GET", "/health", None


async def client(session: aiohttp.ClientSession, base: str, ids: dict[str, list[str]], deadline: float,
                 seed: int, results: list[tuple[str, float, bool]]) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        name, method, path, body = _request(rng, ids)
        started = time.perf_counter()
        ok = False
        try:
            async with session.request(method, base + path, json=body) as response:
                await response.read()
                ok = response.status < 400
                if name == "list" and ok and "Link" in response.headers and rng.random() < 0.5:
                    next_url = response.links.get("next", {}).get("url")
                    if next_url:
                        async with session.get(str(next_url)) as more:
                            await more.read()
                            ok = more.status < 400
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        results.append((name, time.perf_counter() - started, ok))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(base: str, ids: dict[str, list[str]], clients: int, seconds: float) -> dict[str, Any]:
    results: list[tuple[str, float, bool]] = []
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(base + "/search/warmup") as response:  # first search opens connections
            await response.read()
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(client(session, base, ids, deadline, i, results) for i in range(clients)))
        elapsed = time.monotonic() - started
    report: dict[str, Any] = {"requests": len(results), "seconds": round(elapsed, 1),
                              "req_per_s": round(len(results) / elapsed, 1),
                              "errors": sum(1 for _, _, ok in results if not ok)}
    latencies = [t for _, t, _ in results]
    report["p50_ms"] = round(_percentile(latencies, 0.50) * 1000, 1)
    report["p99_ms"] = round(_percentile(latencies, 0.99) * 1000, 1)
    report["mean_ms"] = round(statistics.fmean(latencies) * 1000, 1) if latencies else 0.0
    by_route: dict[str, Any] = {}
    for name in sorted({n for n, _, _ in results}):
        times = [t for n, t, _ in results if n == name]
        by_route[name] = {"n": len(times), "p50_ms": round(_percentile(times, 0.5) * 1000, 1),
                          "p99_ms": round(_percentile(times, 0.99) * 1000, 1),
                          "errors": sum(1 for n, _, ok in results if n == name and not ok)}
    report["by_route"] = by_route
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--data-dir", help="reuse (or build once into) this directory")
    parser.add_argument("--no-writer", action="store_true", help="no concurrent crawl writes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--_writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._writer:
        writer_main(args._writer[0], int(args._writer[1]), float(args._writer[2]), args._writer[3])
        return 0

    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bench-api-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "prometheus.db"
    marker = data_dir / f"built-{args.items}"
    if not marker.exists():
        print(f"building a mirror of {args.items:,} items in {data_dir} ...", file=sys.stderr)
        db_path.unlink(missing_ok=True)
        build(db_path, args.items)
        marker.touch()
    ids = _sample_ids(db_path)

    config = data_dir / "bench-config.json"
    config.write_text(json.dumps({"api": {"rate_limit": {"requests": 0}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "HF_"))}
    env.update(PROMETHEUS_DATA_DIR=str(data_dir), PROMETHEUS_CONFIG=str(config), HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    server = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    writer = None
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        base = line.split(" on ", 1)[1].split()[0]
        writer_out = data_dir / "writer.json"
        if not args.no_writer:
            writer = subprocess.Popen([sys.executable, __file__, "--_writer", str(db_path), str(args.items),
                                       str(args.seconds + 2), str(writer_out)], cwd=ROOT)
        report = asyncio.run(load(base, ids, args.clients, args.seconds))
        if writer is not None:
            writer.wait(120)
            report["writer"] = json.loads(writer_out.read_text())
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    report.update(items=args.items, clients=args.clients)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.items:,} items, {args.clients} clients, {report['seconds']} s"
              f"{'' if args.no_writer else ' with a concurrent writer'}")
        print(f"  {report['req_per_s']:,} req/s   p50 {report['p50_ms']} ms   p99 {report['p99_ms']} ms   "
              f"errors {report['errors']} / {report['requests']:,}")
        for name, figures in report["by_route"].items():
            print(f"    {name:<16} n={figures['n']:>6}  p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms"
                  f"  errors {figures['errors']}")
        if "writer" in report:
            print(f"  writer: {report['writer']['rows']:,} rows in {report['writer']['pages']} pages "
                  f"({report['writer']['rows_per_s']:,.0f} rows/s)")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
