"""Columnar storage of one kind's seeded repos, rendered into wire dicts on demand.

A table never holds per-item dicts: every attribute is a numpy column (or an
index into a vocabulary tuple), ids live in one joined string, and a page of
items is rendered from the columns of just that page. That is what lets one
process serve two million models.

Index order is `_id` order: items are sorted by (createdAt, random low bits)
at build time, and `_id` = createdAt seconds (4 bytes) + those low bits
(8 bytes), like a Mongo ObjectId. Ties in every listing sort are broken by
`_id`, so by index, which makes a stable argsort of a key column the listing
order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from core.hub.fake.authors import AuthorPool
from core.hub.fake.wire import CLUMP_TS, iso_many

FieldFn = Callable[["Batch"], list[Any]]
DAY = 86_400
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_rows(raw: np.ndarray) -> list[str]:
    """Each row of a uint8 matrix as lowercase hex, vectorized (no per-byte Python work)."""
    rows, width = raw.shape
    out = np.empty((rows, width * 2), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    text = out.tobytes().decode("ascii")
    step = width * 2
    return [text[k:k + step] for k in range(0, rows * step, step)]


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on a uint64 array (wrapping arithmetic is intended)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class Batch:
    """The columns of one page of items, each fetched once and converted to Python values."""

    def __init__(self, table: RepoTable, idx: np.ndarray) -> None:
        self.table = table
        self.idx = idx
        self._cache: dict[str, list[Any]] = {}

    def col(self, name: str) -> list[Any]:
        values = self._cache.get(name)
        if values is None:
            values = self._cache[name] = getattr(self.table, name)[self.idx].tolist()
        return values

    def ids(self) -> list[str]:
        values = self._cache.get("__ids")
        if values is None:
            values = self._cache["__ids"] = self.table.ids_of(self.idx)
        return values

    def names(self) -> list[str]:
        return [i.split("/", 1)[1] for i in self.ids()]

    def authors(self) -> list[str]:
        names = self.table.authors.names
        return [names[a] for a in self.col("author")]

    def __len__(self) -> int:
        return len(self.idx)


class RepoTable:
    """Base class: ids, `_id`s, timestamps, counters, sort orders, search and per-field rendering."""

    kind: ClassVar[str] = ""
    kind_code: ClassVar[int] = 0

    def __init__(self, n: int, *, seed: int, anchor: int, authors: AuthorPool) -> None:
        self.n = n
        self.seed = seed
        self.anchor = anchor
        self.authors = authors
        self.rng = np.random.default_rng([seed, self.kind_code])
        self._sha_salt = np.uint64((seed * 1_000_003 + self.kind_code) % 2**64)
        self._perms: dict[tuple[str, bool], np.ndarray] = {}
        self._fields: dict[str, FieldFn] = {}
        for cls in reversed(type(self).__mro__):
            for wire, method in cls.__dict__.get("FIELD_METHODS", {}).items():
                self._fields[wire] = getattr(self, method)

    # --- building -------------------------------------------------------------------------------

    def build(self) -> None:
        self._timeline()
        self.author = self.authors.draw(self.kind, self.n, self.rng)
        self._columns()
        self._build_ids()

    def _timeline(self) -> None:
        """createdAt (with the 2022-03-02 clump) and `_id` low bits, sorted into `_id` order."""
        n, rng = self.n, self.rng
        start, end = CLUMP_TS + DAY, self.anchor - 3600
        # Growth: many more repos were created recently than in 2022.
        created = start + ((end - start) * rng.random(n) ** 0.45).astype(np.int64)
        clump = rng.random(n) < self.clump_share()
        created[clump] = CLUMP_TS + np.where(rng.random(int(clump.sum())) < 0.7, 0,
                                             rng.integers(1, 40, int(clump.sum())))
        low = rng.integers(0, 2**63 - 1, n, dtype=np.int64)
        order = np.lexsort((low, created))
        self.created = created[order]
        self.oid_low = low[order]
        same = (np.diff(self.created) == 0) & (np.diff(self.oid_low) == 0)
        if same.any():  # astronomically unlikely; keep `_id`s unique anyway
            self.oid_low[1:][same] += 1
        self.age_days = ((self.anchor - self.created) // DAY).astype(np.int32)

    def clump_share(self) -> float:
        return 0.04

    def _columns(self) -> None:
        raise NotImplementedError

    def _names(self, ids: list[str]) -> Iterator[str]:
        """Repo names (without author) in index order; `ids` holds the ids of the items before."""
        raise NotImplementedError

    def _build_ids(self) -> None:
        owners = [f"{name}/" for name in self.authors.names]
        ids: list[str] = []
        append = ids.append
        seen: set[int] = set()  # hashes of lower-cased ids: the Hub treats ids case-insensitively
        add = seen.add
        for author, name in zip(self.author.tolist(), self._names(ids), strict=True):
            repo_id = owners[author] + name
            key = hash(repo_id.lower())
            if key in seen:
                suffix = 2
                while key in seen:
                    candidate = f"{repo_id}-v{suffix}"
                    key = hash(candidate.lower())
                    suffix += 1
                repo_id = candidate
            add(key)
            append(repo_id)
        del seen
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=self.n) + 1
        self.id_off = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.id_off[1:])
        self.id_text = "\n".join(ids) + "\n"
        if not self.id_text.isascii():
            raise ValueError("repo ids must be ASCII")
        self.id_lower = self.id_text.lower()
        hashes = np.fromiter(map(hash, ids), dtype=np.int64, count=self.n)
        self._hash_order = np.argsort(hashes, kind="stable").astype(np.int32)
        self._hash_sorted = hashes[self._hash_order]

    # --- ids ------------------------------------------------------------------------------------

    def id_of(self, i: int) -> str:
        return self.id_text[int(self.id_off[i]):int(self.id_off[i + 1]) - 1]

    def ids_of(self, idx: np.ndarray) -> list[str]:
        text = self.id_text
        starts = self.id_off[idx].tolist()
        ends = self.id_off[idx + 1].tolist()
        return [text[s:e - 1] for s, e in zip(starts, ends, strict=True)]

    def index_of(self, repo_id: str) -> int | None:
        key = hash(repo_id)
        pos = int(np.searchsorted(self._hash_sorted, key))
        while pos < self.n and self._hash_sorted[pos] == key:
            i = int(self._hash_order[pos])
            if self.id_of(i) == repo_id:
                return i
            pos += 1
        return None

    def all_ids(self) -> list[str]:
        return self.id_text.split("\n")[:-1]

    def oid_of(self, i: int) -> int:
        return (int(self.created[i]) << 64) | int(self.oid_low[i])

    def first_after_oid(self, oid: int) -> int:
        """Number of items whose `_id` is <= oid (index order is `_id` order)."""
        hi, low = oid >> 64, oid & ((1 << 64) - 1)
        a = int(np.searchsorted(self.created, hi, "left"))
        b = int(np.searchsorted(self.created, hi, "right"))
        if low >= 2**63:
            return b
        return a + int(np.searchsorted(self.oid_low[a:b], low, "right"))

    # --- sorting and filtering ------------------------------------------------------------------

    def sort_key(self, field: str) -> np.ndarray:
        if field == "createdAt":
            return self.created
        if field == "lastModified":
            return self.modified
        if field == "likes":
            return self.likes
        if field == "trendingScore":
            return self.trending
        return self.downloads  # models and datasets only: Spaces have no downloads sort

    def perm(self, field: str, desc: bool) -> np.ndarray:
        """Item indices in listing order for a sort; ties in index (= `_id`) order."""
        perm = self._perms.get((field, desc))
        if perm is None:
            key = self.sort_key(field)
            if field == "createdAt" and not desc:
                perm = np.arange(self.n, dtype=np.int32)  # index order is createdAt order
            else:
                perm = np.argsort(-key if desc else key, kind="stable").astype(np.int32)
            self._perms[(field, desc)] = perm
        return perm

    def search_mask(self, query: str) -> np.ndarray:
        """Items whose id contains `query`, case-insensitively (one regex scan of all ids)."""
        mask = np.zeros(self.n, dtype=bool)
        needle = query.lower().replace("\n", "")
        if not needle:
            mask[:] = True
            return mask
        starts = np.fromiter((m.start() for m in re.finditer(re.escape(needle), self.id_lower)), dtype=np.int64)
        if len(starts):
            mask[np.searchsorted(self.id_off, starts, "right") - 1] = True
        return mask

    def author_mask(self, author: str) -> np.ndarray:
        a = self.authors.index.get(author)
        if a is None:
            return np.zeros(self.n, dtype=bool)
        return self.author == a

    def tag_mask(self, tag: str) -> np.ndarray:
        raise NotImplementedError

    # --- rendering ------------------------------------------------------------------------------

    def render(self, idx: np.ndarray, fields: tuple[str, ...], optional: frozenset[str]) -> list[dict[str, Any]]:
        """Wire dicts for items `idx`, with keys `fields` in that order; keys in `optional` dropped when None."""
        if len(idx) == 0:
            return []
        batch = Batch(self, np.asarray(idx, dtype=np.int64))
        columns = [self._fields[f](batch) for f in fields]
        rows = [dict(zip(fields, values, strict=True)) for values in zip(*columns, strict=True)]
        drop = [f for f in fields if f in optional]
        if drop:
            for row in rows:
                for f in drop:
                    if row[f] is None:
                        del row[f]
        return rows

    def field_names(self) -> frozenset[str]:
        return frozenset(self._fields)

    # wire key -> name of the method rendering that key for a Batch (subclasses add theirs)
    FIELD_METHODS: ClassVar[dict[str, str]] = {
        "_id": "f_oid", "id": "f_id", "author": "f_author", "createdAt": "f_created",
        "lastModified": "f_modified", "likes": "f_likes", "trendingScore": "f_trending", "private": "f_false",
        "sha": "f_sha", "gated": "f_gated", "disabled": "f_disabled", "resourceGroup": "f_none",
        "usedStorage": "f_storage",
    }

    def f_oid(self, b: Batch) -> list[str]:
        raw = np.concatenate([self.created[b.idx].astype(">u4").view(np.uint8).reshape(-1, 4),
                              self.oid_low[b.idx].astype(">u8").view(np.uint8).reshape(-1, 8)], axis=1)
        return hex_rows(raw)

    def f_id(self, b: Batch) -> list[str]:
        return b.ids()

    def f_author(self, b: Batch) -> list[str]:
        return b.authors()

    def f_created(self, b: Batch) -> list[str]:
        return iso_many(self.created[b.idx])

    def f_modified(self, b: Batch) -> list[str]:
        return iso_many(self.modified[b.idx])

    def f_likes(self, b: Batch) -> list[int]:
        return b.col("likes")

    def f_trending(self, b: Batch) -> list[int]:
        return b.col("trending")

    def f_downloads(self, b: Batch) -> list[int]:
        return b.col("downloads")

    def f_downloads_all(self, b: Batch) -> list[int]:
        return b.col("downloads_all")

    def f_false(self, b: Batch) -> list[bool]:
        return [False] * len(b)

    def f_none(self, b: Batch) -> list[None]:
        return [None] * len(b)

    def f_sha(self, b: Batch) -> list[str]:
        # A pseudo-random 40-hex commit id, deterministic per (seed, kind, item, lastModified).
        state = (b.idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                 ^ self.modified[b.idx].astype(np.uint64) ^ self._sha_salt)
        words = [_splitmix(state + np.uint64(k)) for k in range(3)]
        raw = np.stack(words, axis=1).astype(">u8").view(np.uint8).reshape(-1, 24)[:, :20]
        return hex_rows(raw)

    def f_gated(self, b: Batch) -> list[bool | str]:
        return [(False, "auto", "manual")[g] for g in b.col("gated")]

    def f_disabled(self, b: Batch) -> list[bool]:
        return [bool(d) for d in b.col("disabled")]

    def f_storage(self, b: Batch) -> list[int]:
        return b.col("storage")

    # --- shared generators ----------------------------------------------------------------------

    def _counters(self, popularity: np.ndarray, zero_share: np.ndarray, *, downloads: bool = True) -> None:
        """Heavy-tailed downloads/likes/trendingScore with about `zero_share` of items at zero."""
        n, rng = self.n, self.rng
        zero = rng.random(n) < zero_share
        dl = np.floor(rng.lognormal(2.2 + popularity, 2.0, n)).astype(np.int64)
        dl[zero] = 0
        likes_raw = np.floor(rng.lognormal(np.log1p(dl) * 0.5 + popularity * 0.6 - 1.2, 1.3, n))
        likes = likes_raw.astype(np.int64)
        likes[zero & (rng.random(n) < 0.97)] = 0
        age = self.age_days.astype(np.float64)
        recent = np.clip(1.0 - age / 45.0, 0.0, 1.0)
        trending = np.floor(likes * recent * rng.random(n) * 0.8 + (likes > 500) * rng.random(n) * 3)
        self.likes = likes
        self.trending = trending.astype(np.int64)
        if downloads:
            self.downloads = dl
            months = np.maximum(age / 30.0, 0.5)
            extra = (dl * months * rng.uniform(0.3, 2.5, n)).astype(np.int64)
            ghost = zero & (rng.random(n) < 0.3)  # downloaded once, long ago
            extra[ghost] = rng.integers(1, 200, int(ghost.sum()))
            self.downloads_all = dl + extra
        # lastModified >= createdAt; most repos are edited shortly after creation, a few much later.
        span = (self.anchor - self.created).astype(np.float64)
        self.modified = self.created + (span * rng.random(n) ** 4).astype(np.int64)
