"""Keyword search CPU by query shape, on a mirror that bench/api.py built.

    .venv/bin/python bench/search_shapes.py --data-dir DIR [--queries 130]

The search engine is called directly, one query at a time (no HTTP, no concurrency). The words are
bench/api.py's: words of the mirrored model names. Shapes, as in the API bench's mix:
  sorted      one word, every kind, sorted by downloads (`/search/{w}?type=all&sort=downloads`)
  filtered    one word, models with pipeline tag text-generation, relevance (`POST /search`)
  two words   two words, relevance (`/search/{w1} {w2}`)
Each shape's queries run twice and the second pass is timed: the engine's word caches (expansions,
match counts, popular items) are then warm, as in a server that has run for a minute; it keeps no
results. Prints CPU p50 / p95 / max / mean and the slowest queries.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api import mirror_sample  # noqa: E402
from core.config import load_config  # noqa: E402
from core.kinds import Kind  # noqa: E402
from core.search import SearchEngine, SearchFilters  # noqa: E402

FILTER = SearchFilters(kind=Kind.MODEL, pipeline_tag="text-generation")


def _shapes(engine: SearchEngine) -> dict[str, Callable[[str], object]]:
    return {
        "sorted": lambda q: engine.search(q, None, sort="downloads", limit=20),
        "filtered": lambda q: engine.search(q, FILTER, limit=20),
        "two words": lambda q: engine.search(q, None, limit=20),
    }


def _cpu_ms(run: Callable[[str], object], query: str) -> float:
    started = time.process_time()
    run(query)
    return (time.process_time() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="a data directory bench/api.py filled")
    parser.add_argument("--queries", type=int, default=130, help="queries per shape")
    args = parser.parse_args()
    db = Path(args.data_dir) / "prometheus.db"
    if not db.exists():
        parser.error(f"no mirror in {args.data_dir}: run bench/api.py --data-dir {args.data_dir} first")
    _, words, _ = mirror_sample(db)
    rng = random.Random(1)
    engine = SearchEngine(load_config(args.data_dir, env={}))
    try:
        for shape, run in _shapes(engine).items():
            if shape == "two words":
                queries = [f"{rng.choice(words)} {rng.choice(words)}" for _ in range(args.queries)]
            else:
                queries = words[:args.queries]
            for query in queries:
                run(query)
            times = sorted((_cpu_ms(run, q), q) for q in queries)
            cpu = [t for t, _ in times]
            print(f"{shape:<10} n={len(cpu):>4}  CPU p50 {cpu[len(cpu) // 2]:6.1f} ms  "
                  f"p95 {cpu[int(len(cpu) * 0.95)]:6.1f} ms  max {cpu[-1]:6.1f} ms  "
                  f"mean {sum(cpu) / len(cpu):5.1f} ms")
            print("           slowest: " + ", ".join(f"{q!r} {t:.0f}" for t, q in reversed(times[-4:])))
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
