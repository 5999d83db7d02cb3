"""Seeded datasets: topic, task, language, license, size, format; descriptions written from the topic.

The `description` is the plain-text rendering of a card the way the Hub sends it
(leading whitespace, "Dataset Card for ..."), composed of real sentences about
the topic so that semantic search over the mirror has something to work on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from core.hub.fake.table import Batch, RepoTable
from core.hub.fake.vocab import (
    ADJECTIVES,
    DATASET_FORMATS,
    DATASET_MODALITIES,
    DATASET_SHAPES,
    DATASET_SIZE_CATEGORIES,
    KNOWN_AUTHORS,
    LANGUAGE_NAMES,
    LANGUAGES,
    LICENSES,
    TOPICS,
)

_IMAGE = {"image-classification", "text-to-image", "image-to-text", "visual-question-answering"}
_AUDIO = {"automatic-speech-recognition", "text-to-speech", "audio-classification"}
_MODALITY = tuple(
    "image" if t.dataset_task in _IMAGE else "audio" if t.dataset_task in _AUDIO
    else "video" if t.dataset_task == "text-to-video" else "text"
    for t in TOPICS
)
_FORMATS_BY_MODALITY = {
    "text": (0, 1, 2, 6), "image": (0, 3, 5), "audio": (0, 4), "video": (5, 0), "tabular": (2, 0),
}
_LIBRARY_TAGS: tuple[tuple[str, ...], ...] = tuple(
    ("library:datasets", "library:pandas", "library:mlcroissant", "library:polars") if f in ("parquet", "json", "csv")
    else ("library:datasets", "library:webdataset", "library:mlcroissant") if f == "webdataset"
    else ("library:datasets", "library:mlcroissant")
    for f in DATASET_FORMATS
)
_COUNTS = ("several hundred", "a few thousand", "tens of thousands of", "several hundred thousand",
           "millions of", "tens of millions of", "hundreds of millions of")
_SHAPE_WORDS = {
    "corpus": "corpus", "dataset": "dataset", "benchmark": "benchmark", "instructions": "instruction dataset",
    "preferences": "preference dataset", "pairs": "paired dataset", "eval": "evaluation set",
    "sft": "supervised fine-tuning dataset", "dpo": "preference dataset", "collection": "collection",
}


class DatasetTable(RepoTable):
    kind = "datasets"
    kind_code = 2

    def __init__(self, n: int, *, n_papers: int = 0, **kwargs: Any) -> None:
        super().__init__(n, **kwargs)
        self.n_papers = n_papers
        self.corpus: Any = None

    def _columns(self) -> None:
        n, rng = self.n, self.rng
        self.topic = rng.integers(0, len(TOPICS), n).astype(np.int8)
        self.shape = rng.integers(0, len(DATASET_SHAPES), n).astype(np.int8)
        self.adj = rng.integers(0, len(ADJECTIVES), n).astype(np.int8)
        self.pattern = rng.integers(0, 6, n).astype(np.int8)
        self.num = rng.integers(1, 100, n).astype(np.int8)
        lang = rng.choice(len(LANGUAGES), n, p=_normalized([.6, .1, .08, .04, .03, .03, .02, .02, .02, .02, .01,
                                                             .01, .01, .005, .005])).astype(np.int8)
        lang[rng.random(n) < 0.3] = -1
        self.lang = lang
        lic = rng.choice(len(LICENSES), n, p=_normalized([.25, .3, 0, 0, 0, .15, .1, .1, 0, 0, .06, .02, .01, 0, 0]))
        lic = lic.astype(np.int8)
        lic[rng.random(n) < 0.25] = -1
        self.lic = lic
        self.size_cat = np.minimum(rng.geometric(0.45, n) - 1, len(DATASET_SIZE_CATEGORIES) - 1).astype(np.int8)
        modality = np.array([DATASET_MODALITIES.index(m) for m in _MODALITY], dtype=np.int8)[self.topic]
        tabular = rng.random(n) < 0.05
        modality[tabular] = DATASET_MODALITIES.index("tabular")
        self.modality = modality
        fmt = np.zeros(n, dtype=np.int8)
        for m, name in enumerate(DATASET_MODALITIES):
            mine = modality == m
            options = _FORMATS_BY_MODALITY[name]
            fmt[mine] = np.asarray(options)[rng.integers(0, len(options), int(mine.sum()))]
        self.fmt = fmt
        self.arxiv = np.full(n, -1, dtype=np.int32)
        if self.n_papers:
            cites = rng.random(n) < 0.08
            self.arxiv[cites] = rng.integers(0, self.n_papers, int(cites.sum()))
        self.gated = np.where(rng.random(n) < 0.03, rng.integers(1, 3, n), 0).astype(np.int8)
        self.disabled = (rng.random(n) < 0.003).astype(np.int8)
        self.storage = (1000 * 10 ** (self.size_cat.astype(np.float64) + rng.uniform(0.5, 2.0, n))).astype(np.int64)
        known = {name: i for i, (name, *_) in enumerate(KNOWN_AUTHORS)}
        orgs = [known[a] for a in ("HuggingFaceH4", "allenai", "nvidia", "microsoft", "google", "Qwen",
                                   "HuggingFaceTB", "huggingface", "openai")]
        popularity = np.where(np.isin(self.author, orgs), 4.0, 0.0)
        self._counters(popularity, np.where(popularity > 0, 0.05, 0.6))

    def clump_share(self) -> float:
        return 0.02

    def _names(self, ids: list[str]) -> Iterator[str]:
        cols = {c: getattr(self, c).tolist() for c in ("topic", "shape", "adj", "pattern", "num", "lang")}
        for i in range(self.n):
            topic = TOPICS[cols["topic"][i]].word
            shape = DATASET_SHAPES[cols["shape"][i]]
            adj = ADJECTIVES[cols["adj"][i]]
            num = cols["num"][i]
            lang = LANGUAGES[cols["lang"][i]] if cols["lang"][i] >= 0 else "en"
            yield (
                f"{topic}-{shape}",
                f"{adj.capitalize()}{topic.capitalize()}{shape.capitalize()}".replace("-", ""),
                f"{topic}_{shape}_{lang}",
                f"{adj}-{topic}-{shape}-{num}k",
                f"{topic}-{shape}-v{num % 5 + 1}",
                f"{topic.capitalize()}-{shape.capitalize()}",
            )[cols["pattern"][i]]

    # --- tags and filters -----------------------------------------------------------------------

    def f_tags(self, b: Batch) -> list[list[str]]:
        papers = self.corpus.paper_ids if self.corpus is not None else []
        out = []
        for topic, lang, lic, size, fmt, modality, paper in zip(
            b.col("topic"), b.col("lang"), b.col("lic"), b.col("size_cat"), b.col("fmt"), b.col("modality"),
            b.col("arxiv"), strict=True,
        ):
            t = TOPICS[topic]
            tags = [f"task_categories:{t.dataset_task}"]
            if lang >= 0:
                tags.append(f"language:{LANGUAGES[lang]}")
            if lic >= 0:
                tags.append(f"license:{LICENSES[lic]}")
            tags.append(f"size_categories:{DATASET_SIZE_CATEGORIES[size]}")
            tags.append(f"format:{DATASET_FORMATS[fmt]}")
            tags.append(f"modality:{DATASET_MODALITIES[modality]}")
            tags.extend(_LIBRARY_TAGS[fmt])
            if t.tag:
                tags.append(t.tag)
            if 0 <= paper < len(papers):
                tags.append(f"arxiv:{papers[paper]}")
            tags.append("region:us")
            out.append(tags)
        return out

    def tag_mask(self, tag: str) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        prefix, _, rest = tag.partition(":")
        if prefix == "task_categories":
            mask |= np.isin(self.topic, [i for i, t in enumerate(TOPICS) if t.dataset_task == rest])
        elif prefix == "language" and rest in LANGUAGES:
            mask |= self.lang == LANGUAGES.index(rest)
        elif prefix == "license" and rest in LICENSES:
            mask |= self.lic == LICENSES.index(rest)
        elif prefix == "size_categories" and rest in DATASET_SIZE_CATEGORIES:
            mask |= self.size_cat == DATASET_SIZE_CATEGORIES.index(rest)
        elif prefix == "format" and rest in DATASET_FORMATS:
            mask |= self.fmt == DATASET_FORMATS.index(rest)
        elif prefix == "modality" and rest in DATASET_MODALITIES:
            mask |= self.modality == DATASET_MODALITIES.index(rest)
        elif prefix == "library":
            mask |= np.isin(self.fmt, [f for f, tags in enumerate(_LIBRARY_TAGS) if tag in tags])
        elif prefix == "arxiv" and self.corpus is not None:
            p = self.corpus.paper_index.get(rest)
            if p is not None and p < self.n_papers:
                mask |= self.arxiv == p
        elif tag == "region:us":
            mask[:] = True
        else:
            mask |= np.isin(self.topic, [i for i, t in enumerate(TOPICS) if t.tag == tag])
        return mask

    # --- fields ---------------------------------------------------------------------------------

    FIELD_METHODS: ClassVar[dict[str, str]] = {
        "tags": "f_tags", "downloads": "f_downloads", "downloadsAllTime": "f_downloads_all",
        "description": "f_description", "citation": "f_citation", "cardData": "f_card", "siblings": "f_siblings",
        "mainSize": "f_main_size", "paperswithcode_id": "f_pwc",
    }

    @staticmethod
    def pretty_name(name: str) -> str:
        return name.replace("-", " ").replace("_", " ").strip().title()

    def f_description(self, b: Batch) -> list[str]:
        out = []
        for repo_id, topic, shape, adj, lang, lic, size, fmt, num in zip(
            b.ids(), b.col("topic"), b.col("shape"), b.col("adj"), b.col("lang"), b.col("lic"), b.col("size_cat"),
            b.col("fmt"), b.col("num"), strict=True,
        ):
            t = TOPICS[topic]
            pretty = self.pretty_name(repo_id.split("/", 1)[1])
            language = LANGUAGE_NAMES[LANGUAGES[lang]] if lang >= 0 else "English"
            kind = _SHAPE_WORDS[DATASET_SHAPES[shape]]
            text = (
                f"\n\t\n\t\t\n\t\tDataset Card for {pretty}\n\t\n\n"
                f"{pretty} is a {ADJECTIVES[adj]} {kind} of {_COUNTS[size]} {t.phrase} in {language}. "
                f"It was collected to help models {t.task}. "
                f"Each record was reviewed for quality, duplicates were removed, and the splits are ready for "
                f"{t.dataset_task.replace('-', ' ')}. "
            )
            if lic >= 0:
                text += f"The data is released under the {LICENSES[lic]} license and stored as {DATASET_FORMATS[fmt]}. "
            if num % 2:
                text += f"See the full description on the dataset page: https://huggingface.co/datasets/{repo_id}."
            out.append(text)
        return out

    def f_citation(self, b: Batch) -> list[str | None]:
        papers = self.corpus.papers if self.corpus is not None else None
        out: list[str | None] = []
        for repo_id, paper in zip(b.ids(), b.col("arxiv"), strict=True):
            if paper < 0 or papers is None or paper >= len(papers.base_ids):
                out.append(None)
                continue
            record = papers.get(papers.base_ids[paper])
            if record is None:
                out.append(None)
                continue
            key = repo_id.split("/", 1)[1].replace("-", "").lower()[:20]
            authors = " and ".join(a["name"] for a in record["authors"][:4])
            out.append(f"@article{{{key},\n  title={{{record['title']}}},\n  author={{{authors}}},\n"
                       f"  journal={{arXiv preprint arXiv:{record['id']}}},\n  year={{20{record['id'][:2]}}}\n}}")
        return out

    def f_card(self, b: Batch) -> list[dict[str, Any]]:
        out = []
        for repo_id, topic, lang, lic, size in zip(b.ids(), b.col("topic"), b.col("lang"), b.col("lic"),
                                                   b.col("size_cat"), strict=True):
            t = TOPICS[topic]
            card: dict[str, Any] = {}
            if lang >= 0:
                card["language"] = [LANGUAGES[lang]]
            if lic >= 0:
                card["license"] = LICENSES[lic]
            card["size_categories"] = [DATASET_SIZE_CATEGORIES[size]]
            card["task_categories"] = [t.dataset_task]
            card["pretty_name"] = self.pretty_name(repo_id.split("/", 1)[1])
            if t.tag:
                card["tags"] = [t.tag]
            card["configs"] = [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
            out.append(card)
        return out

    def f_siblings(self, b: Batch) -> list[list[dict[str, str]]]:
        out = []
        for fmt, size in zip(b.col("fmt"), b.col("size_cat"), strict=True):
            ext = {"json": "jsonl", "imagefolder": "zip", "audiofolder": "zip", "webdataset": "tar",
                   "text": "txt"}.get(DATASET_FORMATS[fmt], DATASET_FORMATS[fmt])
            shards = min(1 + size, 4)
            files = [".gitattributes", "README.md"]
            files += [f"data/train-{k:05d}-of-{shards:05d}.{ext}" for k in range(shards)]
            files.append(f"data/test-00000-of-00001.{ext}")
            out.append([{"rfilename": f} for f in files])
        return out

    def f_main_size(self, b: Batch) -> list[int]:
        return [s // 2 for s in b.col("storage")]

    def f_pwc(self, b: Batch) -> list[str | None]:
        return [name.lower() if num == 42 else None for name, num in zip(b.names(), b.col("num"), strict=True)]


def _normalized(weights: list[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()
