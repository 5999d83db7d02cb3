"""Search benchmark: keyword and semantic latency, ANN recall, index build, search-process RSS, worker throughput.

    .venv/bin/python bench/search.py [--items 1000000] [--sample 20000] [--encode-texts 1000] [--queries 200]

1. Writes `--items` synthetic Hub items (models, datasets, Spaces, papers) through the crawler's page writer.
2. Worker throughput: queues `--encode-texts` of them and runs the real worker until idle; then raw
   `model.encode` on the very same texts in the same process (the worker's overhead is the difference),
   `--worker-rounds` times interleaved, median ratio reported. `--only-worker` stops after this step.
3. Embeds `--sample` items for real, and spreads them to every other item by small Gaussian perturbations
   (σ = 0.02 per dimension, renormalised) — so the vectors keep the real embeddings' cluster structure,
   which uniform random vectors would not (ANN recall on those is meaningless).
4. Builds the index (`index build` path: exact below 100k vectors, IVF-SQ8 above) and times it.
5. In a separate search process (so its RSS is a search process's): keyword p50/p95 over words drawn from
   the corpus, semantic p50/p95 (query embedding included, and index+hydration only), recall@10 of the
   served semantic results against brute-force exact top-10. Latencies also as CPU time (wall time on
   shared cores mostly measures the neighbours); RSS by stage, anonymous vs file-backed (mmap'd index
   lists and model weights), and the peak (VmHWM).
   `--search-only --data-dir DIR` repeats this step alone on a data dir an earlier run kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core.config import load_config  # noqa: E402
from core.hub.records import parse_paper, parse_repo  # noqa: E402
from core.kinds import Kind, doc_key  # noqa: E402
from core.store import connect, write_tx  # noqa: E402
from core.store.items import write_page  # noqa: E402

WORDS = ["llama", "mistral", "qwen", "gemma", "phi", "falcon", "bert", "roberta", "whisper", "wav2vec2", "sdxl",
         "flux", "clip", "vit", "t5", "bart", "gpt2", "opt", "bloom", "mamba", "deepseek", "yi", "olmo"]
FLAVOURS = ["chat", "instruct", "base", "code", "math", "roleplay", "german", "japanese", "medical", "legal",
            "uncensored", "dpo", "sft", "lora", "merged"]
QUANTS = ["GGUF", "AWQ", "GPTQ", "exl2", "", "", "", ""]
TASKS = ["text-generation", "text-classification", "token-classification", "automatic-speech-recognition",
         "text-to-image", "feature-extraction", "image-classification", "translation", "summarization"]
TOPICS = ["movie reviews", "news articles", "chat conversations", "python code", "medical notes", "legal contracts",
          "product questions", "tweets", "scientific abstracts", "recipes", "math problems", "speech recordings"]


def synthetic_item(i: int, rng: random.Random) -> tuple[Kind, dict]:
    bucket = i % 20
    org = f"org{rng.randint(0, 20000)}"
    if bucket < 14:
        family, size = rng.choice(WORDS), rng.choice(["0.5B", "1B", "3B", "7B", "8B", "13B", "70B"])
        flavour, quant = rng.choice(FLAVOURS), rng.choice(QUANTS)
        name = f"{org}/{family}-{size}-{flavour}{'-' + quant if quant else ''}-{i}"
        tags = [rng.choice(TASKS), flavour]
        if quant:
            tags += [quant.lower(), f"base_model:quantized:{family}-org/{family}-{size}"]
        elif rng.random() < 0.4:
            tags.append(f"base_model:finetune:{family}-org/{family}-{size}")
        return Kind.MODEL, {"id": name, "tags": tags, "pipeline_tag": tags[0], "downloads": rng.randint(0, 10**6),
                            "likes": rng.randint(0, 1000),
                            "createdAt": f"2024-{rng.randint(1, 12):02d}-01T00:00:00.000Z",
                            "safetensors": {"total": int(float(size[:-1]) * 1e9)}}
    if bucket < 17:
        topic = rng.choice(TOPICS)
        return Kind.DATASET, {"id": f"{org}/{topic.replace(' ', '-')}-{i}", "downloads": rng.randint(0, 10**5),
                              "description": f"A collection of {rng.randint(1, 900)}k {topic} "
                                             f"for {rng.choice(TASKS).replace('-', ' ')}.", "tags": ["language:en"]}
    if bucket < 19:
        topic = rng.choice(TOPICS)
        return Kind.SPACE, {"id": f"{org}/{rng.choice(WORDS)}-demo-{i}", "sdk": "gradio",
                            "cardData": {"title": f"{topic.title()} demo", "short_description": f"explore {topic}"}}
    topic = rng.choice(TOPICS)
    return Kind.PAPER, {"id": f"{2300 + i % 100}.{i:06d}", "title": f"Learning from {topic} with {rng.choice(WORDS)}",
                        "summary": f"We study {topic} and show improvements with {rng.choice(FLAVOURS)} training.",
                        "authors": [{"name": f"Author {rng.randint(0, 5000)}"}], "upvotes": rng.randint(0, 100)}


def populate(db_path: Path, items: int) -> float:
    conn = connect(db_path)
    rng = random.Random(1)
    started = time.perf_counter()
    pages: dict[Kind, list] = {kind: [] for kind in Kind}

    def flush(kind: Kind) -> None:
        with write_tx(conn):
            write_page(conn, kind, pages[kind], "2025-06-01T00:00:00.000Z")
        pages[kind] = []

    for i in range(items):
        kind, obj = synthetic_item(i, rng)
        pages[kind].append(parse_paper(obj) if kind is Kind.PAPER else parse_repo(kind, obj))
        if len(pages[kind]) == 1000:
            flush(kind)
    for kind in Kind:
        if pages[kind]:
            flush(kind)
    conn.close()
    return time.perf_counter() - started


def all_keys(conn) -> list[int]:  # type: ignore[no-untyped-def]
    keys = []
    for kind in Kind:
        keys += [doc_key(kind, r[0]) for r in conn.execute(f"SELECT pk FROM {kind.table} ORDER BY pk")]
    return keys


def worker_vs_raw(config, conn, keys: list[int], count: int, rounds: int = 3) -> dict:  # type: ignore[no-untyped-def]
    """Throughput of the worker (claims, row reads, text, encode, writes) vs bare model.encode, same texts.

    Interleaved rounds (worker, then raw), so load from other processes hits both alike; the ratio
    is per round, the median reported. Raw encode runs on a side thread, as the worker's batches do:
    on a loaded 2-core box torch's OpenMP threads spin-wait far worse on the main thread (3-4x slower
    at load 8-12), which would flatter the worker; the main-thread figure is reported beside it, not
    used (taking the faster of two noisy timings would bias the ratio against the worker instead).
    Index updates (FAISS) are timed apart and left out of the worker's time.
    """
    import asyncio
    import threading

    from core.embedder import EmbeddingWorker, Job, encode, prepare, run_worker

    class TimedWorker(EmbeddingWorker):
        index_seconds = 0.0

        def update_index(self) -> dict:
            started = time.perf_counter()
            try:
                return super().update_index()
            finally:
                self.index_seconds += time.perf_counter() - started

    chosen = keys[:count]
    worker = TimedWorker(config)
    _ = worker.model  # load outside the timing
    encode(worker.model, ["warm up"] * 8)
    prepared, _ = prepare(conn, [Job(k, "x", 1) for k in chosen], "none")
    texts = sorted((p.text for p in prepared if p.text), key=len)
    batch = config.embedding_batch_size

    def raw_encode() -> float:
        started = time.perf_counter()
        encode(worker.model, texts, batch)
        return time.perf_counter() - started

    def raw_on_thread() -> float:
        took: list[float] = []
        thread = threading.Thread(target=lambda: took.append(raw_encode()))
        thread.start()
        thread.join()
        return took[0]

    per_round = []
    for round_no in range(rounds):
        with write_tx(conn):
            conn.execute("DELETE FROM embed_jobs")
            conn.executemany("DELETE FROM embeddings WHERE doc_key = ?", [(k,) for k in chosen])
            conn.executemany("INSERT INTO embed_jobs (doc_key, text_hash, enqueued_at) VALUES (?, 'x', 'now')",
                             [(k,) for k in chosen])
        worker.stats = type(worker.stats)()
        worker.index_seconds = 0.0
        load = os.getloadavg()[0]
        started = time.perf_counter()
        stats = asyncio.run(run_worker(config, asyncio.Event(), until_idle=True, worker=worker))
        worker_s = time.perf_counter() - started - worker.index_seconds
        # Alternate which raw variant goes first, so neither always runs right after the worker.
        if round_no % 2:
            raw_main_s = raw_encode()
            raw_thread_s = raw_on_thread()
        else:
            raw_thread_s = raw_on_thread()
            raw_main_s = raw_encode()
        worker_rate, raw_rate = stats["embedded"] / worker_s, len(texts) / raw_thread_s
        per_round.append({"load_1m": round(load, 2), "worker_texts_per_s": round(worker_rate, 1),
                          "raw_texts_per_s": round(raw_rate, 1),
                          "raw_main_thread_texts_per_s": round(len(texts) / raw_main_s, 1),
                          "raw_side_thread_texts_per_s": round(len(texts) / raw_thread_s, 1),
                          "worker_share_of_raw": round(worker_rate / raw_rate, 3),
                          "worker_encode_share": round(stats["encode_seconds"] / worker_s, 3),
                          "index_update_s": round(worker.index_seconds, 2)})
        print(f"worker round {round_no + 1}: {per_round[-1]}", file=sys.stderr)
    worker.close()
    sample = texts[:: max(1, len(texts) // 500)]
    tokens = np.mean([len(worker.model.tokenizer(t)["input_ids"]) for t in sample])
    def median(key: str) -> float:
        return round(float(np.median([r[key] for r in per_round])), 3)

    return {"texts": len(texts), "mean_tokens": round(float(tokens), 1), "rounds": per_round,
            "worker_share_of_raw_median": median("worker_share_of_raw"),
            "worker_texts_per_s_median": median("worker_texts_per_s"),
            "raw_texts_per_s_median": median("raw_texts_per_s")}


def spread_vectors(conn, keys: list[int], sample: int, config) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Real embeddings for `sample` items, perturbed copies for the rest."""
    from core.embedder import Job, encode, load_model, prepare
    from core.vectorindex import blob_from_vector

    model = load_model(config.embedding_model)
    rng = np.random.default_rng(0)
    real_keys = keys[:: max(1, len(keys) // sample)][:sample]
    prepared, _ = prepare(conn, [Job(k, "x", 1) for k in real_keys], "none")
    started = time.perf_counter()
    real = encode(model, [p.text or "" for p in prepared], 64)
    encode_s = time.perf_counter() - started
    with write_tx(conn):
        conn.execute("DELETE FROM embed_jobs")
        conn.execute("DELETE FROM embeddings")
        conn.execute("DELETE FROM index_log")
    started = time.perf_counter()
    for start in range(0, len(keys), 50_000):
        part = keys[start:start + 50_000]
        base = real[rng.integers(0, len(real), len(part))]
        noisy = base + rng.normal(scale=0.02, size=base.shape).astype(np.float32)
        noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
        with write_tx(conn):
            conn.executemany(
                "INSERT INTO embeddings (doc_key, text_hash, model, vector, updated_at) VALUES (?, 'x', ?, ?, 'now')",
                [(k, config.embedding_model, blob_from_vector(v)) for k, v in zip(part, noisy, strict=True)])
    return encode_s, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def keyword_latency(engine, queries: int) -> dict:  # type: ignore[no-untyped-def]
    rng = random.Random(3)
    keyword_queries = [" ".join(rng.sample(WORDS + FLAVOURS + TOPICS, rng.choice([1, 2]))) for _ in range(queries)]
    for q in keyword_queries[:10]:
        engine.search(q)
    keyword_ms, cpu_ms = [], []
    for q in keyword_queries:
        started, cpu_started = time.perf_counter(), time.process_time()
        engine.search(q, limit=20)
        keyword_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.process_time() - cpu_started) * 1000)
    # CPU time too: on a shared 2-core machine wall time mostly measures the neighbours.
    return {"keyword_p50_ms": round(percentile(keyword_ms, 50), 2),
            "keyword_p95_ms": round(percentile(keyword_ms, 95), 2),
            "keyword_cpu_p50_ms": round(percentile(cpu_ms, 50), 2),
            "keyword_cpu_p95_ms": round(percentile(cpu_ms, 95), 2)}


def peak_rss_mb() -> float:
    """This process's peak RSS. Not `ru_maxrss`: that keeps the high-water mark of the image it was
    exec'd from, so a search process started by this (torch-holding) bench reported the bench's RSS."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> dict[str, float]:
    """This process's resident memory now: anonymous (its own) and file-backed (page cache it maps)."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": round(fields["Rss"], 1), "anon": round(fields["Anonymous"], 1),
            "file": round(fields["Rss"] - fields["Anonymous"], 1)}


def search_process(data_dir: str, queries: int, semantic_queries: list[str]) -> dict:
    """Runs in its own process: latencies, recall, and this process's RSS (by stage, and peak)."""
    from core.search import SearchEngine

    stages = {"imports": rss_mb()}
    config = load_config(data_dir, env={})
    engine = SearchEngine(config)
    keyword = keyword_latency(engine, queries)
    stages["after_keyword"] = rss_mb()
    engine.embed_query("warm up")
    stages["query_encoder_loaded"] = rss_mb()
    loaded = engine.index.get()
    stages["index_loaded"] = rss_mb()
    semantic_ms, index_ms, cpu_ms, recalls = [], [], [], []
    conn = engine.conn
    for q in semantic_queries:
        started, cpu_started = time.perf_counter(), time.process_time()
        vector = engine.embed_query(q)
        mid = time.perf_counter()
        hits = engine._nearest(vector, None, 10)
        done = time.perf_counter()
        cpu_ms.append((time.process_time() - cpu_started) * 1000)
        semantic_ms.append((done - started) * 1000)
        index_ms.append((done - mid) * 1000)
        recalls.append((vector, [h.key for h in hits]))
    stages["after_semantic"] = rss_mb()
    peak_mb = peak_rss_mb()
    # Exact top-10 by brute force over every stored vector (after the RSS reading: it loads them all).
    matrix_q = np.stack([v for v, _ in recalls])
    best_scores = np.full((len(recalls), 10), -2.0, dtype=np.float32)
    best_ids = np.zeros((len(recalls), 10), dtype=np.int64)
    cursor = conn.execute("SELECT doc_key, vector FROM embeddings")
    while rows := cursor.fetchmany(100_000):
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
        scores = matrix_q @ vectors.T
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(ids, scores.shape)], axis=1)
        top = np.argsort(-all_scores, axis=1)[:, :10]
        best_scores = np.take_along_axis(all_scores, top, 1)
        best_ids = np.take_along_axis(all_ids, top, 1)
    recall = float(np.mean([len(set(got) & set(best_ids[i].tolist())) / 10 for i, (_, got) in enumerate(recalls)]))
    return {
        "index_type": loaded.meta.index_type if loaded else None, "vectors": loaded.meta.count if loaded else 0,
        **keyword,
        "semantic_p50_ms": round(percentile(semantic_ms, 50), 2),
        "semantic_p95_ms": round(percentile(semantic_ms, 95), 2),
        "semantic_cpu_p50_ms": round(percentile(cpu_ms, 50), 2),
        "semantic_cpu_p95_ms": round(percentile(cpu_ms, 95), 2),
        "semantic_index_only_p50_ms": round(percentile(index_ms, 50), 2),
        "semantic_index_only_p95_ms": round(percentile(index_ms, 95), 2),
        "recall_at_10_vs_exact": round(recall, 4), "search_process_peak_rss_mb": round(peak_mb, 1),
        "search_process_rss_by_stage_mb": stages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000, help="items embedded for real")
    parser.add_argument("--encode-texts", type=int, default=1000, help="texts for worker vs raw encode")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data-dir", help="keep the data here (default: a temp dir)")
    parser.add_argument("--keyword-only", action="store_true",
                        help="keyword latency only; reuses the items already in --data-dir (populates it if empty)")
    parser.add_argument("--search-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only-worker", action="store_true",
                        help="step 2 only: populate --items, then worker vs raw encode on --encode-texts")
    parser.add_argument("--worker-rounds", type=int, default=3, help="interleaved worker/raw rounds")
    args = parser.parse_args()
    if args.keyword_only:
        if not args.data_dir:
            parser.error("--keyword-only needs --data-dir")
        from core.search import SearchEngine

        config = load_config(args.data_dir, env={})
        conn = connect(config.db_path)
        have = sum(conn.execute(f"SELECT count(*) FROM {kind.table}").fetchone()[0] for kind in Kind)
        conn.close()
        populated = round(populate(config.db_path, args.items), 1) if have == 0 else None
        engine = SearchEngine(config)
        result = {"items": have or args.items, "populate_s": populated} | keyword_latency(engine, args.queries)
        result["search_process_peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result, indent=2))
        return
    if args.search_only:
        semantic = [f"{rng_word} model for {topic}" for rng_word, topic in zip(WORDS * 10, TOPICS * 20, strict=False)]
        print(json.dumps(search_process(args.data_dir, args.queries, semantic[: args.queries])))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tmp = tempfile.TemporaryDirectory() if not args.data_dir else None
    data_dir = args.data_dir or tmp.name  # type: ignore[union-attr]
    config = load_config(data_dir, env={})
    results: dict = {"items": args.items, "sample": args.sample}
    results["populate_s"] = round(populate(config.db_path, args.items), 1)
    print(f"populated {args.items:,} items in {results['populate_s']} s", file=sys.stderr)
    conn = connect(config.db_path)
    keys = all_keys(conn)
    random.Random(5).shuffle(keys)
    results["throughput"] = worker_vs_raw(config, conn, keys, args.encode_texts, args.worker_rounds)
    print(f"throughput: {results['throughput']}", file=sys.stderr)
    if args.only_worker:
        conn.close()
        print(json.dumps(results, indent=2))
        if tmp:
            tmp.cleanup()
        return
    encode_s, _ = spread_vectors(conn, keys, min(args.sample, len(keys)), config)
    results["sample_encode_s"] = round(encode_s, 1)
    from core.embedder import index_dir
    from core.vectorindex import IndexMaintainer, IndexStore

    build = IndexMaintainer(IndexStore(index_dir(config)), config.embedding_model).rebuild(conn)
    results["index_build_s"] = build["seconds"]
    results["index_type"] = build["type"]
    results["index_file_mb"] = round(sum(p.stat().st_size for p in index_dir(config).glob("*.faiss")) / 2**20, 1)
    conn.close()
    print(f"index built: {build}", file=sys.stderr)
    out = subprocess.run([sys.executable, __file__, "--search-only", "--data-dir", data_dir, "--queries",
                          str(args.queries)], capture_output=True, text=True, check=True, cwd=ROOT)
    results |= json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=2))
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
