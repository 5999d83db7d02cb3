"""Query embeddings for the search process without torch: all-MiniLM-L6-v2's forward pass in numpy.

A search process embeds a few words per query; loading torch and sentence-transformers
for that cost 455 MB of RSS (bench/search.py at 1M items; this encoder: ~80 MB, half of it
file-backed weights shared between processes). This reads the same weights (safetensors) and tokenizer
(`tokenizers`, the Rust one sentence-transformers uses) and runs the 6-layer BERT, mean
pooling over the attention mask and L2 normalisation in float32 numpy. Vectors match
sentence-transformers' to cosine ≥ 0.9999 (tests/test_query_encoder.py checks it against
the real model), so they search an index built by the embedding worker.

Any model this module cannot run (another architecture, another pooling) falls back to
sentence-transformers, through the embedding worker's own loader.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)

MAX_SEQ_LENGTH = 256  # as the embedding worker truncates (core.embedder.MAX_SEQ_LENGTH)
_MASKED = np.float32(-1e9)


@dataclass(frozen=True)
class _Layer:
    qkv_w: np.ndarray  # (3·hidden, hidden): query, key and value in one product
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_w: np.ndarray
    ln1_b: np.ndarray
    ff1_w: np.ndarray
    ff1_b: np.ndarray
    ff2_w: np.ndarray
    ff2_b: np.ndarray
    ln2_w: np.ndarray
    ln2_b: np.ndarray


class UnsupportedModel(ValueError):
    """The directory holds a model this encoder does not implement."""


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2))))


def _check_supported(path: Path) -> dict[str, Any]:
    """BERT with absolute positions and GELU, mean pooling, then Normalize; anything else is refused."""
    needed = ["config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json"]
    missing = [name for name in needed if not (path / name).is_file()]
    if missing:
        raise UnsupportedModel(f"{path}: missing {', '.join(missing)}")
    config = json.loads((path / "config.json").read_text())
    if (config.get("model_type") != "bert" or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"):
        raise UnsupportedModel(f"{path}: not a BERT model with absolute positions and GELU")
    pooling = json.loads((path / "1_Pooling/config.json").read_text())
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise UnsupportedModel(f"{path}: pooling {sorted(modes)}, only mean pooling is implemented")
    modules = [m.get("type", "") for m in json.loads((path / "modules.json").read_text())]
    if modules != ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
                   "sentence_transformers.models.Normalize"]:
        raise UnsupportedModel(f"{path}: modules {modules}")
    return config


def _single_threaded_blas() -> None:
    """One BLAS thread for this process. A query is a handful of tokens: threads cannot split such
    small products usefully, and on busy cores OpenBLAS's spinning threads made a query ~10× slower
    (190 ms against 19 ms at load 6 on 2 cores). Searches run in parallel on separate threads instead."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only the speed on busy cores depends on it
        return
    threadpool_limits(1, user_api="blas")


def _mapped_tensors(path: Path) -> dict[str, np.ndarray]:
    """float32 tensors of a safetensors file as read-only views of its memory map: pages are read on
    use (most of the 47 MB token-embedding table never is) and shared with every process mapping it."""
    with open(path, "rb") as handle:
        header_size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_size))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_size)
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__" or spec["dtype"] != "F32":
            continue  # (int64 position ids); a weight of another dtype is then reported missing
        start, end = spec["data_offsets"]
        tensors[name] = data[start:end].view("<f4").reshape(spec["shape"])
    return tensors


class QueryEncoder:
    """A sentence-transformers BERT (mean pooling, normalised) as numpy; `encode` mirrors the library's."""

    def __init__(self, path: str | Path, max_seq_length: int = MAX_SEQ_LENGTH) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        config = _check_supported(path)
        st_config = path / "sentence_bert_config.json"
        if st_config.is_file():
            max_seq_length = min(max_seq_length, int(json.loads(st_config.read_text()).get("max_seq_length")
                                                     or max_seq_length))
        self.max_seq_length = max_seq_length
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_seq_length)
        self.tokenizer.no_padding()
        _single_threaded_blas()
        weights = _mapped_tensors(path / "model.safetensors")
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> np.ndarray:
            if prefix + name not in weights:
                raise UnsupportedModel(f"{path}: no float32 tensor {prefix + name}")
            return weights[prefix + name]

        def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
            # Stored (out, in): used as `x @ w.T`, which BLAS takes transposed, without a copy.
            return w(f"{name}.weight"), w(f"{name}.bias")

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        for i in range(int(config["num_hidden_layers"])):
            base = f"encoder.layer.{i}."
            parts = [linear(base + f"attention.self.{p}") for p in ("query", "key", "value")]
            out_w, out_b = linear(base + "attention.output.dense")
            ff1_w, ff1_b = linear(base + "intermediate.dense")
            ff2_w, ff2_b = linear(base + "output.dense")
            self.layers.append(_Layer(
                qkv_w=np.concatenate([p[0] for p in parts]), qkv_b=np.concatenate([p[1] for p in parts]),
                out_w=out_w, out_b=out_b,
                ln1_w=w(base + "attention.output.LayerNorm.weight"), ln1_b=w(base + "attention.output.LayerNorm.bias"),
                ff1_w=ff1_w, ff1_b=ff1_b, ff2_w=ff2_w, ff2_b=ff2_b,
                ln2_w=w(base + "output.LayerNorm.weight"), ln2_b=w(base + "output.LayerNorm.bias"),
            ))

    def get_sentence_embedding_dimension(self) -> int:
        return self.hidden

    def encode(self, texts: list[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """Normalised float32 vectors, in the order of `texts` (extra keyword arguments are ignored)."""
        if not texts:
            return np.zeros((0, self.hidden), dtype=np.float32)
        out = np.empty((len(texts), self.hidden), dtype=np.float32)
        # Length-sorted batches pad less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), max(1, batch_size)):
            chosen = order[start:start + batch_size]
            out[chosen] = self._forward([texts[i] for i in chosen])
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1.0
        batch, heads, head_dim = len(texts), self.heads, self.hidden // self.heads
        h = self.word[ids] + self.position[:length] + self.token_type
        h = _layer_norm(h, *self.emb_ln, self.eps)
        bias = ((1.0 - mask) * _MASKED)[:, None, None, :]
        scale = np.float32(1 / math.sqrt(head_dim))
        for layer in self.layers:
            qkv = (h @ layer.qkv_w.T + layer.qkv_b).reshape(batch, length, 3, heads, head_dim)
            q, k, v = (qkv[:, :, j].transpose(0, 2, 1, 3) for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            h = _layer_norm(h + context @ layer.out_w.T + layer.out_b, layer.ln1_w, layer.ln1_b, self.eps)
            ff = _gelu(h @ layer.ff1_w.T + layer.ff1_b) @ layer.ff2_w.T + layer.ff2_b
            h = _layer_norm(h + ff, layer.ln2_w, layer.ln2_b, self.eps)
        pooled = (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def load_query_encoder(name: str, precision: str = "auto") -> Any:
    """The numpy encoder for `name` (config `embedding_model`) where it can run it, else sentence-transformers."""
    from core.embedder import load_model, resolve_model_path

    try:
        path = Path(resolve_model_path(name))
        if not path.is_dir():
            raise UnsupportedModel(f"{name}: not a local model directory")
        return QueryEncoder(path)
    except (ImportError, OSError, KeyError, ValueError) as exc:
        log.info("query_encoder_fallback", model=name, reason=str(exc))
    return load_model(name, precision)
