"""The search path's ONNX Runtime query encoder against the real sentence-transformers model, and its fallback."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.embedder import encode, load_model, resolve_model_path
from core.query_encoder import QueryEncoder, UnsupportedModel, load_query_encoder
from tests.conftest import PROJECT_ROOT

WORDS = ["llama", "mistral", "qwen", "gguf", "awq", "whisper", "speech", "recognition", "stable", "diffusion",
         "medical", "legal", "contracts", "python", "code", "instruct", "chat", "7B", "dataset", "reviews",
         "histopathology", "translation", "german", "japanese", "summarization", "embeddings", "lora", "merge"]
ODD = ["", "x", "🦙 llama", "ünïcödé", "'; DROP TABLE models; --", "a:b:c", "{a b}", "+++", "\\", "Llama-2-7B-GGUF",
       "TheBloke/Llama-2-7B-GGUF", "北京 语言 模型", "  spaces   around  "]


def _texts() -> list[str]:
    rng = random.Random(11)
    texts = list(ODD)
    texts += [" ".join(rng.choices(WORDS, k=rng.randint(1, 8))) for _ in range(200)]
    texts += [f"{rng.choice(WORDS)} {rng.choice(WORDS)} model for {rng.choice(WORDS)} "
              f"{' '.join(rng.choices(WORDS, k=rng.randint(10, 40)))}." for _ in range(40)]
    # Past the 256-token truncation: both must cut at the same place.
    texts += [" ".join(rng.choices(WORDS, k=300)) for _ in range(3)]
    return texts


@pytest.fixture(scope="module")
def encoder() -> QueryEncoder:
    return QueryEncoder(resolve_model_path("all-MiniLM-L6-v2"))


def test_matches_sentence_transformers(encoder: QueryEncoder) -> None:
    texts = _texts()
    reference = encode(load_model("all-MiniLM-L6-v2", "fp32"), texts, 32)
    ours = encoder.encode(texts, batch_size=16)
    assert ours.shape == reference.shape == (len(texts), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * reference).sum(axis=1)
    assert cosine.min() >= 0.9999, (cosine.min(), texts[int(cosine.argmin())])
    # Batching (padding) does not change a text's vector.
    single = np.stack([encoder.encode([t])[0] for t in texts[:20]])
    np.testing.assert_allclose(single, ours[:20], atol=1e-5)


def test_unsupported_model_falls_back_to_sentence_transformers(tmp_path: Path) -> None:
    # The same weights pooled by CLS token: sentence-transformers runs it, the ONNX encoder must not.
    model_dir = tmp_path / "cls-model"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), model_dir)
    pooling = model_dir / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    with pytest.raises(UnsupportedModel):
        QueryEncoder(model_dir)
    fallback = load_query_encoder(str(model_dir))
    assert type(fallback).__name__ == "SentenceTransformer"
    assert type(load_query_encoder("all-MiniLM-L6-v2")).__name__ == "QueryEncoder"


def test_search_process_never_imports_torch(tmp_path: Path) -> None:
    script = f"""
import sys
from core.config import load_config
from core.search import SearchEngine
engine = SearchEngine(load_config({str(tmp_path / 'data')!r}, env={{}}))
vector = engine.embed_query("llama gguf for legal contracts")
assert vector.shape == (384,), vector.shape
for mode in ("keyword", "semantic", "hybrid"):
    engine.search("llama gguf", mode=mode)
print(sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
