"""Helpers for the search, embedder and relevance tests: corpora written through the crawler's page writer,
the real model loaded once per test session, and a fast deterministic stand-in model for queue tests."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from core.config import Config, load_config
from core.hub.records import parse_paper, parse_repo
from core.kinds import Kind
from core.store import connect, write_tx
from core.store.items import write_page

SEEN_AT = "2025-06-01T00:00:00.000Z"


@functools.cache
def real_model() -> Any:
    from core.embedder import load_model

    return load_model("all-MiniLM-L6-v2")


class HashModel:
    """Deterministic bag-of-words vectors: fast, and close texts get close vectors.

    `fail_on` makes encode raise for any batch holding a text with that substring.
    """

    def __init__(self, fail_on: str | None = None, dim: int = 384) -> None:
        self.fail_on = fail_on
        self.dim = dim
        self.calls = 0

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        self.calls += 1
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise RuntimeError(f"cannot embed text containing {self.fail_on!r}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def make_config(data_dir: Path, **values: Any) -> Config:
    config = load_config(str(data_dir), env={})
    for key, value in values.items():
        setattr(config, key, value)
    return config


def repo(repo_id: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id, "likes": 0,
                            "downloads": 0, "tags": [], "createdAt": "2025-01-01T00:00:00.000Z",
                            "lastModified": "2025-01-01T00:00:00.000Z", "sha": "a" * 40}
    item.update(fields)
    return item


def paper(paper_id: str, title: str, summary: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": paper_id, "title": title, "summary": summary, "authors": [],
                            "publishedAt": "2025-01-01T00:00:00.000Z", "upvotes": 0}
    item.update(fields)
    return item


def write_items(conn: sqlite3.Connection, kind: Kind, items: list[dict[str, Any]], seen_at: str = SEEN_AT) -> None:
    records = [parse_paper(i) if kind is Kind.PAPER else parse_repo(kind, i) for i in items]
    for start in range(0, len(records), 500):
        with write_tx(conn):
            write_page(conn, kind, records[start:start + 500], seen_at)


def write_corpus(db_path: Path, corpus: dict[Kind, list[dict[str, Any]]]) -> None:
    conn = connect(db_path)
    try:
        for kind, items in corpus.items():
            if items:
                write_items(conn, kind, items)
    finally:
        conn.close()


def embed_all(config: Config, model: Any = None) -> dict[str, Any]:
    from core.embedder import EmbeddingWorker, run_worker

    worker = EmbeddingWorker(config, model=model or real_model())
    try:
        return asyncio.run(run_worker(config, asyncio.Event(), until_idle=True, worker=worker))
    finally:
        worker.close()


# -- a small corpus with known answers, for search tests ---------------------------------

def small_corpus() -> dict[Kind, list[dict[str, Any]]]:
    models = [
        repo("TheBloke/Llama-2-7B-GGUF", author="TheBloke", downloads=5000, likes=40, pipeline_tag="text-generation",
             library_name="gguf", tags=["gguf", "llama", "text-generation", "license:llama2",
                                        "base_model:quantized:meta-llama/Llama-2-7b-hf"],
             gguf={"total": 6_738_415_616}, createdAt="2023-09-01T00:00:00.000Z"),
        repo("TheBloke/Llama-2-7B-AWQ", author="TheBloke", downloads=800, likes=4, pipeline_tag="text-generation",
             library_name="transformers", tags=["awq", "llama", "text-generation", "license:llama2",
                                                "base_model:quantized:meta-llama/Llama-2-7b-hf"],
             createdAt="2023-09-02T00:00:00.000Z"),
        repo("meta-llama/Llama-2-7b-hf", author="meta-llama", downloads=90000, likes=1000,
             pipeline_tag="text-generation", library_name="transformers",
             tags=["transformers", "llama", "text-generation", "license:llama2"],
             safetensors={"total": 6_738_415_616}, createdAt="2023-07-01T00:00:00.000Z"),
        repo("vicgalle/llama-2-7b-chat-finetune", author="vicgalle", downloads=50, likes=1,
             pipeline_tag="text-generation", library_name="transformers",
             tags=["llama", "text-generation", "license:apache-2.0", "base_model:finetune:meta-llama/Llama-2-7b-hf"],
             safetensors={"total": 6_738_415_616}, createdAt="2023-10-01T00:00:00.000Z"),
        repo("meta-llama/Llama-2-13b-hf", author="meta-llama", downloads=40000, likes=500,
             pipeline_tag="text-generation", library_name="transformers",
             tags=["transformers", "llama", "text-generation", "license:llama2"],
             safetensors={"total": 13_015_864_320}, createdAt="2023-07-02T00:00:00.000Z"),
        repo("openai/whisper-large-v3", author="openai", downloads=80000, likes=3000,
             pipeline_tag="automatic-speech-recognition", library_name="transformers",
             tags=["transformers", "audio", "automatic-speech-recognition", "license:apache-2.0"],
             safetensors={"total": 1_550_000_000}, createdAt="2023-11-01T00:00:00.000Z"),
        repo("stabilityai/stable-diffusion-xl-base-1.0", author="stabilityai", downloads=70000, likes=5000,
             pipeline_tag="text-to-image", library_name="diffusers",
             tags=["diffusers", "text-to-image", "license:openrail++"], createdAt="2023-07-20T00:00:00.000Z"),
        repo("sentence-transformers/all-MiniLM-L6-v2", author="sentence-transformers", downloads=60000, likes=2000,
             pipeline_tag="sentence-similarity", library_name="sentence-transformers",
             tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "license:apache-2.0"],
             createdAt="2021-01-01T00:00:00.000Z"),
        repo("gone/deleted-llama", author="gone", downloads=999999, tags=["llama"],
             createdAt="2023-01-01T00:00:00.000Z"),
    ]
    datasets = [
        repo("rajpurkar/squad_v2", author="rajpurkar", downloads=3000, likes=100,
             description="Stanford Question Answering Dataset: reading comprehension questions posed on Wikipedia "
                         "articles, including unanswerable questions.",
             tags=["task_categories:question-answering", "language:en", "license:cc-by-sa-4.0"]),
        repo("acme/llama-chat-logs", author="acme", downloads=10,
             description="Conversations collected from a llama chatbot.", tags=["language:en"]),
    ]
    spaces = [
        repo("gradio/whisper-demo", author="gradio", likes=30, sdk="gradio",
             cardData={"title": "Whisper demo", "short_description": "Transcribe your voice recordings to text"},
             tags=["gradio"]),
    ]
    papers = [
        paper("2307.09288", "Llama 2: Open Foundation and Fine-Tuned Chat Models",
              "We develop and release Llama 2, a collection of pretrained and fine-tuned large language models.",
              authors=[{"name": "Hugo Touvron"}], upvotes=30, publishedAt="2023-07-18T00:00:00.000Z"),
        paper("2212.04356", "Robust Speech Recognition via Large-Scale Weak Supervision",
              "We study the capabilities of speech processing systems trained to predict transcripts of audio.",
              authors=[{"name": "Alec Radford"}], upvotes=12, publishedAt="2022-12-06T00:00:00.000Z"),
    ]
    return {Kind.MODEL: models, Kind.DATASET: datasets, Kind.SPACE: spaces, Kind.PAPER: papers}
