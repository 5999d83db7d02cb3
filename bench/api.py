"""API load benchmark: concurrent clients, mixed queries, while the crawler writes.

    .venv/bin/python bench/api.py [--items 1000000] [--seconds 30] [--warmup 10] [--clients 100]
                                  [--data-dir DIR] [--think-ms 0] [--workers N] [--cache-entries N] [--max-stale S]

Builds (or reuses, with --data-dir) a mirror by really crawling a fake Hub of N items (`main.py fakehub`
in its own process; 70% models, 15% datasets, 12% spaces, 3% papers), starts `python main.py serve` in
its own process with the rate limit off, and for the whole run keeps the real crawler writing (a full
re-sync of every kind: one write transaction per page), at the niceness the daemon gives its crawler
child (`watchdog.background_nice`, 10). Clients send a mix of keyword searches (GET, and
POST with filters), lists with cursors, item details, papers, the HTML search page and /health, with query
words taken from the mirrored ids. Prints requests/s, p50, p99 and errors, per route and overall,
and the load average before and after.

Client model. By default every client sends its next request as soon as the last one is answered
(zero think time, a closed loop): that measures saturation, and latency is then ~clients / throughput
whatever the server does. `--think-ms T` makes each client wait a random 0..2T ms between requests,
as people at a search page or dashboards polling do; 100 clients at T = 1000 offer ~100 req/s at most.
Report both.
Targets: p99 < 100 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import harness  # noqa: E402
from core.kinds import ALL_KINDS, Kind  # noqa: E402
from core.store import connect  # noqa: E402
from core.supervision.settings import SupervisorSettings  # noqa: E402

BACKGROUND_NICE = SupervisorSettings().background_nice
SHARES = {Kind.MODEL: 0.70, Kind.DATASET: 0.15, Kind.SPACE: 0.12, Kind.PAPER: 0.03}


def start_fakehub(total: int, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """The same fake Hub on the same port for a data directory, run after run.

    The crawler resumes an interrupted full sync from the page URL it saved, host and port
    included, and every run here interrupts one: on another port, the next run's "writer" would
    retry a dead address for the whole run and write nothing.
    """
    sizes = {kind.plural: int(total * SHARES[kind]) for kind in ALL_KINDS}
    saved = data_dir / "fakehub-port"
    port = int(saved.read_text()) if saved.exists() else harness.free_port()
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
    except OSError:
        port = harness.free_port()  # taken: the saved cursor is lost, the next full sync starts over
    saved.write_text(str(port))
    return harness.start_fakehub(**sizes, extra=("--seed", "1"), port=port)


def count_commits(db_path: Path, done: threading.Event, commits: list[int]) -> None:
    """How many times another connection committed while the load ran: proof that the writer wrote."""
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    last = conn.execute("PRAGMA data_version").fetchone()[0]
    while not done.wait(0.05):
        now = conn.execute("PRAGMA data_version").fetchone()[0]
        if now != last:
            commits.append(1)
            last = now
    conn.close()


def crawl(env: dict[str, str], nice: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(["nice", "-n", str(nice), sys.executable, str(ROOT / "main.py"), "crawl", "--mode", "full",
                             "--json"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def mirror_sample(db_path: Path) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Known ids per kind, query words taken from model names, and authors."""
    conn = connect(db_path)
    ids = {kind.plural: [r[0] for r in conn.execute(
        f"SELECT id FROM {kind.table} WHERE pk % 97 = 0 LIMIT 5000")] for kind in SHARES}
    authors = [r[0] for r in conn.execute("SELECT author FROM models WHERE pk % 101 = 0 LIMIT 2000") if r[0]]
    conn.close()
    words = sorted({w.lower() for i in ids["models"] for w in re.split(r"[^A-Za-z]+", i.split("/")[-1])
                    if len(w) >= 3})
    return ids, words, authors


def _request(rng: random.Random, ids: dict[str, list[str]], words: list[str],
             authors: list[str]) -> tuple[str, str, str, Any]:
    roll = rng.random()
    word = rng.choice(words)
    if roll < 0.30:
        return "search_get", "GET", f"/search/{word}%20{rng.choice(words)}?limit=20", None
    if roll < 0.40:
        kind = rng.choice(("models", "datasets", "all"))
        return "search_get_type", "GET", f"/search/{word}?type={kind}&sort=downloads", None
    if roll < 0.55:
        body = {"query": word, "type": "models", "filters": {"pipeline_tag": "text-generation"}, "limit": 20}
        return "search_post", "POST", "/search", body
    if roll < 0.65:
        return "list", "GET", f"/models?limit=50&sort={rng.choice(('downloads', 'likes', 'created'))}", None
    if roll < 0.70:
        return "list_author", "GET", f"/models?author={rng.choice(authors)}&limit=20", None
    if roll < 0.85:
        kind = rng.choice(("models", "models", "datasets", "spaces"))
        return "detail", "GET", f"/{kind}/{rng.choice(ids[kind])}", None
    if roll < 0.90:
        return "paper", "GET", f"/papers/{rng.choice(ids['papers'])}", None
    if roll < 0.98:
        return "ui", "GET", f"/ui?q={word}", None
    return "health", "GET", "/health", None


async def client(session: aiohttp.ClientSession, base: str, sample: tuple[Any, ...], measure_from: float,
                 deadline: float, seed: int, results: list[tuple[str, float, bool]], think: float) -> None:
    rng = random.Random(seed)
    if think:
        await asyncio.sleep(rng.uniform(0, 2 * think))  # clients do not all start at the same instant
    while time.monotonic() < deadline:
        measured = time.monotonic() >= measure_from
        name, method, path, body = _request(rng, *sample)
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
        if measured:
            results.append((name, time.perf_counter() - started, ok))
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(base: str, sample: tuple[Any, ...], clients: int, seconds: float, think: float,
               warmup: float) -> dict[str, Any]:
    results: list[tuple[str, float, bool]] = []
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(base + "/search/warmup") as response:  # first search opens connections
            await response.read()
        # Requests sent during the warm-up are not counted: the first sight of each query word fills
        # the server's caches (SQLite pages, word expansions, match counts), as in any server that has
        # been up for more than a minute.
        measure_from = time.monotonic() + warmup
        deadline = measure_from + seconds
        await asyncio.gather(*(client(session, base, sample, measure_from, deadline, i, results, think)
                               for i in range(clients)))
        elapsed = time.monotonic() - measure_from
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


async def _cache_lookups(base: str) -> dict[str, float]:
    """The result cache's hit/stale/miss counters (of the one process that answers, with --workers > 1)."""
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        text = await response.text()
    return {m[0]: float(m[1]) for m in re.findall(r'hubmirror_api_cache_lookups_total\{result="(\w+)"\} (\S+)', text)}


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def _stop(proc: subprocess.Popen[str] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of the same load before the measured ones (default 10)")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--data-dir", help="reuse (or build once into) this directory")
    parser.add_argument("--no-writer", action="store_true", help="no concurrent crawl")
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="each client waits a random 0..2x this between requests (default 0: saturation)")
    parser.add_argument("--workers", type=int, help="API processes (default: the server's api.workers)")
    parser.add_argument("--cache-entries", type=int, help="api.cache.entries (0: no result cache)")
    parser.add_argument("--max-stale", type=float, help="api.cache.max_stale_seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bench-api-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = data_dir / "prometheus.db"
    marker = data_dir / f"crawled-{args.items}"
    config = data_dir / "bench-config.json"
    api: dict[str, Any] = {"rate_limit": {"requests": 0}, "cache": {}}
    if args.workers is not None:
        api["workers"] = args.workers
    if args.cache_entries is not None:
        api["cache"]["entries"] = args.cache_entries
    if args.max_stale is not None:
        api["cache"]["max_stale_seconds"] = args.max_stale
    config.write_text(json.dumps({"api": api}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "HF_", "TELEGRAM_"))}
    env.update(PROMETHEUS_DATA_DIR=str(data_dir), PROMETHEUS_CONFIG=str(config), HF_HUB_OFFLINE="1",
               PYTHONUNBUFFERED="1")
    hub, hub_url = start_fakehub(args.items, data_dir)
    env["HF_ENDPOINT"] = hub_url
    server: subprocess.Popen[str] | None = None
    writer: subprocess.Popen[str] | None = None
    done = threading.Event()
    crawler_thread = threading.Thread()
    try:
        if not marker.exists():
            print(f"crawling a fake Hub of {args.items:,} items into {data_dir} ...", file=sys.stderr)
            started = time.monotonic()
            db_path.unlink(missing_ok=True)
            first = crawl(env)
            if first.wait() != 0:
                raise SystemExit("the initial crawl failed")
            print(f"  crawled in {time.monotonic() - started:.0f} s", file=sys.stderr)
            marker.touch()
        sample = mirror_sample(db_path)
        server = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0"], cwd=ROOT,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert server.stdout is not None
        base = server.stdout.readline().split(" on ", 1)[1].split()[0]
        passes: list[int] = []

        def keep_crawling() -> None:  # a re-sync of a small mirror ends early: start the next one
            nonlocal writer
            while not done.is_set():
                writer = crawl(env, BACKGROUND_NICE)  # as the daemon runs its crawler child
                passes.append(writer.wait())

        crawler_thread = threading.Thread(target=keep_crawling, daemon=True)
        if not args.no_writer:
            crawler_thread.start()
        load_before = _loadavg()
        commits: list[int] = []
        counting = threading.Event()
        counter = threading.Thread(target=count_commits, args=(db_path, counting, commits), daemon=True)
        counter.start()
        report = asyncio.run(load(base, sample, args.clients, args.seconds, args.think_ms / 1000, args.warmup))
        counting.set()
        counter.join(5)
        report["commits_seen"] = len(commits)  # at 50 ms sampling: a lower bound
        report["loadavg_before"], report["loadavg_after"] = load_before, _loadavg()
        report["cache_lookups"] = asyncio.run(_cache_lookups(base))
        done.set()
        if not args.no_writer:
            report["crawl_passes_finished"] = len(passes)
    finally:
        done.set()
        for _ in range(3):  # the crawl thread may have just started another pass: stop it too
            _stop(writer)
            if not crawler_thread.is_alive():
                break
            crawler_thread.join(10)
        _stop(server)
        _stop(hub)
    report.update(items=args.items, clients=args.clients, think_ms=args.think_ms, warmup_s=args.warmup,
                  server_config=api)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.items:,} items, {args.clients} clients, think {args.think_ms:g} ms, {report['seconds']} s "
              f"after a {args.warmup:g} s warm-up"
              f"{'' if args.no_writer else ' while the crawler re-syncs everything'}; server config {api}")
        print(f"  load average before {report['loadavg_before']}, after {report['loadavg_after']}; "
              f"result cache lookups {report['cache_lookups']}")
        print(f"  {report['req_per_s']:,} req/s   p50 {report['p50_ms']} ms   p99 {report['p99_ms']} ms   "
              f"errors {report['errors']} / {report['requests']:,}")
        for name, figures in report["by_route"].items():
            print(f"    {name:<16} n={figures['n']:>6}  p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms"
                  f"  errors {figures['errors']}")
        if "crawl_passes_finished" in report:
            print(f"  full crawl passes finished during the run: {report['crawl_passes_finished']}; "
                  f"database commits seen during the load: {report['commits_seen']}")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
