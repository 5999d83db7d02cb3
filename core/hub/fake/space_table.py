"""Seeded Spaces: an SDK, a card (title, emoji, short description) and a runtime, often wrapping a model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from core.hub.fake.table import Batch, RepoTable
from core.hub.fake.vocab import (
    ADJECTIVES,
    COLORS,
    KNOWN_AUTHORS,
    LICENSES,
    SPACE_EMOJIS,
    SPACE_HARDWARE,
    SPACE_SDK_VERSIONS,
    SPACE_SDKS,
    SPACE_STAGES,
    SPACE_THINGS,
    TOPICS,
)

_MCP = 1
_PINNED = 2
_SUBDOMAIN = re.compile(r"[^a-z0-9]+")
_SIBLINGS = {
    "gradio": (".gitattributes", "README.md", "app.py", "requirements.txt"),
    "streamlit": (".gitattributes", "README.md", "app.py", "requirements.txt"),
    "docker": (".gitattributes", "Dockerfile", "README.md", "app.py", "requirements.txt"),
    "static": (".gitattributes", "README.md", "index.html", "style.css"),
}


class SpaceTable(RepoTable):
    kind = "spaces"
    kind_code = 3

    def __init__(self, n: int, *, n_models: int = 0, n_datasets: int = 0, **kwargs: Any) -> None:
        super().__init__(n, **kwargs)
        self.n_models = n_models
        self.n_datasets = n_datasets
        self.corpus: Any = None
        self._by_model: tuple[np.ndarray, np.ndarray] | None = None

    def _columns(self) -> None:
        n, rng = self.n, self.rng
        self.topic = rng.integers(0, len(TOPICS), n).astype(np.int8)
        self.thing = rng.integers(0, len(SPACE_THINGS), n).astype(np.int8)
        self.adj = rng.integers(0, len(ADJECTIVES), n).astype(np.int8)
        self.pattern = rng.integers(0, 5, n).astype(np.int8)
        self.sdk = rng.choice(len(SPACE_SDKS), n, p=[.7, .08, .15, .07]).astype(np.int8)
        self.emoji = rng.integers(0, len(SPACE_EMOJIS), n).astype(np.int8)
        self.color1 = rng.integers(0, len(COLORS), n).astype(np.int8)
        self.color2 = rng.integers(0, len(COLORS), n).astype(np.int8)
        self.stage = rng.choice(len(SPACE_STAGES), n, p=[.35, .4, .12, .05, .05, .03]).astype(np.int8)
        self.hardware = rng.choice(len(SPACE_HARDWARE), n, p=[.8, .12, .03, .03, .02]).astype(np.int8)
        self.model_ref = np.full(n, -1, dtype=np.int32)
        if self.n_models:
            uses = rng.random(n) < 0.4
            # Popular models back many Spaces: skew toward low indices (the oldest, the orgs' originals).
            self.model_ref[uses] = (rng.random(int(uses.sum())) ** 3 * self.n_models).astype(np.int32)
        self.dataset_ref = np.full(n, -1, dtype=np.int32)
        if self.n_datasets:
            uses = rng.random(n) < 0.1
            self.dataset_ref[uses] = rng.integers(0, self.n_datasets, int(uses.sum()))
        lic = rng.integers(0, len(LICENSES), n).astype(np.int8)
        lic[rng.random(n) < 0.5] = -1
        self.lic = lic
        self.flags = (np.where(rng.random(n) < 0.05, _MCP, 0) | np.where(rng.random(n) < 0.1, _PINNED, 0))
        self.flags = self.flags.astype(np.int8)
        self.gated = np.zeros(n, dtype=np.int8)
        self.disabled = (rng.random(n) < 0.002).astype(np.int8)
        self.storage = rng.integers(10_000, 50_000_000, n).astype(np.int64)
        known = {name: i for i, (name, *_) in enumerate(KNOWN_AUTHORS)}
        stars = [known[a] for a in ("Nymbo", "gradio", "multimodalart", "akhaliq", "hysts", "ginipick",
                                    "huggingface", "Qwen", "black-forest-labs")]
        popularity = np.where(np.isin(self.author, stars), 2.5, 0.0)
        self._counters(popularity, np.where(popularity > 0, 0.2, 0.6), downloads=False)

    def clump_share(self) -> float:
        return 0.01

    def _names(self, ids: list[str]) -> Iterator[str]:
        cols = {c: getattr(self, c).tolist() for c in ("topic", "thing", "adj", "pattern")}
        for i in range(self.n):
            topic = TOPICS[cols["topic"][i]].word
            thing = SPACE_THINGS[cols["thing"][i]]
            adj = ADJECTIVES[cols["adj"][i]]
            yield (
                f"{topic.capitalize()}-{thing.capitalize()}",
                f"{topic}-{thing}",
                f"{adj}-{topic}-{thing}",
                f"{topic.capitalize()}{thing.capitalize()}",
                f"{adj.capitalize()}-{topic.capitalize()}",
            )[cols["pattern"][i]]

    def ids_using_model(self, model: int, limit: int = 100) -> list[str]:
        """Spaces built on a base-corpus model (reverse index built on first use)."""
        if self._by_model is None:
            order = np.argsort(self.model_ref, kind="stable")
            self._by_model = (order, self.model_ref[order])
        order, refs = self._by_model
        a, b = np.searchsorted(refs, model, "left"), np.searchsorted(refs, model, "right")
        return self.ids_of(order[a:min(b, a + limit)].astype(np.int64))

    # --- tags and filters -----------------------------------------------------------------------

    def f_tags(self, b: Batch) -> list[list[str]]:
        return [[SPACE_SDKS[sdk], "mcp-server", "region:us"] if flags & _MCP else [SPACE_SDKS[sdk], "region:us"]
                for sdk, flags in zip(b.col("sdk"), b.col("flags"), strict=True)]

    def tag_mask(self, tag: str) -> np.ndarray:
        if tag in SPACE_SDKS:
            return self.sdk == SPACE_SDKS.index(tag)
        if tag == "mcp-server":
            return (self.flags & _MCP) != 0
        if tag == "region:us":
            return np.ones(self.n, dtype=bool)
        return np.zeros(self.n, dtype=bool)

    # --- fields ---------------------------------------------------------------------------------

    FIELD_METHODS: ClassVar[dict[str, str]] = {
        "tags": "f_tags", "sdk": "f_sdk", "cardData": "f_card", "subdomain": "f_subdomain", "runtime": "f_runtime",
        "siblings": "f_siblings", "models": "f_models", "datasets": "f_datasets", "region": "f_region",
    }

    def f_sdk(self, b: Batch) -> list[str]:
        return [SPACE_SDKS[s] for s in b.col("sdk")]

    @staticmethod
    def title_of(name: str) -> str:
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("-", " ").replace("_", " ").title()

    def f_card(self, b: Batch) -> list[dict[str, Any]]:
        out = []
        for name, topic, sdk, emoji, c1, c2, flags, lic in zip(
            b.names(), b.col("topic"), b.col("sdk"), b.col("emoji"), b.col("color1"), b.col("color2"),
            b.col("flags"), b.col("lic"), strict=True,
        ):
            sdk_name = SPACE_SDKS[sdk]
            card: dict[str, Any] = {"title": self.title_of(name), "emoji": SPACE_EMOJIS[emoji],
                                    "colorFrom": COLORS[c1], "colorTo": COLORS[c2], "sdk": sdk_name}
            if sdk_name in SPACE_SDK_VERSIONS:
                card["sdk_version"] = SPACE_SDK_VERSIONS[sdk_name]
                card["app_file"] = "app.py"
            card["pinned"] = bool(flags & _PINNED)
            task = TOPICS[topic].task
            card["short_description"] = (task[0].upper() + task[1:])[:60]
            if lic >= 0:
                card["license"] = LICENSES[lic]
            out.append(card)
        return out

    def f_subdomain(self, b: Batch) -> list[str]:
        return [_SUBDOMAIN.sub("-", i.lower()).strip("-") for i in b.ids()]

    def f_runtime(self, b: Batch) -> list[dict[str, Any]]:
        out = []
        for sub, stage, hardware in zip(self.f_subdomain(b), b.col("stage"), b.col("hardware"), strict=True):
            stage_name = SPACE_STAGES[stage]
            hw = SPACE_HARDWARE[hardware]
            out.append({"stage": stage_name, "hardware": {"current": hw if stage_name == "RUNNING" else None,
                                                          "requested": hw},
                        "storage": None, "gcTimeout": 172800, "replicas": {"requested": 1}, "devMode": False,
                        "domains": [{"domain": f"{sub}.hf.space", "stage": "READY"}]})
        return out

    def f_siblings(self, b: Batch) -> list[list[dict[str, str]]]:
        return [[{"rfilename": f} for f in _SIBLINGS[SPACE_SDKS[s]]] for s in b.col("sdk")]

    def f_models(self, b: Batch) -> list[list[str] | None]:
        models = getattr(self.corpus, "models", None)
        return self._refs(b.col("model_ref"), models.ids_of if models is not None and models.n else None)

    def f_datasets(self, b: Batch) -> list[list[str] | None]:
        datasets = getattr(self.corpus, "datasets", None)
        return self._refs(b.col("dataset_ref"), datasets.ids_of if datasets is not None and datasets.n else None)

    @staticmethod
    def _refs(refs: list[int], lookup: Any) -> list[list[str] | None]:
        present = [r for r in refs if r >= 0]
        if not present or lookup is None:
            return [None] * len(refs)
        found = iter(lookup(np.asarray(present, dtype=np.int64)))
        return [[next(found)] if r >= 0 else None for r in refs]

    def f_region(self, b: Batch) -> list[str]:
        return ["us"] * len(b)
