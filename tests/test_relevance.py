"""Relevance: a labelled query set over a generated Hub-like corpus with planted items.

The background is ~600 items of the Hub's usual shapes (model families with their
finetunes and quantisations, classifiers, image and audio models, datasets,
Spaces, papers). Planted items are found only by meaning (paraphrased
descriptions), only by lineage, or only through a typo. Prints recall@10 and
nDCG@10 per mode; hybrid must be at least as good as the better of the two.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from core.kinds import Kind
from core.search import SearchEngine, SearchFilters
from tests.search_helpers import embed_all, make_config, paper, repo, write_corpus

FAMILIES = [("meta-llama", "Llama-2", ["7b", "13b", "70b"]), ("meta-llama", "Meta-Llama-3", ["8B", "70B"]),
            ("mistralai", "Mistral", ["7B"]), ("Qwen", "Qwen2.5", ["0.5B", "1.5B", "7B", "14B", "72B"]),
            ("microsoft", "Phi-3", ["mini", "medium"]), ("google", "gemma-2", ["2b", "9b", "27b"]),
            ("tiiuae", "falcon", ["7b", "40b"])]
FINETUNERS = ["NousResearch", "teknium", "cognitivecomputations", "WizardLM", "lmsys", "HuggingFaceH4"]
FLAVOURS = ["chat", "instruct", "roleplay", "math", "german", "uncensored"]
QUANTISERS = [("TheBloke", "GGUF", "gguf"), ("TheBloke", "AWQ", "awq"), ("TheBloke", "GPTQ", "gptq"),
              ("bartowski", "GGUF", "gguf"), ("turboderp", "exl2", "exl2")]
CLASSIFIER_TASKS = [("sentiment", "text-classification"), ("ner", "token-classification"),
                    ("news-topic", "text-classification"), ("toxicity", "text-classification"),
                    ("squad", "question-answering")]
DATASET_TOPICS = ["movie reviews labelled positive or negative", "news articles grouped by topic",
                  "chat conversations between users and an assistant", "python functions with docstrings",
                  "wikipedia paragraphs in many languages", "product questions and answers from online shops",
                  "tweets annotated for hate speech", "scientific abstracts with keywords",
                  "recipes with ingredients and steps", "images of handwritten digits"]
SPACE_TOPICS = [("Chatbot Arena", "compare chat models side by side"), ("Image Generator", "make art from a prompt"),
                ("Leaderboard", "rank open language models on benchmarks"), ("Voice Demo", "talk to an assistant"),
                ("Background Remover", "cut the subject out of a photo")]
PAPER_TOPICS = [("Scaling laws for neural language models", "loss falls as a power law of size, data and compute"),
                ("Low-rank adaptation of large language models", "freeze weights and train small rank matrices"),
                ("Denoising diffusion probabilistic models", "image synthesis by reversing a noising process"),
                ("Direct preference optimization", "align language models to preferences without a reward model"),
                ("Retrieval-augmented generation", "combine a retriever with a generator for open-domain QA")]


def _background(rng: random.Random) -> dict[Kind, list[dict[str, Any]]]:
    models: list[dict[str, Any]] = []
    for org, family, sizes in FAMILIES:
        for size in sizes:
            base = f"{org}/{family}-{size}"
            models.append(repo(base, downloads=rng.randint(10_000, 900_000), likes=rng.randint(100, 5000),
                               pipeline_tag="text-generation", library_name="transformers",
                               tags=["transformers", "text-generation", "license:other"]))
            for finetuner in rng.sample(FINETUNERS, 3):
                flavour = rng.choice(FLAVOURS)
                models.append(repo(f"{finetuner}/{family}-{size}-{flavour}", downloads=rng.randint(10, 50_000),
                                   pipeline_tag="text-generation", library_name="transformers",
                                   tags=["text-generation", flavour, f"base_model:finetune:{base}"]))
            for quantiser, suffix, fmt in rng.sample(QUANTISERS, 3):
                models.append(repo(f"{quantiser}/{family}-{size}-{suffix}", downloads=rng.randint(100, 90_000),
                                   pipeline_tag="text-generation", library_name="gguf" if fmt == "gguf" else None,
                                   tags=[fmt, "text-generation", f"base_model:quantized:{base}"]))
    for base in ("bert-base-uncased", "roberta-base", "distilbert-base-uncased", "deberta-v3-base"):
        for task, pipeline in CLASSIFIER_TASKS:
            for owner in rng.sample(["cardiffnlp", "dslim", "textattack", "nlptown", "j-hartmann"], 2):
                models.append(repo(f"{owner}/{base}-{task}", pipeline_tag=pipeline, library_name="transformers",
                                   downloads=rng.randint(10, 200_000), tags=[pipeline, "transformers"]))
    for i in range(30):
        style = rng.choice(["anime", "photoreal", "pixel-art", "watercolor", "logo"])
        models.append(repo(f"artist{i}/sdxl-{style}-lora-{i}", pipeline_tag="text-to-image", library_name="diffusers",
                           downloads=rng.randint(0, 5000), tags=["text-to-image", "lora", style,
                           "base_model:adapter:stabilityai/stable-diffusion-xl-base-1.0"]))
    models.append(repo("stabilityai/stable-diffusion-xl-base-1.0", pipeline_tag="text-to-image",
                       library_name="diffusers", downloads=900_000, tags=["text-to-image", "diffusers"]))
    for size in ("tiny", "base", "small", "medium", "large-v3"):
        models.append(repo(f"openai/whisper-{size}", pipeline_tag="automatic-speech-recognition",
                           library_name="transformers", downloads=rng.randint(10_000, 900_000),
                           tags=["automatic-speech-recognition", "audio"]))
    for lang in ("english", "french", "german", "spanish", "arabic"):
        models.append(repo(f"jonatasgrosman/wav2vec2-large-xlsr-53-{lang}", library_name="transformers",
                           pipeline_tag="automatic-speech-recognition", tags=["audio", "speech"]))
    datasets = []
    for i in range(80):
        topic = DATASET_TOPICS[i % len(DATASET_TOPICS)]
        datasets.append(repo(f"corpora{i}/{'-'.join(topic.split()[:2])}-{i}", downloads=rng.randint(0, 20_000),
                             description=f"A collection of {rng.randint(1, 900)}k {topic}.",
                             tags=["language:en"]))
    spaces = []
    for i in range(50):
        title, short = SPACE_TOPICS[i % len(SPACE_TOPICS)]
        spaces.append(repo(f"builder{i}/{title.lower().replace(' ', '-')}-{i}", sdk="gradio", likes=rng.randint(0, 99),
                           cardData={"title": f"{title} {i}", "short_description": short}))
    papers = []
    for i in range(40):
        title, summary = PAPER_TOPICS[i % len(PAPER_TOPICS)]
        papers.append(paper(f"23{i:02d}.{10000 + i}", f"{title}, part {i}", f"We show that {summary}.",
                            upvotes=rng.randint(0, 50)))
    return {Kind.MODEL: models, Kind.DATASET: datasets, Kind.SPACE: spaces, Kind.PAPER: papers}


# The planted items: (kind, wire object). Their queries are below.
PLANTED: list[tuple[Kind, dict[str, Any]]] = [
    (Kind.DATASET, repo("medlab/histo-slides", description="Microscope photographs of stained tissue biopsies, "
                        "annotated for the presence of tumours.")),
    (Kind.DATASET, repo("civic/council-minutes", description="Transcribed records of city council sessions "
                        "with speaker labels and agenda items.")),
    (Kind.DATASET, repo("openmath/school-word-problems", description="Grade-school math word problems with "
                        "step-by-step worked solutions.")),
    (Kind.SPACE, repo("toolsmith/receipt-reader", sdk="gradio", cardData={
        "title": "Receipt Reader", "short_description": "Snap a photo of a shopping receipt, get its items and "
                                                        "totals as a table"})),
    (Kind.SPACE, repo("artsy/photo-to-anime", sdk="gradio", cardData={
        "title": "Photo to Anime", "short_description": "Turn your selfies into anime-style portraits"})),
    (Kind.MODEL, repo("voicery/xtts-clone", pipeline_tag="text-to-speech", library_name="coqui",
                      tags=["text-to-speech", "voice-cloning"])),
    (Kind.MODEL, repo("bigcode/starcoder2-3b", pipeline_tag="text-generation", library_name="transformers",
                      tags=["code", "text-generation"])),
    (Kind.MODEL, repo("bartowski/Qwen2.5-7B-Instruct-GGUF", pipeline_tag="text-generation", library_name="gguf",
                      tags=["gguf", "text-generation", "base_model:quantized:Qwen/Qwen2.5-7B-Instruct"])),
    (Kind.MODEL, repo("Qwen/Qwen2.5-7B-Instruct", pipeline_tag="text-generation", library_name="transformers",
                      downloads=500_000, tags=["text-generation", "chat"])),
    (Kind.MODEL, repo("lawyerly/legalbert-clause-tagger", pipeline_tag="text-classification",
                      tags=["legal", "contracts", "text-classification"])),
    (Kind.MODEL, repo("meta-llama/Meta-Llama-3-8B-Instruct", pipeline_tag="text-generation",
                      library_name="transformers", downloads=900_000, tags=["text-generation", "llama-3"])),
    (Kind.PAPER, paper("2312.00752", "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
                       "Foundation models are almost universally based on the Transformer architecture and its "
                       "quadratic attention. We propose selective state space models with linear scaling in "
                       "sequence length.")),
]


def _labels(corpus: dict[Kind, list[dict[str, Any]]]) -> list[tuple[str, SearchFilters | None, set[str]]]:
    models = [m["id"] for m in corpus[Kind.MODEL]]
    mistral_quants = {m for m in models if m.split("/")[1].startswith("Mistral-7B-") and m.endswith(
        ("GGUF", "AWQ", "GPTQ", "exl2"))}
    whispers = {m for m in models if "/whisper-" in m}
    return [
        # Found by meaning only.
        ("cancer pathology image collection", None, {"medlab/histo-slides"}),
        ("local government meeting transcripts", None, {"civic/council-minutes"}),
        ("arithmetic reasoning problems for children", None, {"openmath/school-word-problems"}),
        ("read invoices and pull out line items", None, {"toolsmith/receipt-reader"}),
        ("convert pictures of people into cartoon characters", None, {"artsy/photo-to-anime"}),
        ("clone a voice and read text aloud", None, {"voicery/xtts-clone"}),
        ("alternative to transformers that scales linearly", None, {"2312.00752"}),
        ("classify clauses in legal agreements", None, {"lawyerly/legalbert-clause-tagger"}),
        # Names and lineage: keyword territory.
        ("Mistral 7B quantized", None, mistral_quants),
        ("quantized 7B", SearchFilters(base_model="mistralai/Mistral-7B"), mistral_quants),
        ("qwen2.5 7b instruct gguf", None, {"bartowski/Qwen2.5-7B-Instruct-GGUF"}),
        ("stable-diffusion-xl-base", None, {"stabilityai/stable-diffusion-xl-base-1.0"}),
        ("starcoder2", None, {"bigcode/starcoder2-3b"}),
        ("Meta-Llama-3-8B-Instruct", None, {"meta-llama/Meta-Llama-3-8B-Instruct"}),
        # Typos.
        ("whisperr speach recognition", None, whispers),
        ("lama 3 8b instruct", None, {"meta-llama/Meta-Llama-3-8B-Instruct"}),
        ("stable difusion xl", None, {"stabilityai/stable-diffusion-xl-base-1.0"}),
        ("histopathology slide images", None, {"medlab/histo-slides"}),
    ]


def recall_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    return len(set(ranked[:k]) & relevant) / min(len(relevant), k)


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal


def test_recall_ndcg_helpers() -> None:
    assert recall_at(["a", "b", "c"], {"a", "c"}) == 1.0
    assert ndcg_at(["a", "x"], {"a"}) == 1.0
    assert 0 < ndcg_at(["x", "a"], {"a"}) < 1


@pytest.fixture(scope="module")
def corpus_engine(tmp_path_factory: pytest.TempPathFactory):
    data_dir: Path = tmp_path_factory.mktemp("relevance") / "data"
    corpus = _background(random.Random(7))
    for kind, item in PLANTED:
        corpus[kind].append(item)
    config = make_config(data_dir)
    write_corpus(config.db_path, corpus)
    embed_all(config)
    engine = SearchEngine(config)
    yield corpus, engine
    engine.close()


def test_relevance_hybrid_at_least_as_good_as_either(corpus_engine, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, engine = corpus_engine
    labels = _labels(corpus)
    assert all(relevant for _, _, relevant in labels)
    totals = {mode: [0.0, 0.0] for mode in ("keyword", "semantic", "hybrid")}
    lines = [f"{'query':<52} {'keyword':>8} {'semantic':>8} {'hybrid':>8}   (nDCG@10)"]
    for query, filters, relevant in labels:
        row = []
        for mode in totals:
            ranked = [h.id for h in engine.search(query, filters, mode=mode, limit=10)]
            totals[mode][0] += recall_at(ranked, relevant)
            totals[mode][1] += ndcg_at(ranked, relevant)
            row.append(ndcg_at(ranked, relevant))
        lines.append(f"{query[:52]:<52} " + " ".join(f"{v:>8.2f}" for v in row))
    n = len(labels)
    items = sum(len(v) for v in corpus.values())
    lines.append(f"\n{n} queries over {items} items")
    for mode, (recall, ndcg) in totals.items():
        lines.append(f"{mode:<9} recall@10 {recall / n:.3f}   nDCG@10 {ndcg / n:.3f}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    for metric in (0, 1):
        best_single = max(totals["keyword"][metric], totals["semantic"][metric])
        assert totals["hybrid"][metric] >= best_single - 1e-9, lines
