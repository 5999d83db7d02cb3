"""The seeded synthetic corpus: one author pool, papers, and columnar tables of models, datasets and Spaces.

Same (sizes, seed, day) -> same corpus. Timestamps run up to the start of the
current UTC day (`anchor`), so anything created or edited at run time is newer
than every seeded item.
"""

from __future__ import annotations

import time
from typing import Any

from core.hub.fake.authors import AuthorPool
from core.hub.fake.dataset_table import DatasetTable
from core.hub.fake.model_table import ModelTable
from core.hub.fake.papers import PaperCorpus
from core.hub.fake.space_table import SpaceTable
from core.hub.fake.table import DAY, RepoTable
from core.hub.fake.wire import SORT_FIELDS


class Corpus:
    def __init__(self, *, models: int, datasets: int, spaces: int, papers: int, seed: int,
                 anchor: int | None = None) -> None:
        for name, count in (("models", models), ("datasets", datasets), ("spaces", spaces), ("papers", papers)):
            if count < 0:
                raise ValueError(f"{name} must be >= 0")
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.seed = seed
        self.anchor = anchor if anchor is not None else int(time.time()) // DAY * DAY
        self.authors = AuthorPool(max(100, (models + datasets + spaces) // 6), seed)
        self.papers = PaperCorpus(papers, seed=seed, anchor=self.anchor)
        self.paper_ids: list[str] = list(self.papers.base_ids)
        self.paper_index: dict[str, int] = {p: i for i, p in enumerate(self.paper_ids)}
        common: dict[str, Any] = {"seed": seed, "anchor": self.anchor, "authors": self.authors}
        self.models = ModelTable(models, n_papers=papers, n_datasets=datasets, **common)
        self.datasets = DatasetTable(datasets, n_papers=papers, **common)
        self.spaces = SpaceTable(spaces, n_models=models, n_datasets=datasets, **common)
        for table in self.tables():
            table.corpus = self  # type: ignore[attr-defined]
            table.build()

    def tables(self) -> tuple[RepoTable, ...]:
        return (self.models, self.datasets, self.spaces)

    def table(self, kind: str) -> RepoTable:
        return {"models": self.models, "datasets": self.datasets, "spaces": self.spaces}[kind]

    def warm(self) -> None:
        """Precompute every listing order so the first page of any sort is fast."""
        for table in self.tables():
            for field in SORT_FIELDS[table.kind]:
                for desc in (True, False):
                    table.perm(field, desc)
