"""The embedding worker: atomic claims, leases, parking, unchanged-text skips, stop, index tasks, kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from itertools import accumulate
from pathlib import Path

import numpy as np
import pytest

from core.embedder import EmbeddingWorker, claim_jobs, park_exhausted, record_from_row, renew_leases, run_worker
from core.itemtext import item_text, text_hash
from core.kinds import Kind, doc_key
from core.store import connect
from core.tasks import create_task, get_task
from core.vectorindex import IndexStore
from tests.conftest import PROJECT_ROOT, cli_env, run_cli
from tests.search_helpers import HashModel, embed_all, make_config, real_model, repo, write_items


def _models(n: int, prefix: str = "org/model") -> list[dict]:
    topics = ["chat assistant", "image generator", "speech recogniser", "code completion", "translator"]
    return [repo(f"{prefix}-{i}", tags=["text-generation"], pipeline_tag="text-generation",
                 library_name="transformers", cardData={"title": topics[i % 5]}) for i in range(n)]


def _jobs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM embed_jobs ORDER BY doc_key").fetchall()


def test_claims_are_disjoint_and_leases_expire(data_dir: Path) -> None:
    db = data_dir / "prometheus.db"
    first, second = connect(db), connect(db)
    write_items(first, Kind.MODEL, _models(10))
    now = time.time()
    a = claim_jobs(first, 6, lease_seconds=30, now=now)
    b = claim_jobs(second, 6, lease_seconds=30, now=now)
    assert len(a) == 6 and len(b) == 4
    assert not {j.doc_key for j in a} & {j.doc_key for j in b}
    assert claim_jobs(first, 6, lease_seconds=30, now=now + 1) == []
    # The holder died: after the lease the same jobs are claimed again, the attempt counted.
    again = claim_jobs(second, 20, lease_seconds=30, now=now + 31)
    assert len(again) == 10 and {j.attempts for j in again} == {2}
    # Out of attempts and the last lease expired too: parked, with a reason.
    claim_jobs(first, 20, lease_seconds=30, now=now + 62)
    assert park_exhausted(first, 3, now=now + 93) == 10
    assert all(r["parked"] == 1 and "died" in r["last_error"] for r in _jobs(first))
    first.close()
    second.close()


def test_renewing_a_lease_never_takes_back_a_job_claimed_again(data_dir: Path) -> None:
    db = data_dir / "prometheus.db"
    first, second = connect(db), connect(db)
    write_items(first, Kind.MODEL, _models(4))
    now = time.time()
    slow = claim_jobs(first, 4, lease_seconds=30, now=now)
    renew_leases(first, slow, 30, now=now + 20)
    assert claim_jobs(second, 4, lease_seconds=30, now=now + 40) == []  # renewed, still held
    # The holder stalled past its lease: another worker takes the jobs, and the stale renewal leaves them be.
    taken = claim_jobs(second, 4, lease_seconds=30, now=now + 60)
    assert {j.doc_key for j in taken} == {j.doc_key for j in slow}
    renew_leases(first, slow, 300, now=now + 61)
    leases = {r["doc_key"]: r["lease_until"] for r in _jobs(first)}
    assert all(leases[j.doc_key] == now + 90 for j in slow)
    first.close()
    second.close()


def test_worker_embeds_skips_unchanged_text_and_uses_the_current_row(data_dir: Path) -> None:
    config = make_config(data_dir, embedding_batch_size=1)
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, _models(9))
    model = HashModel()
    stats = embed_all(config, model)
    # One claim (16 model batches' worth), encoded one model batch at a time.
    assert stats["embedded"] == 9 and stats["batches"] == 1 and model.calls == 9 and _jobs(conn) == []
    vectors = conn.execute("SELECT vector FROM embeddings").fetchall()
    norms = [float(np.linalg.norm(np.frombuffer(v[0], dtype="<f4"))) for v in vectors]
    assert len(norms) == 9 and all(abs(n - 1) < 1e-5 for n in norms)
    assert IndexStore(data_dir / "embeddings").read_meta().count == 9

    # Re-queued with the same text (the crawler resets jobs on undelete): nothing is embedded twice.
    conn.execute("INSERT INTO embed_jobs (doc_key, text_hash, enqueued_at) "
                 "SELECT doc_key, text_hash, 'now' FROM embeddings")
    calls = model.calls
    stats = embed_all(config, model)
    assert stats["embedded"] == 0 and stats["skipped"] == 9 and model.calls == calls

    # Text changed after the job was queued: the worker embeds what the row holds now.
    write_items(conn, Kind.MODEL, [repo("org/model-0", tags=["robotics"], pipeline_tag="robotics")])
    old = conn.execute("SELECT text_hash FROM embeddings WHERE doc_key = ?", (doc_key(Kind.MODEL, 1),)).fetchone()
    stats = embed_all(config, model)
    new = conn.execute("SELECT text_hash FROM embeddings WHERE doc_key = ?", (doc_key(Kind.MODEL, 1),)).fetchone()
    assert stats["embedded"] == 1 and old[0] != new[0]
    raw = conn.execute("SELECT raw FROM models WHERE pk = 1").fetchone()[0]
    assert new[0] == text_hash(item_text(record_from_row(Kind.MODEL, raw)))  # the text the row holds now
    conn.close()


def test_a_failing_item_is_parked_with_its_error_and_spares_its_batch(data_dir: Path) -> None:
    config = make_config(data_dir, embedding_batch_size=8)
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, [*_models(5), repo("org/poison", cardData={"title": "x"}, tags=["poison"])])
    worker = EmbeddingWorker(config, model=HashModel(fail_on="poison"), max_attempts=2, lease_seconds=0.01)
    for _ in range(4):
        asyncio.run(run_worker(config, asyncio.Event(), until_idle=True, worker=worker))
    jobs = _jobs(conn)
    assert len(jobs) == 1 and jobs[0]["parked"] == 1 and jobs[0]["attempts"] == 2
    assert "poison" in jobs[0]["last_error"]
    assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 5
    assert worker.stats.parked == 1
    worker.close()
    conn.close()


async def test_run_worker_returns_promptly_after_stop(data_dir: Path) -> None:
    config = make_config(data_dir, embedding_batch_size=2)
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, _models(50))

    class SlowModel(HashModel):
        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            time.sleep(0.05)
            return super().encode(texts, **kw)

    stop = asyncio.Event()
    worker = EmbeddingWorker(config, model=SlowModel())
    task = asyncio.create_task(run_worker(config, stop, worker=worker))
    await asyncio.sleep(0.3)  # the loop stays responsive while batches run in a thread
    stop.set()
    started = time.monotonic()
    result = await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 1.0
    assert 0 < result["embedded"] < 50
    # What was claimed but not finished is still queued; nothing is lost.
    embedded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    assert embedded + len(_jobs(conn)) == 50
    # The rest of the claim in hand is handed back: free at once, no attempt counted.
    assert all(r["lease_until"] is None and r["attempts"] == 0 for r in _jobs(conn))
    worker.close()
    conn.close()


def test_a_claim_outliving_its_lease_renews_it(data_dir: Path) -> None:
    """One claim encoded slower than its lease: no other worker can take its jobs meanwhile."""
    config = make_config(data_dir, embedding_batch_size=1)
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, _models(12))

    class SlowModel(HashModel):
        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            time.sleep(0.5)
            return super().encode(texts, **kw)

    worker = EmbeddingWorker(config, model=SlowModel(), lease_seconds=4)
    stop = asyncio.Event()
    thread_result: list[int] = []
    thread = threading.Thread(target=lambda: thread_result.append(worker.run_batch(stop.is_set)))
    thread.start()
    time.sleep(4.6)  # past the first lease: only a renewal keeps the jobs
    assert thread.is_alive()
    assert claim_jobs(conn, 20, lease_seconds=4) == []
    thread.join(30)
    assert thread_result == [12] and worker.stats.embedded == 12 and _jobs(conn) == []
    worker.close()
    conn.close()


def test_stopping_mid_claim_hands_back_the_untried_jobs(data_dir: Path) -> None:
    config = make_config(data_dir, embedding_batch_size=1)
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, _models(10))
    calls: list[int] = []

    class StopAfterThree(HashModel):
        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            calls.append(len(texts))
            return super().encode(texts, **kw)

    worker = EmbeddingWorker(config, model=StopAfterThree())
    assert worker.run_batch(lambda: len(calls) >= 3) == 10
    # The three batches done are stored; the seven never tried are free at once, no attempt counted.
    assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 3
    left = _jobs(conn)
    assert len(left) == 7 and all(r["lease_until"] is None and r["attempts"] == 0 for r in left)
    assert len(claim_jobs(conn, 20)) == 7
    worker.close()
    conn.close()


def test_worker_runs_index_build_tasks(data_dir: Path) -> None:
    config = make_config(data_dir)
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, _models(5))
    embed_all(config, HashModel())
    task = create_task(conn, "index_build")
    stats = embed_all(config, HashModel())
    done = get_task(conn, task.id)
    assert done is not None and done.status == "done" and done.result["count"] == 5
    assert stats["index_builds"] == 1
    conn.close()


def test_kill_9_mid_batch_loses_no_job(data_dir: Path, tmp_path: Path) -> None:
    """A real worker process killed mid-batch: its jobs come back after the lease and all get embedded."""
    total = 400
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"embedding_batch_size": 8}))
    conn = connect(data_dir / "prometheus.db")
    write_items(conn, Kind.MODEL, _models(total))
    env = cli_env(data_dir, PROMETHEUS_CONFIG=str(config_file), PROMETHEUS_EMBED_LEASE_SECONDS="3")
    proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py"), "embed"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            embedded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
            leased = conn.execute("SELECT count(*) FROM embed_jobs WHERE lease_until > ?", (time.time(),)).fetchone()[0]
            if embedded >= 64 and leased:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the worker never got going")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    embedded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    in_flight = conn.execute("SELECT count(*) FROM embed_jobs WHERE lease_until > ?", (time.time(),)).fetchone()[0]
    assert 0 < embedded < total and in_flight > 0
    # No job lost: every item has a vector or is still queued.
    assert embedded + len(_jobs(conn)) == total
    time.sleep(3.2)  # the dead worker's lease runs out
    out = run_cli("embed", "--until-idle", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == total
    assert _jobs(conn) == []
    assert IndexStore(data_dir / "embeddings").read_meta().count == total
    conn.close()


def test_real_model_vectors_are_normalised_float32() -> None:
    from core.embedder import encode

    vectors = encode(real_model(), ["a short text", "a much longer text " * 20])
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_bf16_only_where_the_cpu_has_it() -> None:
    from core.embedder import cpu_has_native_bf16

    assert cpu_has_native_bf16("flags : fpu sse avx512f avx512_bf16 amx_tile")
    assert cpu_has_native_bf16("flags : fpu amx_bf16")
    assert not cpu_has_native_bf16("flags : fpu sse avx2 avx512f")


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_batches_come_in_few_shapes_with_the_same_vectors(precision: str) -> None:
    """oneDNN keeps memory for every input shape the model meets: texts x tokens come in few shapes."""
    from core.embedder import MAX_SEQ_LENGTH, PAD_MULTIPLE, encode, load_model

    model = load_model("all-MiniLM-L6-v2", precision)
    shapes: set[tuple[int, int]] = set()
    model[0].register_forward_pre_hook(lambda _module, args: shapes.add(tuple(args[0]["input_ids"].shape)))
    texts = [" ".join(["llama", "gguf", "quantized", "instruct"][i % 4] for i in range(n)) for n in range(1, 300, 3)]
    sizes = (10, 3, 5, 6, 7, 1, 2, 9, 30, 27)  # a daemon's claims: a few changed items at a time
    assert sum(sizes) == len(texts)
    ends = list(accumulate(sizes))
    vectors = np.concatenate([encode(model, texts[end - size:end], batch_size=8)
                              for end, size in zip(ends, sizes, strict=True)])
    assert {rows for rows, _ in shapes} <= {1, 2, 4, 8}, shapes  # 3 texts go in as 4, 5-7 as 8, ...
    assert all(width % PAD_MULTIPLE[precision] == 0 and width <= MAX_SEQ_LENGTH for _, width in shapes), shapes
    # Padding is masked out and fillers are dropped: each text's vector is the one fp32 gives it alone.
    reference_model = load_model("all-MiniLM-L6-v2", "fp32")
    reference_model[0].processing_kwargs = {}
    reference = np.concatenate([encode(reference_model, [text], batch_size=1) for text in texts])
    assert vectors.shape == reference.shape == (len(texts), 384)
    assert (vectors * reference).sum(axis=1).min() >= 0.999


def test_batch_buckets() -> None:
    from core.embedder import batch_bucket

    assert [batch_bucket(n) for n in (1, 2, 3, 5, 8, 9, 16, 17, 63, 64)] == [1, 2, 4, 8, 8, 16, 16, 24, 64, 64]


def test_loading_the_model_writes_nothing_to_stderr() -> None:
    # A daemon child's stderr is the service's log, JSON lines only; huggingface_hub is imported
    # first, as in the daemon, so that an environment variable read at its import would not do.
    script = "import huggingface_hub\nfrom core.embedder import load_model\nload_model('all-MiniLM-L6-v2')\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_HUB_DISABLE", "TQDM"))}
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
