"""Typed records for Hub objects and the parsers that build them from wire JSON.

The parsers are the crawler's only view of the Hub's JSON: tests run them over
the real recordings in `shared/hub/fixtures/` so the fake Hub cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from core.kinds import Kind

BASE_RELATIONS = ("finetune", "adapter", "merge", "quantized")
_RELATIONS = frozenset(BASE_RELATIONS)
QUANT_FORMATS = ("gguf", "awq", "gptq", "exl2", "mlx", "bnb")
_QUANT_TAGS = frozenset(QUANT_FORMATS)
_QUANT_NAMES = ("gguf", "awq", "gptq", "exl2", "mlx")  # bitsandbytes is only ever a tag
_QUANT_NAME = re.compile(rf"[-_.]({'|'.join(_QUANT_NAMES)})(?:$|[-_.])", re.IGNORECASE)
_ARXIV_TAG = "arxiv:"
_LICENSE_TAG = "license:"
_BASE_MODEL_TAG = "base_model:"


class ParseError(ValueError):
    """A Hub object is missing what every object of its kind must have."""


class BaseModelRef(NamedTuple):  # a tuple: built for most models of every page, a frozen dataclass cost 5x more
    repo_id: str
    relation: str | None  # finetune | adapter | merge | quantized | None when the Hub does not say


@dataclass(slots=True)  # a page of them waits in memory for the writer: slots take a third of the space
class RepoRecord:
    kind: Kind
    id: str
    hub_oid: str | None
    author: str | None
    name: str
    downloads: int = 0
    downloads_all_time: int | None = None
    likes: int = 0
    trending_score: float | None = None
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    sdk: str | None = None
    description: str | None = None
    sha: str | None = None
    created_at: str | None = None
    last_modified: str | None = None
    private: bool = False
    gated: str | None = None  # None (not gated) | "auto" | "manual"
    disabled: bool = False
    license: str | None = None
    base_models: list[BaseModelRef] = field(default_factory=list)
    arxiv_ids: list[str] = field(default_factory=list)
    num_parameters: int | None = None
    quant_format: str | None = None
    raw: dict[str, Any] | None = None  # the JSON; None when parsed from a page's bytes (`parse_listed_repos`)

    @property
    def base_model(self) -> BaseModelRef | None:
        return self.base_models[0] if self.base_models else None


@dataclass(slots=True)
class PaperRecord:
    id: str  # arXiv id
    title: str
    summary: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: str | None = None
    upvotes: int = 0
    num_comments: int | None = None
    submitted_by: str | None = None
    ai_keywords: list[str] = field(default_factory=list)
    github_repo: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    kind = Kind.PAPER


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return None


def _gated(value: Any) -> str | None:
    if value in (None, False, "false"):
        return None
    return str(value) if isinstance(value, str) else "auto"


def _base_model(bases: dict[str, str | None], tag: str) -> None:
    """Note a `base_model:X` tag (names a base) or `base_model:{relation}:X` (how the child relates to it).

    `bases` keeps the order in which the tags first name each base.
    """
    rest = tag[len(_BASE_MODEL_TAG):]
    head, _, tail = rest.partition(":")
    if tail and head in _RELATIONS:
        bases[tail] = head
    else:
        bases.setdefault(rest, None)


def _quant_format(repo_id: str, tags: list[str]) -> str | None:
    quant_tags = _QUANT_TAGS.intersection(tags)  # library tags are lower-case on the Hub
    if quant_tags:
        return min(quant_tags, key=QUANT_FORMATS.index)  # the first format in QUANT_FORMATS order wins
    lowered = repo_id.lower()
    # Most ids name none of `_QUANT_NAMES`: these five tests cost a third of the regex (or of `any`).
    if "gguf" in lowered or "awq" in lowered or "gptq" in lowered or "exl2" in lowered or "mlx" in lowered:
        match = _QUANT_NAME.search(repo_id)
        return match.group(1).lower() if match else None
    return None


def _num_parameters(obj: dict[str, Any]) -> int | None:
    for key in ("safetensors", "gguf"):
        section = obj.get(key)
        if isinstance(section, dict):
            total = _opt_int(section.get("total"))
            if total:
                return total
    return None


def _space_description(card: dict[str, Any], title: str | None, short_description: str | None) -> str | None:
    parts = [card.get("title") or title, card.get("short_description") or short_description]
    text = " — ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return text or None


def _without_recording_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The recorded fixtures carry where they came from in `_source`; the Hub never sends it.

    Returns `obj` itself when there is nothing to drop: the crawler then stores the
    item's bytes as they came off the wire instead of serializing the dict again.
    """
    return {k: v for k, v in obj.items() if k != "_source"} if "_source" in obj else obj


def _str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _number(value: Any) -> int | None:
    # bool is an int subclass, and the Hub never means True by a download count.
    return int(value) if type(value) is int or type(value) is float else None


def _counter(value: Any) -> int:
    return _number(value) or 0


def parse_repo(kind: Kind, obj: dict[str, Any]) -> RepoRecord:
    """Build a record from a list item or a detail body of a model, dataset or Space.

    Any JSON is accepted: a field of an unexpected type counts as absent.
    """
    repo_id = obj.get("id") if isinstance(obj, dict) else None
    if not isinstance(repo_id, str) or not repo_id:
        raise ParseError(f"{kind.value} item without an id: {str(obj)[:200]}")
    get = obj.get
    card = get("cardData")
    tags = get("tags")
    downloads_all_time = get("downloadsAllTime")
    trending = get("trendingScore")
    return _repo_record(
        kind, repo_id, _str(obj, "_id"), _str(obj, "author"),
        _counter(get("downloads")), _number(downloads_all_time), _counter(get("likes")),
        float(trending) if type(trending) is int or type(trending) is float else None,
        [tag for tag in tags if type(tag) is str] if isinstance(tags, list) else [],
        _str(obj, "pipeline_tag"), _str(obj, "library_name"), _str(obj, "sdk"), _str(obj, "description"),
        _str(obj, "title"), _str(obj, "ai_short_description"), _str(obj, "sha"), _str(obj, "createdAt"),
        _str(obj, "lastModified"), bool(get("private", False)), get("gated"), bool(get("disabled", False)),
        card if isinstance(card, dict) else None, _num_parameters(obj), _without_recording_metadata(obj),
    )


class _Totals(msgspec.Struct):
    total: int | float | None = None


class _ListedRepo(msgspec.Struct):
    """A list item of a kind as the crawler asks for it (EXPAND_FIELDS), in the types the Hub sends.

    Decoding a page into these and building its records took ~8 µs an item at 1M
    models, against ~10.5 for a dict per item and `parse_repo`. An item that does
    not fit (a null where a count belongs, a tag that is not a string) fails the
    page's decode, and `parse_listed_repos` falls back to `parse_repo`, which
    tolerates anything. Field names are the wire's.
    """

    id: str
    oid: str | None = msgspec.field(name="_id", default=None)
    author: str | None = None
    downloads: int | float = 0
    downloadsAllTime: int | float | None = None
    likes: int | float = 0
    trendingScore: int | float | None = None
    tags: list[str] | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    sdk: str | None = None
    description: str | None = None
    title: str | None = None
    ai_short_description: str | None = None
    sha: str | None = None
    createdAt: str | None = None
    lastModified: str | None = None
    private: bool = False
    gated: bool | str | None = None
    disabled: bool = False
    cardData: dict[str, Any] | None = None
    safetensors: _Totals | None = None
    gguf: _Totals | None = None
    # Only recordings have it; looking for it here costs nothing, a search of the page's bytes ~0.4 µs an item.
    source: msgspec.Raw | msgspec.UnsetType = msgspec.field(name="_source", default=msgspec.UNSET)


_LISTED_PAGE = msgspec.json.Decoder(list[_ListedRepo])


def _whole(section: _Totals | None) -> int | None:
    return int(section.total) if section is not None and section.total else None


def parse_listed_repos(kind: Kind, body: bytes) -> list[RepoRecord] | None:
    """The records of a list page (a JSON array), or None when an item needs `parse_repo`.

    The records' `raw` is None: their JSON is the page's own bytes, item by item.
    """
    try:
        items = _LISTED_PAGE.decode(body)
    except msgspec.DecodeError:
        return None
    records = []
    for item in items:
        if not item.id or item.source is not msgspec.UNSET:  # `_source`: a recording (`_without_recording_metadata`)
            return None
        trending = item.trendingScore
        records.append(_repo_record(
            kind, item.id, item.oid, item.author, int(item.downloads), _number(item.downloadsAllTime),
            int(item.likes), None if trending is None else float(trending), item.tags or [],
            item.pipeline_tag, item.library_name, item.sdk, item.description, item.title,
            item.ai_short_description, item.sha, item.createdAt, item.lastModified, item.private, item.gated,
            item.disabled, item.cardData, _whole(item.safetensors) or _whole(item.gguf), None,
        ))
    return records


def _repo_record(
    kind: Kind, repo_id: str, hub_oid: str | None, author: str | None, downloads: int,
    downloads_all_time: int | None, likes: int, trending: float | None, tags: list[str],
    pipeline_tag: str | None, library_name: str | None, sdk: str | None, description: str | None,
    title: str | None, short_description: str | None, sha: str | None, created_at: str | None,
    last_modified: str | None, private: bool, gated: Any, disabled: bool, card: dict[str, Any] | None,
    num_parameters: int | None, raw: dict[str, Any] | None,
) -> RepoRecord:
    """What both parsers share, from fields already checked for type.

    This runs for every crawled item (a million per full sync of the models), so
    it looks at the tags in a single pass, and only at those with a colon.
    """
    is_model = kind is Kind.MODEL
    license_name: str | None = None
    arxiv_ids: list[str] = []
    bases: dict[str, str | None] = {}
    for tag in tags:
        if ":" not in tag:
            continue
        if tag.startswith(_LICENSE_TAG):
            license_name = license_name or tag[8:]
        elif tag.startswith(_ARXIV_TAG):
            arxiv_ids.append(tag[6:])
        elif is_model and tag.startswith(_BASE_MODEL_TAG):
            _base_model(bases, tag)
    if license_name is None and card is not None and isinstance(card.get("license"), str):
        license_name = card["license"]
    if not author:
        author = repo_id.split("/", 1)[0] if "/" in repo_id else None
    if kind is Kind.SPACE:
        description = _space_description(card or {}, title, short_description)
    return RepoRecord(
        kind, repo_id, hub_oid, author, repo_id.rsplit("/", 1)[-1], downloads, downloads_all_time, likes,
        trending, tags, pipeline_tag, library_name, sdk, description.strip() if description else None,
        sha, created_at, last_modified, private, _gated(gated), disabled, license_name,
        [BaseModelRef(base, relation) for base, relation in bases.items()], arxiv_ids, num_parameters,
        _quant_format(repo_id, tags) if is_model else None,
        raw,
    )


def parse_paper(obj: dict[str, Any]) -> PaperRecord:
    """Build a record from a `/api/papers` item, a daily-papers item (outer or inner `paper`) or a detail."""
    if not isinstance(obj, dict):
        raise ParseError(f"paper item is not an object: {str(obj)[:200]}")
    inner = obj.get("paper") if isinstance(obj.get("paper"), dict) else obj
    paper_id = inner.get("id")
    title = inner.get("title") or obj.get("title")
    if not isinstance(paper_id, str) or not isinstance(title, str):
        raise ParseError(f"paper without id or title: {str(obj)[:200]}")
    authors = [
        a["name"] for a in inner.get("authors") or []
        if isinstance(a, dict) and isinstance(a.get("name"), str) and not a.get("hidden")
    ]
    submitted = obj.get("submittedBy") or inner.get("submittedOnDailyBy")
    keywords = inner.get("ai_keywords") or []
    return PaperRecord(
        id=paper_id,
        title=title.strip(),
        summary=(inner.get("summary") or obj.get("summary") or "").strip() or None,
        authors=authors,
        published_at=inner.get("publishedAt") or obj.get("publishedAt"),
        upvotes=_opt_int(inner.get("upvotes")) or 0,
        num_comments=_opt_int(obj.get("numComments")),
        submitted_by=submitted.get("name") if isinstance(submitted, dict) else None,
        ai_keywords=[k for k in keywords if isinstance(k, str)],
        github_repo=inner.get("githubRepo") if isinstance(inner.get("githubRepo"), str) else None,
        raw=_without_recording_metadata(obj),
    )


# The fields the crawler asks for with `expand`: enough for every column, no more.
# Detail bodies are projected onto the same keys so a row's raw JSON does not
# flip-flop between the list form and the detail form.
EXPAND_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.MODEL: (
        "author", "createdAt", "disabled", "downloads", "downloadsAllTime", "gated", "lastModified",
        "library_name", "likes", "pipeline_tag", "private", "safetensors", "sha", "tags", "trendingScore",
    ),
    Kind.DATASET: (
        "author", "createdAt", "description", "disabled", "downloads", "downloadsAllTime", "gated",
        "lastModified", "likes", "private", "sha", "tags", "trendingScore",
    ),
    Kind.SPACE: (
        "author", "cardData", "createdAt", "disabled", "lastModified", "likes", "private", "sdk", "sha",
        "tags", "trendingScore",
    ),
}
COUNTER_FIELDS = frozenset({"downloads", "downloadsAllTime", "likes", "trendingScore", "upvotes", "numComments"})


def project(kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keys a list call with `expand` would return."""
    keep = ("_id", "id", *EXPAND_FIELDS[kind])
    projected = {key: obj[key] for key in keep if key in obj}
    if kind is Kind.SPACE and isinstance(projected.get("cardData"), dict):
        card = projected["cardData"]
        projected["cardData"] = {k: card[k] for k in ("title", "short_description", "emoji", "sdk", "license")
                                 if k in card}
    return projected
