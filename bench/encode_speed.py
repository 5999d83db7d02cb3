"""Encode-speed benchmark: texts/s and fidelity of faster ways to run all-MiniLM-L6-v2 on CPU.

    .venv/bin/python bench/encode_speed.py [--mix models=600,datasets=150,spaces=200,papers=50]
                                           [--repeats 2] [--batch 64] [--only ort] [--workdir DIR]

Texts are the real item texts (`core.itemtext.item_text`) of items drawn from the seeded fake Hub corpus,
parsed by the crawler's own record parsers, in Hub-like proportions (`--mix`). Every variant encodes the
same texts in batches of `--batch`, sorted by length (as sentence-transformers does), and is compared
with the fp32 sentence-transformers baseline (exactly what `core.embedder.encode` runs): texts/s is the
best of `--repeats` timed runs after a warm-up; mean and min cosine are per text against the baseline
vector. A variant is kept when its mean cosine is at least `--keep` (0.99).

Variants (* = only with --all: slow, or already known to lose):
  st-fp32                   sentence-transformers, torch fp32, torch's default threads (the baseline: what
                            `core.embedder.encode` runs)
  st-fp32-t1 / -t2          the same with torch.set_num_threads(1) / (2) (-t2 only where the default is not 2)
  st-bf16-autocast          torch.autocast("cpu", bfloat16) around the baseline encode; st-fp16-autocast*
  st-bf16-weights           the BertModel cast to bf16, mean pooling and normalising in fp32 (numpy)
  st-bf16-model             the whole SentenceTransformer .to(bfloat16), called through core.embedder.encode
                            unchanged (pooling in bf16; encode's np.asarray(..., float32) casts back)
  torch-dyn-int8*           torch.ao dynamic int8 on every nn.Linear (the issue's 0.93 reference)
  ort-fp32                  BertModel -> ONNX (torch.onnx.export), ONNX Runtime CPU, pooling in numpy
  ort-fp32-opt              the same after onnxruntime.transformers.optimizer (fused attention/LayerNorm/GELU)
  ort-int8-tensor*/-channel onnxruntime.quantization.quantize_dynamic of the plain graph, every MatMul (the
                            activation x activation ones of attention included) and the embedding Gathers,
                            per-tensor / per-channel weight scales
  ort-int8-channel-skip-l0* / -skip-attn*  per-channel, layer 0 / all attention MatMuls left in fp32
  ort-int8-weights[-t1]     per-channel, only the 36 weight MatMuls (Q.K^T and attn.V and the embeddings stay
                            fp32); -t1: one ORT thread
  ort-opt-int8-matmul[-t1]  the optimized graph with its 18 weight MatMuls int8 (fused Attention stays fp32)
  ort-opt-int8-all          the optimized graph with MatMul and the fused Attention (QAttention) int8

ONNX files go to `--workdir` (default: a fresh temporary directory), never into the repo.
Needs `onnxruntime` and `onnx` in the venv for the ort-* variants (they are skipped, with a note, without).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's "consider pre-processing" advice

from core.embedder import DEFAULT_MODEL, MAX_SEQ_LENGTH, encode, load_model  # noqa: E402

Encoder = Callable[[list[str]], np.ndarray]


# -- texts ---------------------------------------------------------------------------


def parse_mix(text: str) -> dict[str, int]:
    mix = {"models": 0, "datasets": 0, "spaces": 0, "papers": 0}
    for part in text.split(","):
        name, _, count = part.partition("=")
        if name.strip() not in mix:
            raise SystemExit(f"--mix: unknown kind {name!r} (models, datasets, spaces, papers)")
        mix[name.strip()] = int(count)
    return mix


def corpus_texts(mix: dict[str, int], seed: int) -> list[str]:
    """item_text of every item of a small fake-Hub corpus, via the crawler's parsers."""
    from core.hub.fake.corpus import Corpus
    from core.hub.fake.wire import ALL_FIELDS, OPTIONAL_FIELDS
    from core.hub.records import parse_paper, parse_repo
    from core.itemtext import item_text
    from core.kinds import Kind

    corpus = Corpus(models=mix["models"], datasets=mix["datasets"], spaces=mix["spaces"],
                    papers=mix["papers"], seed=seed)
    texts: list[str] = []
    for plural, kind in (("models", Kind.MODEL), ("datasets", Kind.DATASET), ("spaces", Kind.SPACE)):
        table = corpus.table(plural)
        rows = table.render(np.arange(mix[plural]), ALL_FIELDS[plural], OPTIONAL_FIELDS[plural])
        texts += [item_text(parse_repo(kind, row)) for row in rows]
    texts += [item_text(parse_paper(paper)) for paper in corpus.papers.ordered("publishedAt")[:mix["papers"]]]
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.permutation(len(texts))]


# -- torch / sentence-transformers variants ------------------------------------------


@contextlib.contextmanager
def torch_threads(n: int | None):  # type: ignore[no-untyped-def]
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def st_encoder(model, batch: int, threads: int | None = None, autocast=None) -> Encoder:  # type: ignore[no-untyped-def]
    import torch

    def run(texts: list[str]) -> np.ndarray:
        with torch_threads(threads), torch.inference_mode():
            if autocast is None:
                return encode(model, texts, batch)
            with torch.autocast("cpu", dtype=autocast):
                out = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_tensor=True,
                                   show_progress_bar=False)
            return out.float().numpy()

    return run


def torch_module_encoder(model, transformer, batch: int, dtype=None) -> Encoder:  # type: ignore[no-untyped-def]
    """A bare (possibly converted) BertModel with the baseline's tokenizer, mean pooling and normalising."""
    import torch

    tokenizer = model.tokenizer

    def run(texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), transformer.config.hidden_size), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                idx = order[start:start + batch]
                enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                max_length=model.max_seq_length, return_tensors="pt")
                hidden = transformer(**enc).last_hidden_state.float()
                out[idx] = pool(hidden.numpy(), enc["attention_mask"].numpy())
        return out

    return run


def pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    vectors = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


# -- ONNX Runtime variants -----------------------------------------------------------


def export_onnx(model, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The underlying BertModel (eager attention, so the optimizer can fuse it) -> ONNX, dynamic batch/length."""
    import torch

    if path.exists():
        return path
    bert = copy.deepcopy(model[0].auto_model).eval()
    with contextlib.suppress(Exception):
        bert.set_attn_implementation("eager")

    class Wrapped(torch.nn.Module):
        def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    enc = model.tokenizer(["a short one", "a somewhat longer sentence to export with"], padding=True,
                          return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Wrapped(bert), tuple(enc[n] for n in names), str(path), input_names=names,
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in [*names, "last_hidden_state"]})
    return path


def optimize_onnx(src: Path, dst: Path, config) -> Path:  # type: ignore[no-untyped-def]
    from onnxruntime.transformers.optimizer import optimize_model

    if not dst.exists():
        opt = optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                             hidden_size=config.hidden_size, opt_level=1, use_gpu=False)
        print(f"  optimizer fused: {opt.get_fused_operator_statistics()}", flush=True)
        opt.save_model_to_file(str(dst))
    return dst


def quantize(src: Path, dst: Path, *, per_channel: bool, exclude: list[str] | None = None,
             op_types: list[str] | None = None) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not dst.exists():
        # DefaultTensorType: shape inference cannot type the outputs of the optimizer's contrib ops
        # (Attention, SkipLayerNormalization), and the quantizer refuses such a graph without it.
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                         nodes_to_exclude=exclude or [], op_types_to_quantize=op_types,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


def select_nodes(path: Path, want: Callable[[object, set[str]], bool]) -> list[str]:
    """Names of the MatMul/Attention nodes of a graph for which `want(node, initializer_names)` holds."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Attention", "Gemm") and want(n, inits)]


def ort_encoder(model, path: Path, batch: int, threads: int) -> Encoder:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    tokenizer = model.tokenizer
    dim = model[0].auto_model.config.hidden_size

    def run(texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch):
            idx = order[start:start + batch]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=model.max_seq_length,
                            return_tensors="np")
            hidden = session.run(None, {n: enc[n].astype(np.int64) for n in inputs})[0]
            out[idx] = pool(hidden, enc["attention_mask"])
        return out

    return run


# -- measuring -----------------------------------------------------------------------


def measure(encoder: Encoder, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    encoder(texts[:64])  # warm-up: allocations, kernels chosen, lazy init
    best, vectors = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        vectors = encoder(texts)
        best = min(best, time.perf_counter() - started)
    assert vectors is not None
    return len(texts) / best, np.asarray(vectors, dtype=np.float32)


def cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    got = got / np.clip(np.linalg.norm(got, axis=1, keepdims=True), 1e-12, None)
    return (ref * got).sum(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", default="models=600,datasets=150,spaces=200,papers=50",
                        help="how many texts of each kind (fake Hub corpus)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per variant; the best is reported")
    parser.add_argument("--keep", type=float, default=0.99, help="mean cosine a variant must reach to be kept")
    parser.add_argument("--only", default="", help="comma-separated substrings: run only matching variants "
                                                   "(the baseline always runs)")
    parser.add_argument("--all", action="store_true", help="also the variants known to be slow or lossy "
                                                           "(fp16 autocast, torch dynamic int8, ...)")
    parser.add_argument("--workdir", default="", help="where ONNX files go (default: a temporary directory)")
    args = parser.parse_args()

    import torch

    total_started = time.perf_counter()
    texts = corpus_texts(parse_mix(args.mix), args.seed)
    model = load_model(DEFAULT_MODEL)
    lengths = np.array([len(model.tokenizer(t, truncation=True, max_length=model.max_seq_length)["input_ids"])
                        for t in texts])
    print(f"{len(texts)} texts ({args.mix}); tokens mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, "
          f"p90 {np.percentile(lengths, 90):.0f}, max {lengths.max()} (max_seq_length {MAX_SEQ_LENGTH}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu {os.cpu_count()}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}; batch {args.batch}; best of {args.repeats}",
          flush=True)

    tmp = None
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="encode-speed-")
        workdir = Path(tmp.name)
    threads = torch.get_num_threads()
    config = model[0].auto_model.config

    def onnx_base() -> Path:
        return export_onnx(model, workdir / "model.onnx")

    def onnx_opt() -> Path:
        return optimize_onnx(onnx_base(), workdir / "model.opt.onnx", config)

    def first_layer(node, inits: set[str]) -> bool:  # type: ignore[no-untyped-def]
        return any("layer.0/" in x or "layer.0." in x for x in (node.name, *node.input))

    def attention(node, inits: set[str]) -> bool:  # type: ignore[no-untyped-def]
        return any("attention" in x.lower() for x in (node.name, *node.input))

    def activation_matmul(node, inits: set[str]) -> bool:  # type: ignore[no-untyped-def]
        """Q.K^T and attention.V: both operands are activations, quantized per batch on the fly."""
        return node.op_type == "MatMul" and not any(i in inits for i in node.input)

    def ort_int8(src: Callable[[], Path], tag: str, *, per_channel: bool, exclude=None,  # type: ignore[no-untyped-def]
                 op_types: list[str] | None = None, n_threads: int | None = None) -> Encoder:
        base = src()
        skip = select_nodes(base, exclude) if exclude else []
        if exclude:
            print(f"  {tag}: {len(skip)} nodes left in fp32", flush=True)
        path = quantize(base, workdir / f"{tag}.onnx", per_channel=per_channel, exclude=skip, op_types=op_types)
        return ort_encoder(model, path, args.batch, n_threads or threads)

    def torch_dyn_int8() -> Encoder:
        bert = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model[0].auto_model).eval(),
                                                      {torch.nn.Linear}, dtype=torch.qint8)
        return torch_module_encoder(model, bert, args.batch)

    def bf16_weights() -> Encoder:
        bert = copy.deepcopy(model[0].auto_model).eval().to(torch.bfloat16)
        return torch_module_encoder(model, bert, args.batch)

    def st_bf16_model() -> Encoder:
        bf16 = copy.deepcopy(model).to(torch.bfloat16)
        bf16.max_seq_length = model.max_seq_length
        return lambda texts: encode(bf16, texts, args.batch)

    weights_only = {"per_channel": True, "exclude": activation_matmul, "op_types": ["MatMul"]}
    # (name, build, in the default set): the others run with --all (slow or already known to lose).
    variants: list[tuple[str, Callable[[], Encoder], bool]] = [
        ("st-fp32-t1", lambda: st_encoder(model, args.batch, threads=1), True),
        ("st-fp32-t2", lambda: st_encoder(model, args.batch, threads=2), threads != 2),
        ("st-bf16-autocast", lambda: st_encoder(model, args.batch, autocast=torch.bfloat16), True),
        ("st-fp16-autocast", lambda: st_encoder(model, args.batch, autocast=torch.float16), False),
        ("st-bf16-weights", bf16_weights, True),
        ("st-bf16-model", st_bf16_model, True),
        ("torch-dyn-int8", torch_dyn_int8, False),
        ("ort-fp32", lambda: ort_encoder(model, onnx_base(), args.batch, threads), True),
        ("ort-fp32-opt", lambda: ort_encoder(model, onnx_opt(), args.batch, threads), True),
        ("ort-int8-tensor", lambda: ort_int8(onnx_base, "int8-tensor", per_channel=False), False),
        ("ort-int8-channel", lambda: ort_int8(onnx_base, "int8-channel", per_channel=True), True),
        ("ort-int8-channel-skip-l0", lambda: ort_int8(onnx_base, "int8-channel-skip-l0", per_channel=True,
                                                      exclude=first_layer), False),
        ("ort-int8-channel-skip-attn", lambda: ort_int8(onnx_base, "int8-channel-skip-attn", per_channel=True,
                                                        exclude=attention), False),
        ("ort-int8-weights", lambda: ort_int8(onnx_base, "int8-weights", **weights_only), True),
        ("ort-int8-weights-t1", lambda: ort_int8(onnx_base, "int8-weights", n_threads=1, **weights_only), True),
        ("ort-opt-int8-matmul", lambda: ort_int8(onnx_opt, "opt-int8-matmul", per_channel=True,
                                                 op_types=["MatMul"]), True),
        ("ort-opt-int8-matmul-t1", lambda: ort_int8(onnx_opt, "opt-int8-matmul", per_channel=True,
                                                    op_types=["MatMul"], n_threads=1), True),
        ("ort-opt-int8-all", lambda: ort_int8(onnx_opt, "opt-int8-all", per_channel=True,
                                              op_types=["MatMul", "Attention"]), True),
    ]
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        variants = [(n, f, True) for n, f, _ in variants if any(w in n for w in wanted)]
    elif not args.all:
        variants = [v for v in variants if v[2]]

    base_rate, reference = measure(st_encoder(model, args.batch), texts, args.repeats)
    rows: list[tuple[str, str, str, str, str, str]] = [
        ("st-fp32 (baseline)", f"{base_rate:.1f}", "1.00", "1.0000", "1.0000", "yes")]
    print(f"  st-fp32 (baseline): {base_rate:.1f} texts/s", flush=True)
    for name, build, _ in variants:
        encoder = None
        try:
            started = time.perf_counter()
            encoder = build()
            setup = time.perf_counter() - started
            rate, vectors = measure(encoder, texts, args.repeats)
            cos = cosines(reference, vectors)
            kept = "yes" if cos.mean() >= args.keep else "no"
            rows.append((name, f"{rate:.1f}", f"{rate / base_rate:.2f}", f"{cos.mean():.4f}", f"{cos.min():.4f}",
                         kept))
            print(f"  {name}: {rate:.1f} texts/s, mean cos {cos.mean():.4f} (setup {setup:.1f}s)", flush=True)
        except Exception as exc:  # a variant this machine or these versions cannot run is a row, not a crash
            rows.append((name, "-", "-", "-", "-", f"failed: {type(exc).__name__}: {str(exc)[:80]}"))
            print(f"  {name}: failed: {type(exc).__name__}: {exc}", flush=True)
        del encoder
    if tmp is not None:
        tmp.cleanup()

    header = ("variant", "texts/s", "x vs fp32", "mean cos", "min cos", f"kept (>={args.keep})")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) if i in (0, 5) else cell.rjust(w) for i, (cell, w) in
                        enumerate(zip(row, widths, strict=True))))
    print(f"\ntotal {time.perf_counter() - total_started:.0f}s")


if __name__ == "__main__":
    main()
