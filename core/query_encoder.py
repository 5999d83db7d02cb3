"""Query embeddings for the search process without torch: all-MiniLM-L6-v2 run by ONNX Runtime.

A search process embeds a few words per query; loading torch and sentence-transformers
for that cost 455 MB of RSS (bench/search.py at 1M items). This reads the same weights
(safetensors) and tokenizer (`tokenizers`, the Rust one sentence-transformers uses), looks the
token embeddings up in numpy (the 47 MB table stays a shared, file-backed memory map), builds the
6-layer BERT encoder as an ONNX graph from those weights, and runs it with ONNX Runtime on one
thread: ~3.4 ms CPU for a 12-token query here, against ~14 ms for the same layers as numpy products
(OpenBLAS is slow on such thin matrices). No model file is exported or cached: the graph is built
in memory when the process first embeds a query. Mean pooling over the attention mask and L2
normalisation follow in numpy. Vectors match sentence-transformers' to cosine ≥ 0.9999
(tests/test_query_encoder.py checks it against the real model), so they search an index built by
the embedding worker.

Any model this module cannot run (another architecture, another pooling) falls back to
sentence-transformers, through the embedding worker's own loader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import structlog

log = structlog.get_logger(__name__)

MAX_SEQ_LENGTH = 256  # as the embedding worker truncates (core.embedder.MAX_SEQ_LENGTH)
_MASKED = np.float32(-1e9)


class UnsupportedModel(ValueError):
    """The directory holds a model this encoder does not implement."""


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def _encoder_graph(layers: list[dict[str, np.ndarray]], heads: int, hidden: int, eps: float) -> bytes:
    """BERT's encoder layers as a serialised ONNX model: inputs `hidden` (batch, length, hidden), the
    embeddings after their LayerNorm, and `bias` (batch, 1, 1, length), 0 for tokens and -1e9 for padding;
    output `last` (batch, length, hidden). GELU is written as x·½·(1 + erf(x/√2)), the pattern ONNX
    Runtime fuses into its Gelu kernel."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    weights: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def linear(x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
        # Stored (out, in) as in torch; MatMul wants (in, out).
        product = node("MatMul", [x, const(f"{name}.w", weight.T)], f"{name}.mm")
        return node("Add", [product, const(f"{name}.b", bias)], name)

    def layer_norm(x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
        return node("LayerNormalization", [x, const(f"{name}.w", weight), const(f"{name}.b", bias)], name,
                    axis=-1, epsilon=eps)

    head_dim = hidden // heads
    split_heads = const("split_heads", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_heads = const("merge_heads", np.array([0, 0, hidden], dtype=np.int64))
    scale = const("scale", np.array(1 / math.sqrt(head_dim), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2), dtype=np.float32))
    one = const("one", np.array(1, dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    h = "hidden"
    for i, w in enumerate(layers):
        p = f"l{i}"
        heads_of = {}
        for part in ("q", "k", "v"):
            projected = linear(h, f"{p}.{part}", w[f"{part}_w"], w[f"{part}_b"])
            shaped = node("Reshape", [projected, split_heads], f"{p}.{part}.heads")
            # Keys transposed for Q·Kᵀ; queries and values as (batch, heads, length, head_dim).
            perm = [0, 2, 3, 1] if part == "k" else [0, 2, 1, 3]
            heads_of[part] = node("Transpose", [shaped], f"{p}.{part}.t", perm=perm)
        scores = node("MatMul", [heads_of["q"], heads_of["k"]], f"{p}.scores")
        scores = node("Add", [node("Mul", [scores, scale], f"{p}.scaled"), "bias"], f"{p}.masked")
        probs = node("Softmax", [scores], f"{p}.probs", axis=-1)
        context = node("MatMul", [probs, heads_of["v"]], f"{p}.context")
        context = node("Transpose", [context], f"{p}.context.t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merge_heads], f"{p}.context.merged")
        attended = linear(context, f"{p}.out", w["out_w"], w["out_b"])
        h = layer_norm(node("Add", [h, attended], f"{p}.res1"), f"{p}.ln1", w["ln1_w"], w["ln1_b"])
        up = linear(h, f"{p}.ff1", w["ff1_w"], w["ff1_b"])
        erf = node("Erf", [node("Div", [up, sqrt2], f"{p}.gelu.div")], f"{p}.gelu.erf")
        gated = node("Mul", [up, node("Add", [erf, one], f"{p}.gelu.add")], f"{p}.gelu.mul")
        gelu = node("Mul", [gated, half], f"{p}.gelu")
        down = linear(gelu, f"{p}.ff2", w["ff2_w"], w["ff2_b"])
        h = layer_norm(node("Add", [h, down], f"{p}.res2"), f"{p}.ln2", w["ln2_w"], w["ln2_b"])
    nodes.append(helper.make_node("Identity", [h], ["last"]))
    graph = helper.make_graph(
        nodes, "bert_encoder",
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "length", hidden]),
         helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["batch", 1, 1, "length"])],
        [helper.make_tensor_value_info("last", TensorProto.FLOAT, ["batch", "length", hidden])],
        initializer=weights)
    # IR version 8 (the opset-17 era): newer onnx packages default to IR versions ONNX Runtime may not read yet.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def _session(model: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread, not spinning: a query is a handful of tokens, too little to split across threads,
    # and searches already run in parallel on the API's threads. Spinning pool threads on busy cores
    # made a query ~10× slower with OpenBLAS (190 ms against 19 ms at load 6 on 2 cores).
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


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
    """A sentence-transformers BERT (mean pooling, normalised) on ONNX Runtime; `encode` mirrors the library's."""

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
        weights = _mapped_tensors(path / "model.safetensors")
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

        def w(name: str) -> np.ndarray:
            if prefix + name not in weights:
                raise UnsupportedModel(f"{path}: no float32 tensor {prefix + name}")
            return weights[prefix + name]

        self.word = w("embeddings.word_embeddings.weight")
        self.position = w("embeddings.position_embeddings.weight")
        self.token_type = w("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        layers: list[dict[str, np.ndarray]] = []
        for i in range(int(config["num_hidden_layers"])):
            base = f"encoder.layer.{i}."
            layer = {}
            for short, name in (("q", "attention.self.query"), ("k", "attention.self.key"),
                                ("v", "attention.self.value"), ("out", "attention.output.dense"),
                                ("ff1", "intermediate.dense"), ("ff2", "output.dense"),
                                ("ln1", "attention.output.LayerNorm"), ("ln2", "output.LayerNorm")):
                layer[f"{short}_w"] = w(f"{base}{name}.weight")
                layer[f"{short}_b"] = w(f"{base}{name}.bias")
            layers.append(layer)
        self.session = _session(_encoder_graph(layers, self.heads, self.hidden, self.eps))

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
        h = _layer_norm(self.word[ids] + self.position[:length] + self.token_type, *self.emb_ln, self.eps)
        bias = ((1.0 - mask) * _MASKED)[:, None, None, :]
        h = self.session.run(["last"], {"hidden": h.astype(np.float32, copy=False), "bias": bias})[0]
        pooled = (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def load_query_encoder(name: str, precision: str = "auto") -> Any:
    """The ONNX Runtime encoder for `name` (config `embedding_model`) where it runs it, else sentence-transformers."""
    from core.embedder import load_model, resolve_model_path

    try:
        path = Path(resolve_model_path(name))
        if not path.is_dir():
            raise UnsupportedModel(f"{name}: not a local model directory")
        return QueryEncoder(path)
    except (ImportError, OSError, KeyError, ValueError) as exc:
        log.info("query_encoder_fallback", model=name, reason=str(exc))
    return load_model(name, precision)
