"""Pure alert rules: does an item match a watch, and should it alert now?

No I/O here. A watch is armed at `added_at`; anything created on the Hub before
that never alerts, which is what keeps a first run (or a freshly added broad
watch) from flooding the chat with the back catalogue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.hub.records import BASE_RELATIONS, PaperRecord, RepoRecord
from core.kinds import ALL_KINDS, REPO_KINDS, Kind
from core.store.items import Previous

INSTANT = "instant"
DIGEST = "digest"
MODES = (INSTANT, DIGEST)

WATCH_TYPES = ("author", "tag", "repo", "query")

# Tags that match thousands of repos a day: a watch on one of them defaults to the
# hourly digest instead of one message per repo.
BROAD_TAGS = frozenset({
    "llm", "gguf", "quantized", "instruct", "chat", "code", "vision", "multimodal", "text-generation",
    "text-to-image", "conversational", "transformers", "safetensors", "pytorch", "diffusers", "lora", "peft",
    "mlx", "onnx", "endpoints_compatible", "text2text-generation", "image-text-to-text", "feature-extraction",
    "sentence-transformers", "sentence-similarity", "text-classification", "image-classification",
    "automatic-speech-recognition", "text-to-speech", "4-bit", "8-bit", "awq", "gptq", "exl2", "fp8",
    "reinforcement-learning", "image-to-image", "text-to-video", "unsloth", "trl", "sft", "gradio",
    "streamlit", "docker", "static",
})

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbt]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


def parse_size(value: str | int | float | None) -> int | None:
    """`7B`, `500M`, `1.5e9`, 7000000000 → a parameter count; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a parameter count: {value!r}")
    if isinstance(value, (int, float)):
        if not -1e16 < value < 1e16:
            raise ValueError(f"parameter count out of range: {value!r}")
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a parameter count: {value!r} (examples: 7B, 500M, 1.5e9)")
    number = float(match.group(1)) * _SCALE[match.group(2).lower()]
    if not number < 1e16:  # also rejects inf and nan
        raise ValueError(f"parameter count out of range: {value!r}")
    return int(number)


def format_size(count: int | None) -> str | None:
    """7_241_000_000 → `7.2B` (one decimal below 100, none above)."""
    if not count:
        return None
    for suffix, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            value = count / scale
            text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(count)


@dataclass(frozen=True)
class Query:
    """A saved query: every given criterion must hold; within a list any value may."""

    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    pipeline: str | None = None
    base_model: str | None = None
    relation: str | None = None  # finetune | adapter | merge | quantized; needs base_model or stands alone
    min_params: int | None = None
    max_params: int | None = None
    text: str | None = None
    kinds: tuple[Kind, ...] = ALL_KINDS

    def describe(self) -> str:
        parts = []
        if self.authors:
            parts.append("author " + "|".join(self.authors))
        if self.tags:
            parts.append("tag " + "|".join(self.tags))
        if self.pipeline:
            parts.append(f"task {self.pipeline}")
        if self.base_model or self.relation:
            parts.append(f"{self.relation or 'derived'} of {self.base_model or 'any model'}")
        if self.min_params is not None or self.max_params is not None:
            low = format_size(self.min_params) or "0"
            high = format_size(self.max_params) or "∞"
            parts.append(f"params {low}–{high}")
        if self.text:
            parts.append(f'text "{self.text}"')
        if self.kinds != ALL_KINDS:
            parts.append("kinds " + ",".join(k.plural for k in self.kinds))
        return ", ".join(parts) or "everything"


@dataclass(frozen=True)
class Watch:
    """One thing the user wants to hear about. `name` is its stable identity (dedup keys, feeds)."""

    name: str
    type: str  # author | tag | repo | query
    mode: str = INSTANT
    query: Query = field(default_factory=Query)
    repo_kind: Kind | None = None  # repo watches only
    repo_id: str | None = None

    @property
    def slug(self) -> str:
        """URL-safe form for `/feeds/{slug}.atom`."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.name).strip("-")

    @property
    def value(self) -> str:
        """What follows the `type:` prefix (the author, the tag, the repo, the query name)."""
        return self.name.split(":", 1)[1] if ":" in self.name else self.name

    def describe(self) -> str:
        if self.type == "author":
            return f"author {self.value}"
        if self.type == "tag":
            return f"tag {self.value}"
        if self.type == "repo":
            return f"watched repo {self.repo_id}"
        return f"query {self.value} ({self.query.describe()})"


def repo_path(kind: Kind, repo_id: str) -> str:
    """The Hub's URL path for an item: models bare, others prefixed."""
    if kind is Kind.MODEL:
        return repo_id
    return f"{kind.plural}/{repo_id}"


def author_watch(author: str, mode: str | None = None) -> Watch:
    return Watch(f"author:{author}", "author", mode or INSTANT, Query(authors=(author,)))


def tag_watch(tag: str, mode: str | None = None) -> Watch:
    default = DIGEST if tag.lower() in BROAD_TAGS else INSTANT
    return Watch(f"tag:{tag}", "tag", mode or default, Query(tags=(tag,)))


def repo_watch(kind: Kind, repo_id: str, mode: str | None = None) -> Watch:
    return Watch(f"repo:{repo_path(kind, repo_id)}", "repo", mode or INSTANT, Query(kinds=(kind,)),
                 repo_kind=kind, repo_id=repo_id)


def query_watch(name: str, query: Query, mode: str | None = None) -> Watch:
    if mode is None:
        # A query made only of broad tags is as noisy as a broad tag watch.
        only_broad = (query.tags and all(t.lower() in BROAD_TAGS for t in query.tags) and not
                      (query.authors or query.base_model or query.text or query.pipeline
                       or query.min_params or query.max_params))
        mode = DIGEST if only_broad else INSTANT
    return Watch(f"query:{name}", "query", mode, query)


# -- matching ----------------------------------------------------------------

def _lower(values: object) -> set[str]:
    return {v.lower() for v in values if isinstance(v, str)}  # type: ignore[attr-defined]


def _repo_terms(record: RepoRecord) -> set[str]:
    terms = _lower(record.tags)
    for extra in (record.pipeline_tag, record.library_name, record.quant_format):
        if extra:
            terms.add(extra.lower())
    return terms


def _text_matches(text: str, haystack: str) -> bool:
    haystack = haystack.lower()
    return all(term in haystack for term in text.lower().split())


def match_query(query: Query, item: RepoRecord | PaperRecord) -> bool:
    if item.kind not in query.kinds:
        return False
    if isinstance(item, PaperRecord):
        return _match_paper(query, item)
    if query.authors and (item.author or "").lower() not in _lower(query.authors):
        return False
    if query.tags and not (_lower(query.tags) & _repo_terms(item)):
        return False
    if query.pipeline and (item.pipeline_tag or "").lower() != query.pipeline.lower():
        return False
    if query.base_model or query.relation:
        bases = [
            b for b in item.base_models
            if (not query.base_model or b.repo_id.lower() == query.base_model.lower())
            and (not query.relation or b.relation == query.relation)
        ]
        if not bases:
            return False
    if query.min_params is not None or query.max_params is not None:
        if item.num_parameters is None:
            return False
        if query.min_params is not None and item.num_parameters < query.min_params:
            return False
        if query.max_params is not None and item.num_parameters > query.max_params:
            return False
    if query.text:
        haystack = " ".join([item.id, item.description or "", " ".join(item.tags)])
        if not _text_matches(query.text, haystack):
            return False
    return True


def _match_paper(query: Query, paper: PaperRecord) -> bool:
    # Papers have no pipeline, lineage or size: a query that needs one never matches a paper.
    if query.pipeline or query.base_model or query.relation or query.min_params or query.max_params:
        return False
    if query.authors:
        names = _lower(paper.authors) | _lower([paper.submitted_by or ""])
        if not (names & _lower(query.authors)):
            return False
    if query.tags and not (_lower(query.tags) & _lower(paper.ai_keywords)):
        return False
    return not (query.text and not _text_matches(query.text, f"{paper.title} {paper.summary or ''}"))


def matches(watch: Watch, item: RepoRecord | PaperRecord) -> bool:
    if watch.type == "repo":
        return item.kind is watch.repo_kind and item.id == watch.repo_id
    return match_query(watch.query, item)


@dataclass(frozen=True)
class Decision:
    """An alert to write: the dedup key makes it exactly-once."""

    key: str
    event: str  # new | commit
    reason: str


def paper_submitted_at(paper: PaperRecord) -> str | None:
    """When the paper reached the Hub's daily papers (its arXiv date can be days earlier)."""
    raw = paper.raw
    inner = raw.get("paper") if isinstance(raw.get("paper"), dict) else raw
    value = inner.get("submittedOnDailyAt") or raw.get("submittedOnDailyAt")
    return value if isinstance(value, str) else None


def item_time(item: RepoRecord | PaperRecord) -> str | None:
    if isinstance(item, PaperRecord):
        return paper_submitted_at(item) or item.published_at
    return item.created_at


def decide(watch: Watch, added_at: str, item: RepoRecord | PaperRecord,
           previous: Previous | None) -> Decision | None:
    """Should `item` (just written, `previous` = the row before) alert on `watch` armed at `added_at`?

    Timestamps are the Hub's text format, so they compare as strings.
    """
    if item.kind.is_repo and isinstance(item, RepoRecord) and (item.private or item.disabled):
        return None
    if not matches(watch, item):
        return None
    base_key = f"{watch.name}|{item.kind.value}|{item.id}"
    if watch.type == "repo" and previous is not None:
        # A watched repo alerts on each new commit; its first sighting is only a baseline.
        sha = getattr(item, "sha", None)
        if sha and previous.sha and sha != previous.sha:
            return Decision(f"{base_key}|{sha}", "commit", watch.describe())
        return None
    created = item_time(item)
    if not created:
        return None  # cannot prove it is newer than the watch: stay quiet
    if isinstance(item, PaperRecord) and paper_submitted_at(item) is None:
        # Only an arXiv date (often midnight, days before it reached the Hub): compare days.
        if created[:10] < added_at[:10]:
            return None
    elif created < added_at:
        return None
    return Decision(base_key, "new", watch.describe())


def group_key(item: RepoRecord | PaperRecord) -> str | None:
    """What floods share: the base model a wave of quants/fine-tunes derive from, else the author."""
    if isinstance(item, PaperRecord):
        return None
    if item.base_model is not None:
        return f"base:{item.base_model.repo_id}"
    return f"author:{item.author}" if item.author else None


__all__ = [
    "BASE_RELATIONS", "BROAD_TAGS", "DIGEST", "INSTANT", "MODES", "REPO_KINDS", "WATCH_TYPES", "Decision",
    "Query", "Watch", "author_watch", "decide", "format_size", "group_key", "match_query", "matches",
    "parse_size", "query_watch", "repo_path", "repo_watch", "tag_watch",
]
