"""Seeded models: originals by the big orgs, and the finetunes, adapters, merges and quantizations around them.

Every model is a row of small integer columns (role, base, family, size, topic,
pipeline, library, quantization, license, ...). Derivatives point at an earlier
model (`base`) and inherit its family and size, so lineage tags
(`base_model:quantized:X`), names (`X-GGUF`) and parameter counts agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from core.hub.fake.table import Batch, RepoTable
from core.hub.fake.vocab import (
    ADJECTIVES,
    FAMILIES,
    FLAG_TAGS,
    KNOWN_AUTHORS,
    LANGUAGES,
    LIB,
    LIBRARIES,
    LICENSES,
    LLM_FAMILIES,
    PIPELINES,
    QUANTIZERS,
    QUANTS,
    ROLE_TAGS,
    ROLES,
    SIZES,
    TOPICS,
    VARIANTS,
)

ORIGINAL, FINETUNE, ADAPTER, MERGE, QUANTIZED = range(5)
_FLAG = {name: 1 << bit for bit, name in enumerate(FLAG_TAGS)}
_FLAG_TUPLES: tuple[tuple[str, ...], ...] = tuple(
    tuple(name for bit, name in enumerate(FLAG_TAGS) if flags & (1 << bit)) for flags in range(1 << len(FLAG_TAGS))
)
_PIPE = {name: i for i, name in enumerate(PIPELINES)}
_LIC_WEIGHTS = np.array([.33, .2, .07, .05, .05, .05, .05, .08, .03, .03, .02, .02, .01, .005, .005])
_LANG_WEIGHTS = np.array([.6, .1, .08, .04, .03, .03, .02, .02, .02, .01, .01, .01, .01, .01, .01])
_AUTO_MODEL = {
    "text-generation": "AutoModelForCausalLM", "fill-mask": "AutoModelForMaskedLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification", "question-answering": "AutoModelForQuestionAnswering",
    "automatic-speech-recognition": "AutoModelForSpeechSeq2Seq",
    "image-classification": "AutoModelForImageClassification",
    "text2text-generation": "AutoModelForSeq2SeqLM", "image-text-to-text": "AutoModelForImageTextToText",
}
_WIDGETS: dict[str, list[dict[str, Any]]] = {
    "text-generation": [{"text": "My name is Julien and I like to"}],
    "fill-mask": [{"text": "Paris is the [MASK] of France."}],
    "sentence-similarity": [{"source_sentence": "That is a happy person",
                             "sentences": ["That is a happy dog", "That is a very happy person",
                                           "Today is a sunny day"]}],
    "question-answering": [{"text": "Where do I live?", "context": "My name is Sarah and I live in London"}],
    "text-classification": [{"text": "I like you. I love you"}],
    "translation": [{"text": "My name is Wolfgang and I live in Berlin"}],
}


def _pick(rng: np.random.Generator, options: list[int] | tuple[int, ...], n: int,
          p: list[float] | None = None) -> np.ndarray:
    return np.asarray(options)[rng.choice(len(options), n, p=p)]


class ModelTable(RepoTable):
    kind = "models"
    kind_code = 1

    def __init__(self, n: int, *, n_papers: int = 0, n_datasets: int = 0, **kwargs: Any) -> None:
        super().__init__(n, **kwargs)
        self.n_papers = n_papers
        self.n_datasets = n_datasets
        self.corpus: Any = None  # set by Corpus: cross-kind lookups (dataset ids, paper ids, Spaces)
        self._children: np.ndarray | None = None
        self._prefixes: dict[int, tuple[str, ...]] = {}
        self._shared: dict[tuple[Any, ...], Any] = {}  # immutable-by-contract values reused across items

    # --- columns --------------------------------------------------------------------------------

    def _columns(self) -> None:
        n, rng, author = self.n, self.rng, self.author
        known = {name: i for i, (name, *_) in enumerate(KNOWN_AUTHORS)}
        org_families: dict[int, list[int]] = {}
        for f, fam in enumerate(FAMILIES):
            if fam.org in known:
                org_families.setdefault(known[fam.org], []).append(f)
        is_org = np.isin(author, list(org_families))
        quantizer = np.isin(author, [known[q] for q in QUANTIZERS])

        role = rng.choice(5, n, p=[.12, .44, .13, .06, .25]).astype(np.int8)
        role[quantizer] = QUANTIZED
        unsloth = author == known["unsloth"]
        role[unsloth & (rng.random(n) < 0.5)] = FINETUNE
        david = author == known["DavidAU"]
        role[david] = np.where(rng.random(int(david.sum())) < 0.6, MERGE, FINETUNE)
        role[is_org] = ORIGINAL

        # Bases: an earlier non-quantized model, most often one of the orgs' originals.
        base = np.full(n, -1, dtype=np.int32)
        candidates = np.flatnonzero(role != QUANTIZED)
        hubs = np.flatnonzero(is_org | ((role == ORIGINAL) & (rng.random(n) < 0.02)))
        derived = np.flatnonzero(role != ORIGINAL)
        n_cand = np.searchsorted(candidates, derived)
        n_hub = np.searchsorted(hubs, derived)
        use_hub = (rng.random(len(derived)) < 0.65) & (n_hub > 0)
        pick_c = (rng.random(len(derived)) * n_cand).astype(np.int64)
        pick_h = (rng.random(len(derived)) ** 1.5 * n_hub).astype(np.int64)
        chosen = np.where(use_hub, hubs[np.minimum(pick_h, len(hubs) - 1)] if len(hubs) else 0,
                          candidates[np.minimum(pick_c, max(len(candidates) - 1, 0))] if len(candidates) else 0)
        orphan = n_cand == 0
        chosen[orphan] = -1
        base[derived] = chosen
        role[derived[orphan]] = ORIGINAL
        root = base.copy()
        root[root < 0] = np.flatnonzero(root < 0)
        while True:  # pointer jumping to each lineage's original
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        self.role, self.base = role, base

        fam = _pick(rng, LLM_FAMILIES, n).astype(np.int8)
        other = rng.random(n) < 0.25
        fam[other] = rng.integers(0, len(FAMILIES), int(other.sum()))
        for a, fams in org_families.items():
            mine = author == a
            fam[mine] = _pick(rng, fams, int(mine.sum()))
        size = np.full(n, -1, dtype=np.int8)
        for f, family in enumerate(FAMILIES):
            mine = fam == f
            if family.sizes and mine.any():
                size[mine] = _pick(rng, family.sizes, int(mine.sum()))
        self.fam = fam[root]
        self.size = size[root]

        topic = rng.integers(0, len(TOPICS), n).astype(np.int16)
        topic[rng.random(n) < 0.35] = -1
        for f, family in enumerate(FAMILIES):
            fits = [t for t, tp in enumerate(TOPICS) if tp.pipeline == family.pipeline]
            mine = (self.fam == f) & (topic >= 0)
            if fits and mine.any():
                topic[mine] = _pick(rng, fits, int(mine.sum()))
            elif family.pipeline in ("fill-mask", "feature-extraction", "sentence-similarity", "text2text-generation"):
                encoder_topics = [t for t, tp in enumerate(TOPICS) if tp.pipeline != "text-generation"]
                topic[mine] = _pick(rng, encoder_topics, int(mine.sum()))
        self.topic = topic
        self.variant = rng.integers(0, len(VARIANTS), n).astype(np.int8)
        self.pattern = rng.integers(0, 8, n).astype(np.int8)
        self.adj = rng.integers(0, len(ADJECTIVES), n).astype(np.int8)
        self.num = rng.integers(1, 10, n).astype(np.int8)

        fam_pipe = np.array([_PIPE[f.pipeline] for f in FAMILIES], dtype=np.int8)
        topic_pipe = np.array([_PIPE[t.pipeline] for t in TOPICS], dtype=np.int8)
        pipe = fam_pipe[self.fam]
        encoder = np.isin(self.fam, [f for f, fm in enumerate(FAMILIES) if fm.model_type in ("bert", "roberta")])
        retask = encoder & (topic >= 0) & (role == FINETUNE)
        pipe[retask] = topic_pipe[topic[retask]]
        has_pipe = rng.random(n) < np.array([.9, .26, .3, .4, .12])[role]
        pipe[~has_pipe] = -1
        self.pipe = pipe

        quant = np.zeros(n, dtype=np.int8)
        q = role == QUANTIZED
        quant[q] = _pick(rng, [1, 2, 3, 4, 5, 7, 8], int(q.sum()), [.6, .08, .08, .05, .08, .06, .05])
        plan = {"TheBloke": ([1, 2, 3], None), "bartowski": ([1, 4], [.85, .15]), "mradermacher": ([1], None),
                "RichardErkhov": ([6, 7], [.7, .3]), "mlx-community": ([5], None), "QuantFactory": ([1], None),
                "lmstudio-community": ([1], None), "unsloth": ([7, 1], [.5, .5])}
        for name, (options, p) in plan.items():
            mine = q & (author == known[name])
            quant[mine] = _pick(rng, options, int(mine.sum()), p)
        self.quant = quant

        fam_lib = np.array([LIB[f.library] for f in FAMILIES], dtype=np.int8)
        lib = fam_lib[self.fam]
        lib[(lib == LIB["transformers"]) & (rng.random(n) < 0.3)] = 1  # older checkpoints also ship pytorch
        lib[role == ADAPTER] = LIB["peft"]
        gguf = np.isin(quant, [1, 6])
        lib[gguf] = np.where(rng.random(int(gguf.sum())) < 0.5, LIB["gguf"], -1)
        lib[quant == 5] = LIB["mlx"]
        lib[np.isin(quant, [2, 3, 4, 7, 8])] = LIB["transformers"]
        vit = self.fam == next(f for f, fm in enumerate(FAMILIES) if fm.model_type == "vit")
        lib[vit & (rng.random(n) < 0.3)] = LIB["timm"]
        lib[(role == FINETUNE) & (rng.random(n) < 0.1)] = -1
        rl = (role == ORIGINAL) & ~is_org & (rng.random(n) < 0.05)
        lib[rl] = _pick(rng, [LIB["stable-baselines3"], LIB["ml-agents"]], int(rl.sum()))
        self.pipe[rl] = _PIPE["reinforcement-learning"]
        self.lib = lib

        lic = rng.choice(len(LICENSES), n, p=_LIC_WEIGHTS / _LIC_WEIGHTS.sum()).astype(np.int8)
        inherit = (base >= 0) & (rng.random(n) < 0.8)
        lic = np.where(inherit, lic[root], lic).astype(np.int8)
        lic[rng.random(n) < 0.15] = -1
        self.lic = lic
        lang = rng.choice(len(LANGUAGES), n, p=_LANG_WEIGHTS / _LANG_WEIGHTS.sum()).astype(np.int8)
        lang[rng.random(n) < 0.6] = -1
        self.lang = lang
        self.arxiv = np.full(n, -1, dtype=np.int32)
        if self.n_papers:
            cites = rng.random(n) < np.where(role == ORIGINAL, 0.3, 0.03)
            self.arxiv[cites] = rng.integers(0, self.n_papers, int(cites.sum()))
        self.dataset = np.full(n, -1, dtype=np.int32)
        if self.n_datasets:
            trained = rng.random(n) < np.where(role == FINETUNE, 0.15, 0.03)
            self.dataset[trained] = rng.integers(0, self.n_datasets, int(trained.sum()))

        llm = np.isin(self.pipe, [_PIPE["text-generation"], _PIPE["image-text-to-text"]])
        transformers = np.isin(lib, [0, 1])
        flags = np.zeros(n, dtype=np.int8)
        flags |= np.where(rng.random(n) < 0.05, _FLAG["model-index"], 0).astype(np.int8)
        flags |= np.where(unsloth | ((role == FINETUNE) & (rng.random(n) < 0.08)), _FLAG["unsloth"], 0).astype(np.int8)
        flags |= np.where(llm & (rng.random(n) < 0.6), _FLAG["conversational"], 0).astype(np.int8)
        flags |= np.where(llm & transformers & (rng.random(n) < 0.7), _FLAG["text-generation-inference"],
                          0).astype(np.int8)
        flags |= np.where(transformers & (rng.random(n) < 0.25), _FLAG["autotrain_compatible"], 0).astype(np.int8)
        flags |= np.where((lib >= 0) & (rng.random(n) < 0.85), _FLAG["endpoints_compatible"], 0).astype(np.int8)
        self.flags = flags
        gated = np.zeros(n, dtype=np.int8)
        gate_orgs = np.isin(author, [known["meta-llama"], known["google"], known["mistralai"]]) & (role == ORIGINAL)
        gated[gate_orgs & (rng.random(n) < 0.7)] = 2
        gated[rng.random(n) < 0.005] = 1
        self.gated = gated
        self.disabled = (rng.random(n) < 0.002).astype(np.int8)

        params = np.array([p for _, p in SIZES], dtype=np.int64)[self.size]
        params[self.size < 0] = 0
        self.params = params
        has_weights = (np.isin(lib, [0, 1, 3, 5, 6, 7]) & (role != ADAPTER)) | gguf
        self.params[~has_weights] = 0
        bytes_per = np.where(gguf, 0.6, np.where(quant > 0, 0.55, 2.0))
        self.storage = (np.maximum(params, 40_000_000) * bytes_per * rng.uniform(1.0, 3.0, n)).astype(np.int64)

        popularity = np.where(is_org, 4.5, 0.0) + np.where(quantizer, 1.2, 0.0) + np.where(role == ORIGINAL, 0.5, 0)
        popularity = popularity + np.where(np.isin(base, hubs), 0.8, 0.0)
        zero_share = np.where(is_org, 0.02, np.where(quantizer, 0.25, 0.47))
        self._counters(popularity, zero_share)

    # --- names ----------------------------------------------------------------------------------

    def _names(self, ids: list[str]) -> Iterator[str]:
        authors = self.authors.names
        orgs = {f.org for f in FAMILIES}
        sizes = (*(name for name, _ in SIZES), "")  # index -1 -> no size
        topics = (*(t.word for t in TOPICS), "")
        columns = (getattr(self, c).tolist() for c in
                   ("role", "base", "fam", "size", "topic", "variant", "pattern", "adj", "num", "quant", "author"))
        for role, base, f, size_i, topic_i, variant_i, pattern, adj_i, num, quant, author_i in zip(
            *columns, strict=True
        ):
            fam = FAMILIES[f]
            size = sizes[size_i]
            topic = topics[topic_i]
            adj = ADJECTIVES[adj_i]
            stem = ids[base].split("/", 1)[1] if base >= 0 else fam.name
            author = authors[author_i]
            if role == QUANTIZED:
                suffix = QUANTS[quant][0]
                if author == "RichardErkhov":
                    yield f"{ids[base].replace('/', '_-_')}-{suffix.lower()}"
                elif author == "mradermacher" and pattern < 3:
                    yield f"{stem}-i1-GGUF"
                elif author == "mlx-community":
                    yield f"{stem}-4bit"
                else:
                    yield f"{stem}-{suffix}"
            elif role == ORIGINAL and author in orgs:
                parts = (fam.name, topic.capitalize(), size, VARIANTS[variant_i])
                yield "-".join(p for p in parts if p)
            elif role == ORIGINAL:
                word = topic or "base"
                yield (f"{adj}-{word}-{fam.model_type}-{size.lower()}".rstrip("-") if pattern < 4
                       else f"{word}-{fam.model_type}-{num}")
            elif role == FINETUNE:
                word = topic or ("finetuned", "custom", "test", "sft")[pattern % 4]
                if pattern == 0:
                    yield f"{stem}-{word}"
                elif pattern == 1:
                    yield f"{stem}-finetuned-{word}"
                elif pattern == 2:
                    variant = VARIANTS[variant_i].lower()
                    yield f"{fam.name.lower()}-{size.lower()}-{word}-{variant}".replace("--", "-").rstrip("-")
                elif pattern == 3:
                    yield f"{adj.capitalize()}-{word.capitalize()}-{size}".rstrip("-")
                elif pattern == 4:
                    yield f"{word}-{fam.model_type}-v{num}"
                elif pattern == 5:
                    yield f"my-{word}-model-{num}"
                elif pattern == 6:
                    yield f"{stem}-{adj}"
                else:
                    yield f"{fam.name.lower()}-{word}-sft-ep{num}"
            elif role == ADAPTER:
                word = topic or "custom"
                pattern %= 4
                if pattern == 0:
                    yield f"{stem}-{word}-lora"
                elif pattern == 1:
                    yield f"lora-{word}-{fam.model_type}"
                elif pattern == 2:
                    yield f"{fam.name.lower()}-{size.lower()}-{word}-adapter".replace("--", "-")
                else:
                    yield f"{stem}-qlora-{num}"
            else:
                word = (topic or adj).capitalize()
                pattern %= 4
                if pattern == 0:
                    yield f"{adj.capitalize()}-{word}-{size}-Merge".replace("--", "-")
                elif pattern == 1:
                    yield f"{fam.name}-{word}-SLERP"
                elif pattern == 2:
                    yield f"L3-{adj.capitalize()}-{word}-{size}".rstrip("-")
                else:
                    yield f"{stem}-merge-v{num}"

    # --- tags and filters -----------------------------------------------------------------------

    _LIB_TAGS = (*(tags for _, tags in LIBRARIES), ())  # index -1 -> ()
    _LIB_NAMES = (*(name for name, _ in LIBRARIES), None)
    _QUANT_TAGS = tuple(tags for _, tags in QUANTS)
    _FAM_TYPES = tuple(f.model_type for f in FAMILIES)
    _PIPES = (*PIPELINES, None)
    _TOPIC_TAGS = (*(t.tag for t in TOPICS), None)
    _LANGS = (*LANGUAGES, None)
    _LICS = (*(f"license:{lic}" for lic in LICENSES), None)

    def _ref_ids(self, refs: list[int], lookup: Any) -> list[str | None]:
        """Ids for a column of item references (-1 = none), fetched as one batch."""
        present = [r for r in refs if r >= 0]
        if not present or lookup is None:
            return [None] * len(refs)
        found = iter(lookup(np.asarray(present, dtype=np.int64)))
        return [next(found) if r >= 0 else None for r in refs]

    def _dataset_lookup(self) -> Any:
        datasets = getattr(self.corpus, "datasets", None)
        return datasets.ids_of if datasets is not None and datasets.n else None

    def _paper_ids(self, refs: list[int]) -> list[str | None]:
        papers = self.corpus.paper_ids if self.corpus is not None else []
        return [papers[r] if 0 <= r < len(papers) else None for r in refs]

    # License and flag tags close every list: one precomputed tuple per (license, flags) pair.
    _SUFFIXES: tuple[tuple[str, ...], ...] = tuple(
        (*((f"license:{LICENSES[lic]}",) if lic >= 0 else ()), *_FLAG_TUPLES[flags], "region:us")
        for lic in range(-1, len(LICENSES)) for flags in range(len(_FLAG_TUPLES))
    )

    def _tag_prefix(self, lib: int, quant: int, fam: int, role: int, pipe: int, topic: int,
                    lang: int) -> tuple[str, ...]:
        tags = [*self._LIB_TAGS[lib], *self._QUANT_TAGS[quant], self._FAM_TYPES[fam], *ROLE_TAGS[role]]
        pipe_name = self._PIPES[pipe]
        if pipe_name is not None:
            tags.append(pipe_name)
        topic_tag = self._TOPIC_TAGS[topic]
        if topic_tag is not None and topic_tag != pipe_name:
            tags.append(topic_tag)
        if lang >= 0:
            tags.append(LANGUAGES[lang])
        return tuple(tags)

    def f_tags(self, b: Batch) -> list[list[str]]:
        """Tags in the Hub's order: libraries, formats, architecture, pipeline, language, dataset, lineage,
        papers, license, flags, region. The part fixed by categorical columns is cached per combination."""
        idx = b.idx
        code = np.zeros(len(idx), dtype=np.int64)
        for column, width in ((self.lib, len(LIBRARIES) + 1), (self.quant, len(QUANTS)), (self.fam, len(FAMILIES)),
                              (self.role, len(ROLES)), (self.pipe, len(PIPELINES) + 1), (self.topic, len(TOPICS) + 1),
                              (self.lang, len(LANGUAGES) + 1)):
            code = code * width + (column[idx].astype(np.int64) + 1)
        suffix_code = ((self.lic[idx].astype(np.int64) + 1) * len(_FLAG_TUPLES) + self.flags[idx]).tolist()
        base_ids = self._ref_ids(b.col("base"), self.ids_of)
        dataset_ids = self._ref_ids(b.col("dataset"), self._dataset_lookup())
        paper_ids = self._paper_ids(b.col("arxiv"))
        prefixes = self._prefixes
        suffixes = self._SUFFIXES
        roles = b.col("role")
        out = []
        for k, (c, s, ds, base, paper) in enumerate(
            zip(code.tolist(), suffix_code, dataset_ids, base_ids, paper_ids, strict=True)
        ):
            prefix = prefixes.get(c)
            if prefix is None:
                prefix = prefixes[c] = self._tag_prefix(
                    b.col("lib")[k], b.col("quant")[k], b.col("fam")[k], roles[k], b.col("pipe")[k],
                    b.col("topic")[k], b.col("lang")[k])
            tags = list(prefix)
            if ds is not None:
                tags.append(f"dataset:{ds}")
            if base is not None:
                tags.append(f"base_model:{base}")
                tags.append(f"base_model:{ROLES[roles[k]]}:{base}")
            if paper is not None:
                tags.append(f"arxiv:{paper}")
            tags.extend(suffixes[s])
            out.append(tags)
        return out

    def tag_mask(self, tag: str) -> np.ndarray:
        n = self.n
        mask = np.zeros(n, dtype=bool)

        def add(column: np.ndarray, values: list[int]) -> None:
            nonlocal mask
            if values:
                mask |= np.isin(column, values)

        add(self.lib, [i for i, (_, tags) in enumerate(LIBRARIES) if tag in tags])
        add(self.quant, [i for i, (_, tags) in enumerate(QUANTS) if tag in tags])
        add(self.fam, [i for i, t in enumerate(self._FAM_TYPES) if t == tag])
        add(self.role, [i for i, tags in enumerate(ROLE_TAGS) if tag in tags])
        add(self.pipe, [_PIPE[tag]] if tag in _PIPE else [])
        add(self.topic, [i for i, t in enumerate(TOPICS) if t.tag == tag])
        add(self.lang, [LANGUAGES.index(tag)] if tag in LANGUAGES else [])
        if tag in _FLAG:
            mask |= (self.flags & _FLAG[tag]) != 0
        if tag == "region:us":
            mask[:] = True
        prefix, _, rest = tag.partition(":")
        if prefix == "license" and rest in LICENSES:
            mask |= self.lic == LICENSES.index(rest)
        elif prefix == "dataset" and getattr(self.corpus, "datasets", None) is not None:
            d = self.corpus.datasets.index_of(rest)
            if d is not None:
                mask |= self.dataset == d
        elif prefix == "arxiv" and self.corpus is not None:
            p = self.corpus.paper_index.get(rest)
            if p is not None and p < self.n_papers:
                mask |= self.arxiv == p
        elif prefix == "base_model":
            relation, _, target = rest.partition(":")
            if target and relation in ROLES[1:]:
                b = self.index_of(target)
                if b is not None:
                    mask |= (self.base == b) & (self.role == ROLES.index(relation))
            else:
                b = self.index_of(rest)
                if b is not None:
                    mask |= self.base == b
        return mask

    def pipeline_mask(self, pipeline: str) -> np.ndarray:
        if pipeline not in _PIPE:
            return np.zeros(self.n, dtype=bool)
        return self.pipe == _PIPE[pipeline]

    def params_mask(self, low: int | None, high: int | None) -> np.ndarray:
        mask = self.params > 0
        if low is not None:
            mask &= self.params >= low
        if high is not None:
            mask &= self.params <= high
        return mask

    def gated_mask(self, gated: bool) -> np.ndarray:
        return (self.gated > 0) if gated else (self.gated == 0)

    # --- fields ---------------------------------------------------------------------------------

    FIELD_METHODS: ClassVar[dict[str, str]] = {
        "pipeline_tag": "f_pipeline", "library_name": "f_library", "tags": "f_tags", "downloads": "f_downloads",
        "downloadsAllTime": "f_downloads_all", "modelId": "f_id", "inference": "f_inference",
        "mask_token": "f_mask_token", "widgetData": "f_widget", "model-index": "f_model_index",
        "config": "f_config", "cardData": "f_card", "transformersInfo": "f_transformers_info",
        "siblings": "f_siblings", "spaces": "f_spaces", "safetensors": "f_safetensors", "gguf": "f_gguf",
        "baseModels": "f_base_models", "childrenModelCount": "f_children", "evalResults": "f_eval_results",
        "inferenceProviderMapping": "f_providers",
    }

    def f_pipeline(self, b: Batch) -> list[str | None]:
        pipes = self._PIPES
        return [pipes[p] for p in b.col("pipe")]

    def f_library(self, b: Batch) -> list[str | None]:
        names = self._LIB_NAMES
        return [names[lib] for lib in b.col("lib")]

    def f_inference(self, b: Batch) -> list[str]:
        return ["warm" if d > 100_000 else "cold" for d in b.col("downloads")]

    def f_mask_token(self, b: Batch) -> list[str | None]:
        tokens = {"bert": "[MASK]", "roberta": "<mask>"}
        return [tokens.get(self._FAM_TYPES[f]) if p == _PIPE["fill-mask"] else None
                for f, p in zip(b.col("fam"), b.col("pipe"), strict=True)]

    def f_widget(self, b: Batch) -> list[list[dict[str, Any]] | None]:
        pipes = self._PIPES
        return [_WIDGETS.get(pipes[p]) if p >= 0 else None for p in b.col("pipe")]

    def f_model_index(self, b: Batch) -> list[list[dict[str, Any]] | None]:
        out: list[list[dict[str, Any]] | None] = []
        for repo_id, flags, pipe, likes in zip(b.ids(), b.col("flags"), b.col("pipe"), b.col("likes"), strict=True):
            if not flags & _FLAG["model-index"]:
                out.append(None)
                continue
            task = self._PIPES[pipe] or "text-generation"
            score = round(40 + (likes % 500) / 10, 2)
            out.append([{"name": repo_id, "results": [{
                "task": {"type": task, "name": task.replace("-", " ").title()},
                "dataset": {"name": "MMLU", "type": "cais/mmlu", "split": "test"},
                "metrics": [{"type": "accuracy", "value": score, "name": "Accuracy", "verified": False}],
            }]}])
        return out

    def f_config(self, b: Batch) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for fam, lib, quant in zip(b.col("fam"), b.col("lib"), b.col("quant"), strict=True):
            family = FAMILIES[fam]
            if lib == LIB["diffusers"]:
                out.append({"diffusers": {"_class_name": family.arch}})
            elif lib in (0, 1, LIB["peft"], LIB["mlx"]):
                config: dict[str, Any] = {"architectures": [family.arch], "model_type": family.model_type,
                                          "tokenizer_config": {"bos_token": "<s>", "eos_token": "</s>"}}
                if quant in (2, 3):
                    config["quantization_config"] = {"bits": 4, "quant_method": QUANTS[quant][0].lower()}
                out.append(config)
            elif quant in (1, 6):
                out.append({"model_type": family.model_type})
            else:
                out.append({})
        return out

    def f_card(self, b: Batch) -> list[dict[str, Any]]:
        base_ids = self._ref_ids(b.col("base"), self.ids_of)
        dataset_ids = self._ref_ids(b.col("dataset"), self._dataset_lookup())
        out: list[dict[str, Any]] = []
        for lib, pipe, lic, lang, topic, base, ds, role in zip(
            b.col("lib"), b.col("pipe"), b.col("lic"), b.col("lang"), b.col("topic"), base_ids, dataset_ids,
            b.col("role"), strict=True,
        ):
            card: dict[str, Any] = {}
            if base is not None:
                card["base_model"] = [base]
            if lib >= 0:
                card["library_name"] = self._LIB_NAMES[lib]
            if lic >= 0:
                card["license"] = LICENSES[lic]
            if lang >= 0:
                card["language"] = LANGUAGES[lang]
            if pipe >= 0:
                card["pipeline_tag"] = PIPELINES[pipe]
            tags = [t for t in (self._TOPIC_TAGS[topic], *ROLE_TAGS[role]) if t]
            if tags:
                card["tags"] = tags
            if ds is not None:
                card["datasets"] = [ds]
            out.append(card)
        return out

    def f_transformers_info(self, b: Batch) -> list[dict[str, str] | None]:
        out: list[dict[str, str] | None] = []
        for lib, pipe in zip(b.col("lib"), b.col("pipe"), strict=True):
            task = self._PIPES[pipe]
            if lib in (0, 1) and task in _AUTO_MODEL:
                out.append({"auto_model": _AUTO_MODEL[task], "pipeline_tag": task, "processor": "AutoTokenizer"})
            else:
                out.append(None)
        return out

    def f_siblings(self, b: Batch) -> list[list[dict[str, str]]]:
        out = []
        for name, lib, quant, role, params in zip(b.names(), b.col("lib"), b.col("quant"), b.col("role"),
                                                   b.col("params"), strict=True):
            files = [".gitattributes", "README.md"]
            if quant in (1, 6):
                stem = name.removesuffix("-GGUF").removesuffix("-i1").removesuffix("-gguf")
                files += [f"{stem}.{q}.gguf" for q in ("Q4_K_M", "Q5_K_M", "Q8_0")]
            elif role == ADAPTER:
                files += ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                          "tokenizer_config.json"]
            elif lib == LIB["diffusers"]:
                files += ["model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
                          "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json"]
            elif lib >= 0:
                shards = max(1, min(30, params // 4_000_000_000))
                files.append("config.json")
                if shards == 1:
                    files.append("model.safetensors")
                else:
                    files += [f"model-{k:05d}-of-{shards:05d}.safetensors" for k in range(1, shards + 1)]
                    files.append("model.safetensors.index.json")
                files += ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]
            out.append([{"rfilename": f} for f in files])
        return out

    def f_spaces(self, b: Batch) -> list[list[str]]:
        spaces = getattr(self.corpus, "spaces", None)
        if spaces is None or not spaces.n:
            return [[] for _ in range(len(b))]
        return [spaces.ids_using_model(i) for i in b.idx.tolist()]

    def f_safetensors(self, b: Batch) -> list[dict[str, Any] | None]:
        shared = self._shared
        out: list[dict[str, Any] | None] = []
        for params, quant, fam in zip(b.col("params"), b.col("quant"), b.col("fam"), strict=True):
            key = ("safetensors", params, quant, fam)
            value = shared.get(key, False)
            if value is False:
                if not params or quant in (1, 6):
                    value = None
                elif quant in (2, 3, 5, 7):
                    packed = params // 8
                    value = {"parameters": {"I32": packed, "F16": params - packed * 7}, "total": params - packed * 6}
                else:
                    dtype = ("F32" if params < 500_000_000
                             else "F16" if FAMILIES[fam].library == "diffusers" else "BF16")
                    value = {"parameters": {dtype: params}, "total": params}
                shared[key] = value
            out.append(value)
        return out

    def f_gguf(self, b: Batch) -> list[dict[str, Any] | None]:
        return [{"total": params, "architecture": self._FAM_TYPES[fam], "context_length": 131072}
                if quant in (1, 6) and params else None
                for params, quant, fam in zip(b.col("params"), b.col("quant"), b.col("fam"), strict=True)]

    def f_base_models(self, b: Batch) -> list[dict[str, Any] | None]:
        base_ids = self._ref_ids(b.col("base"), self.ids_of)
        return [{"relation": ROLES[role], "models": [{"id": base}]} if base is not None else None
                for base, role in zip(base_ids, b.col("role"), strict=True)]

    def f_children(self, b: Batch) -> list[int]:
        if self._children is None:
            self._children = np.bincount(self.base[self.base >= 0], minlength=self.n)
        return self._children[b.idx].tolist()

    def f_eval_results(self, b: Batch) -> list[list[Any]]:
        return [[] for _ in range(len(b))]

    def f_providers(self, b: Batch) -> list[list[dict[str, str]]]:
        return [[{"provider": "hf-inference", "providerId": repo_id, "status": "live", "task": "text-generation"}]
                if d > 1_000_000 and p == _PIPE["text-generation"] else []
                for repo_id, d, p in zip(b.ids(), b.col("downloads"), b.col("pipe"), strict=True)]
