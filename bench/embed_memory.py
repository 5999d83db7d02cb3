"""Embedding worker memory: resident size and texts/s while the model works through a backlog.

    .venv/bin/python bench/embed_memory.py [--texts 30000] [--precision auto|bf16|fp32] [--trickle] [--unbucketed]

Encodes item texts of the seeded fake-Hub corpus (`bench.encode_speed.corpus_texts`, Hub-like mix)
the way the worker does: `core.embedder.load_model`, then `core.embedder.encode` on claims of
CLAIM_BATCHES x batch texts. Prints the process's resident size every `--every` texts, then its
peak and the throughput. `--unbucketed` pads each batch to its longest text only (the model's
default), to compare with the padding to a multiple of PAD_MULTIPLE[precision] tokens that
`load_model` sets. `--trickle` encodes batches of random sizes from 1 to the batch size instead of whole claims,
as a daemon does that embeds a few changed items at a time (`--unbucketed` then also leaves batch
sizes as they come instead of filling them up to `batch_bucket` sizes). The supervisor restarts a
child above `rss_cap_mb` (2048 by default).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.encode_speed import corpus_texts  # noqa: E402
from core.config import load_config  # noqa: E402
from core.embedder import CLAIM_BATCHES, PRECISIONS, encode, load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=30_000)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--unbucketed", action="store_true", help="pad each batch to its longest text only")
    parser.add_argument("--trickle", action="store_true", help="batches of random sizes, as a daemon's few changes")
    parser.add_argument("--every", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    n = args.texts
    mix = {"models": n * 60 // 100, "datasets": n * 15 // 100, "spaces": n * 20 // 100}
    mix["papers"] = n - sum(mix.values())
    texts = corpus_texts(mix, args.seed)
    config = load_config()
    process = psutil.Process()
    model = load_model(config.embedding_model, args.precision)
    batch = config.embedding_batch_size
    if args.unbucketed:
        model[0].processing_kwargs = {}

    def run(chunk: list[str]) -> object:
        if args.unbucketed:  # the model's own batching: neither widths nor batch sizes bucketed
            return model.encode(chunk, batch_size=batch, convert_to_numpy=True, show_progress_bar=False)
        return encode(model, chunk, batch)

    rng = random.Random(args.seed)
    claim = CLAIM_BATCHES * batch
    print(f"{len(texts):,} texts, precision {args.precision}, "
          f"{'padded to the longest of each batch' if args.unbucketed else 'as load_model and encode pad them'}; "
          f"{f'batches of 1 to {batch} texts' if args.trickle else f'claims of {claim} texts'}; "
          f"RSS after loading {process.memory_info().rss / 2**20:,.0f} MB")
    started = time.perf_counter()
    peak = 0.0
    reported = done = 0
    while done < len(texts):
        size = rng.randint(1, batch) if args.trickle else claim
        run(texts[done:done + size])
        done = min(done + size, len(texts))
        rss = process.memory_info().rss / 2**20
        peak = max(peak, rss)
        if done - reported >= args.every or done == len(texts):
            reported = done
            print(f"  {done:>7,} texts  RSS {rss:7,.0f} MB  {done / (time.perf_counter() - started):6.1f} texts/s")
    print(f"peak RSS {peak:,.0f} MB, {len(texts) / (time.perf_counter() - started):.1f} texts/s")


if __name__ == "__main__":
    main()
