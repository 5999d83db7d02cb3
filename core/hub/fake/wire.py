"""The Hub's wire vocabulary: which keys an item carries, in which order, and value formats.

Field lists follow `shared/hub/WIRE-FORMAT.md` and the recorded fixtures. Every
item of a kind is rendered from one canonical field order (`ALL_FIELDS`): a
listing, an `expand` projection and a detail body are ordered subsets of it.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

import numpy as np

KINDS: tuple[str, ...] = ("models", "datasets", "spaces")

# Repos created before the Hub stored creation dates all share this timestamp (and a few seconds after).
CLUMP_TS = 1646263744  # 2022-03-02T23:29:04Z, also the timestamp prefix of their `_id`s (621ffdc0)

DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "models": ("_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
               "library_name", "createdAt", "modelId"),
    "datasets": ("_id", "id", "author", "disabled", "gated", "lastModified", "likes", "trendingScore", "private",
                 "sha", "description", "downloads", "tags", "createdAt"),
    "spaces": ("_id", "id", "likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}

# `full=true`: the default keys plus author, gated, lastModified, sha (and siblings for models).
FULL_FIELDS: dict[str, tuple[str, ...]] = {
    "models": ("_id", "id", "author", "gated", "lastModified", "likes", "trendingScore", "private", "sha",
               "downloads", "tags", "pipeline_tag", "library_name", "createdAt", "modelId", "siblings"),
    "datasets": DEFAULT_FIELDS["datasets"],
    "spaces": ("_id", "id", "author", "gated", "lastModified", "likes", "trendingScore", "private", "sha", "sdk",
               "tags", "createdAt"),
}

# Detail bodies: the key order of the recorded fixtures, plus keys the fixtures' era did not have yet.
DETAIL_FIELDS: dict[str, tuple[str, ...]] = {
    "models": ("_id", "id", "private", "pipeline_tag", "library_name", "tags", "downloads", "likes", "modelId",
               "author", "sha", "lastModified", "gated", "inference", "disabled", "mask_token", "widgetData",
               "model-index", "config", "cardData", "transformersInfo", "siblings", "spaces", "createdAt",
               "safetensors", "gguf", "usedStorage"),
    "datasets": ("_id", "id", "author", "sha", "lastModified", "private", "gated", "disabled", "tags",
                 "citation", "description", "downloads", "likes", "cardData", "siblings", "createdAt",
                 "usedStorage"),
    "spaces": ("_id", "id", "author", "sha", "lastModified", "private", "cardData", "gated", "disabled",
               "subdomain", "tags", "likes", "datasets", "models", "sdk", "runtime", "siblings", "createdAt",
               "usedStorage"),
}

EXPAND_VALUES: dict[str, frozenset[str]] = {
    "models": frozenset((
        "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled", "downloads",
        "downloadsAllTime", "evalResults", "gated", "gguf", "inference", "inferenceProviderMapping",
        "lastModified", "library_name", "likes", "mask_token", "model-index", "pipeline_tag", "private",
        "resourceGroup", "safetensors", "sha", "siblings", "spaces", "tags", "transformersInfo", "trendingScore",
        "usedStorage", "widgetData")),
    "datasets": frozenset((
        "author", "cardData", "citation", "createdAt", "description", "disabled", "downloads", "downloadsAllTime",
        "gated", "lastModified", "likes", "mainSize", "paperswithcode_id", "private", "resourceGroup", "sha",
        "siblings", "tags", "trendingScore", "usedStorage")),
    "spaces": frozenset((
        "author", "cardData", "createdAt", "datasets", "disabled", "lastModified", "likes", "models", "private",
        "region", "resourceGroup", "runtime", "sdk", "sha", "siblings", "subdomain", "tags", "trendingScore",
        "usedStorage")),
}

# Every key an item can carry, in canonical order: detail keys first, then expand-only keys.
ALL_FIELDS: dict[str, tuple[str, ...]] = {
    kind: DETAIL_FIELDS[kind] + tuple(sorted(
        (set(EXPAND_VALUES[kind]) | set(DEFAULT_FIELDS[kind]) | set(FULL_FIELDS[kind])) - set(DETAIL_FIELDS[kind])
    ))
    for kind in KINDS
}

# Keys the Hub leaves out (rather than sending null) when an item has no value.
OPTIONAL_FIELDS: dict[str, frozenset[str]] = {
    "models": frozenset(("pipeline_tag", "library_name", "mask_token", "widgetData", "transformersInfo",
                         "safetensors", "gguf", "baseModels", "resourceGroup")),
    "datasets": frozenset(("resourceGroup",)),
    "spaces": frozenset(("datasets", "models", "resourceGroup")),
}

SORT_FIELDS: dict[str, tuple[str, ...]] = {
    "models": ("createdAt", "downloads", "lastModified", "likes", "trendingScore"),
    "datasets": ("createdAt", "downloads", "lastModified", "likes", "trendingScore"),
    "spaces": ("createdAt", "lastModified", "likes", "trendingScore"),
}
DATE_SORTS = frozenset(("createdAt", "lastModified"))
# Counters: changing only these is not a content change (no new lastModified or sha).
COUNTER_FIELDS = frozenset(("downloads", "likes", "trendingScore", "downloadsAllTime"))


def iso(ts: int | float) -> str:
    """Epoch seconds -> the Hub's timestamp format (`2025-11-04T08:25:31.000Z`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(ts)))


def iso_many(values: np.ndarray) -> list[str]:
    """Vectorized `iso` for a page of timestamps."""
    text = np.datetime_as_string(values.astype("datetime64[s]"), unit="s")
    return [t + ".000Z" for t in text.tolist()]


def parse_iso(text: str) -> int:
    """The Hub's timestamp format (or any ISO 8601 with a zone, or a bare date) -> epoch seconds."""
    if len(text) == 10:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def oid_hex(oid: int) -> str:
    """A 96-bit integer -> 24 hex chars, the Mongo ObjectId form of `_id`."""
    return f"{oid:024x}"


def oid_int(text: str) -> int:
    if len(text) != 24:
        raise ValueError("an _id is 24 hex characters")
    return int(text, 16)
