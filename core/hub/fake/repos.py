"""One kind's live repos: the immutable seeded table plus an overlay of run-time changes, and keyset listing.

Mutations never touch the table's columns. A base item that is updated, renamed
or deleted is switched off in `alive`; its current version (if any) lives in
`overlay` as a plain dict with every field. A listing page walks the table's
precomputed order from the cursor and merges in the overlay items after the
cursor, both ordered by (sort key, `_id`), so a walk sees every item that
existed throughout it exactly once, however others change meanwhile.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from core.hub.fake.table import RepoTable
from core.hub.fake.wire import (
    ALL_FIELDS,
    COUNTER_FIELDS,
    DATE_SORTS,
    OPTIONAL_FIELDS,
    SORT_FIELDS,
    iso,
    oid_hex,
    parse_iso,
)

_IMMUTABLE = frozenset(("_id", "id", "modelId", "author"))
_SORT_STATE_KEYS = {"createdAt": "createdAt", "lastModified": "lastModified", "downloads": "downloads",
                    "likes": "likes", "trendingScore": "trendingScore"}


@dataclass(frozen=True)
class Filter:
    search: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    num_parameters: tuple[int | None, int | None] | None = None
    gated: bool | None = None

    def is_empty(self) -> bool:
        return self == Filter()

    def matches(self, state: dict[str, Any]) -> bool:
        """The same filter applied to one overlay item."""
        if self.search is not None and self.search.lower() not in state["id"].lower():
            return False
        if self.author is not None and state.get("author") != self.author:
            return False
        tags = state.get("tags") or []
        for tag in self.tags:
            if tag not in tags and tag != state.get("pipeline_tag") and tag != state.get("library_name"):
                return False
        if self.pipeline_tag is not None and state.get("pipeline_tag") != self.pipeline_tag:
            return False
        if self.num_parameters is not None:
            total = (state.get("safetensors") or {}).get("total") or (state.get("gguf") or {}).get("total")
            low, high = self.num_parameters
            if not total or (low is not None and total < low) or (high is not None and total > high):
                return False
        return self.gated is None or bool(state.get("gated")) == self.gated


@dataclass
class ListQuery:
    sort: str
    desc: bool
    limit: int
    fields: tuple[str, ...]
    filter: Filter = field(default_factory=Filter)
    cursor: tuple[int, int] | None = None  # (sort key, _id as int) of the last item already served


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_after: tuple[Any, str] | None  # (sort value in wire form, _id hex) of the last item, when more follow


@dataclass
class Entry:
    state: dict[str, Any]  # every key of ALL_FIELDS (None where the item has no value)
    oid: int

    def key(self, sort: str) -> int:
        value = self.state[_SORT_STATE_KEYS[sort]]
        if sort in DATE_SORTS:
            return parse_iso(value)
        return int(value or 0)


class RepoStore:
    def __init__(self, table: RepoTable, seed: int) -> None:
        self.table = table
        self.kind = table.kind
        self.alive = np.ones(table.n, dtype=bool)
        self.overlay: dict[str, Entry] = {}
        self.redirects: dict[str, str] = {}
        self.version = 0
        self._rng = random.Random(f"{seed}:{self.kind}:overlay")
        self._masks: OrderedDict[Filter, np.ndarray] = OrderedDict()
        self._ordered: dict[tuple[str, bool], tuple[int, list[tuple[tuple[int, int], Entry]]]] = {}
        self.optional = OPTIONAL_FIELDS[self.kind]

    # --- lookups --------------------------------------------------------------------------------

    def _base_index(self, repo_id: str) -> int | None:
        i = self.table.index_of(repo_id)
        return i if i is not None and self.alive[i] else None

    def exists(self, repo_id: str) -> bool:
        return repo_id in self.overlay or self._base_index(repo_id) is not None

    def detail(self, repo_id: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
        entry = self.overlay.get(repo_id)
        if entry is not None:
            return self._project(entry.state, fields)
        i = self._base_index(repo_id)
        if i is None:
            return None
        return self.table.render(np.array([i]), fields, self.optional)[0]

    def redirect(self, repo_id: str) -> str | None:
        return self.redirects.get(repo_id)

    def ids(self) -> set[str]:
        ids = self.table.all_ids()
        live = {ids[i] for i in np.flatnonzero(self.alive).tolist()}
        live.update(self.overlay)
        return live

    def __len__(self) -> int:
        return int(self.alive.sum()) + len(self.overlay)

    def _project(self, state: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
        optional = self.optional
        return {f: state[f] for f in fields if not (f in optional and state[f] is None)}

    # --- listing --------------------------------------------------------------------------------

    def _mask(self, flt: Filter) -> np.ndarray | None:
        """Base items passing the filter (cached: the table never changes), or None for no filter."""
        if flt.is_empty():
            return None
        mask = self._masks.get(flt)
        if mask is not None:
            self._masks.move_to_end(flt)
            return mask
        table = self.table
        mask = np.ones(table.n, dtype=bool)
        if flt.search is not None:
            mask &= table.search_mask(flt.search)
        if flt.author is not None:
            mask &= table.author_mask(flt.author)
        for tag in flt.tags:
            mask &= table.tag_mask(tag)
        if flt.pipeline_tag is not None:
            mask &= table.pipeline_mask(flt.pipeline_tag)  # type: ignore[attr-defined]
        if flt.num_parameters is not None:
            mask &= table.params_mask(*flt.num_parameters)  # type: ignore[attr-defined]
        if flt.gated is not None:
            mask &= table.gated_mask(flt.gated)  # type: ignore[attr-defined]
        self._masks[flt] = mask
        while len(self._masks) > 32:
            self._masks.popitem(last=False)
        return mask

    def _overlay_ordered(self, sort: str, desc: bool) -> list[tuple[tuple[int, int], Entry]]:
        cached = self._ordered.get((sort, desc))
        if cached is not None and cached[0] == self.version:
            return cached[1]
        sign = -1 if desc else 1
        ordered = sorted(((sign * e.key(sort), e.oid), e) for e in self.overlay.values())
        self._ordered[(sort, desc)] = (self.version, ordered)
        return ordered

    def _base_start(self, query: ListQuery) -> int:
        """First position in the table's order strictly after the cursor (binary search on (key, _id))."""
        if query.cursor is None:
            return 0
        table = self.table
        value, oid = query.cursor
        sign = -1 if query.desc else 1
        target = sign * value
        after = table.first_after_oid(oid)  # items with index >= after have a larger _id
        key = table.sort_key(query.sort)
        perm = table.perm(query.sort, query.desc)
        lo, hi = 0, table.n
        while lo < hi:
            mid = (lo + hi) // 2
            i = int(perm[mid])
            k = sign * int(key[i])
            if k > target or (k == target and i >= after):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _base_candidates(self, query: ListQuery, need: int) -> np.ndarray:
        table = self.table
        if table.n == 0:
            return np.empty(0, dtype=np.int64)
        perm = table.perm(query.sort, query.desc)
        mask = self._mask(query.filter)
        pos = self._base_start(query)
        found: list[np.ndarray] = []
        total = 0
        size = max(2 * need, 2048)
        while pos < table.n and total < need:
            chunk = perm[pos:pos + size]
            keep = self.alive[chunk] if mask is None else self.alive[chunk] & mask[chunk]
            selected = chunk[keep][:need - total]
            found.append(selected)
            total += len(selected)
            pos += size
            size = min(size * 4, 1 << 21)
        return np.concatenate(found).astype(np.int64) if found else np.empty(0, dtype=np.int64)

    def page(self, query: ListQuery) -> Page:
        need = query.limit + 1  # one more than the page tells whether a next page exists
        base = self._base_candidates(query, need)
        extra: list[tuple[tuple[int, int], Entry]] = []
        if self.overlay:
            ordered = self._overlay_ordered(query.sort, query.desc)
            start = 0
            if query.cursor is not None:
                sign = -1 if query.desc else 1
                start = bisect.bisect_right(ordered, (sign * query.cursor[0], query.cursor[1]),
                                            key=lambda pair: pair[0])
            for walk_key, entry in ordered[start:]:
                if query.filter.matches(entry.state):
                    extra.append((walk_key, entry))
                    if len(extra) == need:
                        break
        table = self.table
        key = table.sort_key(query.sort) if table.n else None
        if not extra:
            more = len(base) > query.limit
            base = base[:query.limit]
            items = table.render(base, query.fields, self.optional)
            if not more or not len(base):
                return Page(items, None)
            last = int(base[-1])
            return Page(items, (self._wire_value(query.sort, int(key[last])), oid_hex(table.oid_of(last))))
        sign = -1 if query.desc else 1
        merged: list[tuple[tuple[int, int], int, Any]] = [
            ((sign * int(k), table.oid_of(i)), 0, i) for i, k in zip(base.tolist(), key[base].tolist(), strict=True)
        ] if len(base) else []
        merged.extend((walk_key, 1, entry) for walk_key, entry in extra)
        merged.sort(key=lambda row: row[0])
        more = len(merged) > query.limit
        merged = merged[:query.limit]
        base_rows = iter(table.render(np.array([ref for _, src, ref in merged if src == 0], dtype=np.int64),
                                      query.fields, self.optional))
        items = [next(base_rows) if src == 0 else self._project(ref.state, query.fields) for _, src, ref in merged]
        if not more or not merged:
            return Page(items, None)
        (walk_value, oid), _, _ = merged[-1]
        return Page(items, (self._wire_value(query.sort, sign * walk_value), oid_hex(oid)))

    @staticmethod
    def _wire_value(sort: str, value: int) -> Any:
        return iso(value) if sort in DATE_SORTS else value

    # --- mutation -------------------------------------------------------------------------------

    def _materialize(self, repo_id: str) -> Entry:
        """The overlay entry of a live repo, copying a base item out of the table on first change."""
        entry = self.overlay.get(repo_id)
        if entry is not None:
            return entry
        i = self._base_index(repo_id)
        if i is None:
            raise KeyError(f"{self.kind[:-1]} {repo_id} not found")
        # A deep copy: rendered values may be shared between items (e.g. cached `safetensors` dicts).
        state = orjson.loads(orjson.dumps(self.table.render(np.array([i]), ALL_FIELDS[self.kind], frozenset())[0]))
        entry = Entry(state=state, oid=self.table.oid_of(i))
        self.alive[i] = False
        self.overlay[repo_id] = entry
        return entry

    def _new_sha(self) -> str:
        return hashlib.sha1(str(self._rng.random()).encode()).hexdigest()

    def create(self, repo_id: str, fields: dict[str, Any], now: int) -> dict[str, Any]:
        author, slash, name = repo_id.partition("/")
        if not slash or not author or not name or "/" in name:
            raise ValueError(f"a repo id is 'author/name', got {repo_id!r}")
        if self.exists(repo_id):
            raise ValueError(f"{self.kind[:-1]} {repo_id} already exists")
        self._check_fields(fields)
        created = fields.get("createdAt", iso(now))
        created_ts = parse_iso(created)
        state = default_state(self.kind, repo_id, iso(created_ts), self._new_sha())
        state.update(fields)
        state["createdAt"] = iso(created_ts)
        state["lastModified"] = iso(parse_iso(fields["lastModified"])) if "lastModified" in fields \
            else state["createdAt"]
        if "tags" not in fields:
            state["tags"] = default_tags(self.kind, state)
        if self.kind != "spaces" and "downloadsAllTime" not in fields:
            state["downloadsAllTime"] = state.get("downloads") or 0
        if self.kind == "spaces" and "sdk" in fields and "cardData" not in fields:
            state["cardData"]["sdk"] = fields["sdk"]
        oid = (created_ts << 64) | self._rng.getrandbits(63)
        state["_id"] = oid_hex(oid)
        entry = Entry(state=state, oid=oid)
        self.overlay[repo_id] = entry
        self.redirects.pop(repo_id, None)
        self.version += 1
        return dict(state)

    def update(self, repo_id: str, fields: dict[str, Any], now: int) -> dict[str, Any]:
        self._check_fields(fields)
        if set(fields) & _IMMUTABLE:
            raise ValueError(f"cannot change {sorted(set(fields) & _IMMUTABLE)} (use rename)")
        entry = self._materialize(repo_id)
        entry.state.update(fields)
        if "createdAt" in fields:
            entry.state["createdAt"] = iso(parse_iso(fields["createdAt"]))
        if "lastModified" in fields:
            entry.state["lastModified"] = iso(parse_iso(fields["lastModified"]))
        elif not set(fields) <= COUNTER_FIELDS:
            # A content change is a commit: new lastModified and sha. Counters alone are not (a download
            # does not bump lastModified on the real Hub).
            entry.state["lastModified"] = iso(max(now, parse_iso(entry.state["createdAt"])))
            entry.state["sha"] = self._new_sha()
        self.version += 1
        return dict(entry.state)

    def delete(self, repo_id: str) -> None:
        if repo_id in self.overlay:
            del self.overlay[repo_id]
        else:
            i = self._base_index(repo_id)
            if i is None:
                raise KeyError(f"{self.kind[:-1]} {repo_id} not found")
            self.alive[i] = False
        for old in [old for old, new in self.redirects.items() if new == repo_id]:
            del self.redirects[old]
        self.version += 1

    def rename(self, old_id: str, new_id: str, now: int) -> None:
        author, slash, name = new_id.partition("/")
        if not slash or not author or not name or "/" in name:
            raise ValueError(f"a repo id is 'author/name', got {new_id!r}")
        if self.exists(new_id):
            raise ValueError(f"{self.kind[:-1]} {new_id} already exists")
        entry = self._materialize(old_id)
        del self.overlay[old_id]
        entry.state["id"] = new_id
        entry.state["author"] = author
        if "modelId" in entry.state:
            entry.state["modelId"] = new_id
        entry.state["lastModified"] = iso(max(now, parse_iso(entry.state["createdAt"])))
        self.overlay[new_id] = entry
        for old, new in list(self.redirects.items()):
            if new == old_id:
                self.redirects[old] = new_id
        self.redirects[old_id] = new_id
        self.redirects.pop(new_id, None)
        self.version += 1

    def _check_fields(self, fields: dict[str, Any]) -> None:
        unknown = set(fields) - set(ALL_FIELDS[self.kind])
        if unknown:
            raise ValueError(f"unknown {self.kind} fields: {sorted(unknown)}")
        for sort in SORT_FIELDS[self.kind]:
            if sort in fields and sort not in DATE_SORTS and not isinstance(fields[sort], int | float):
                raise ValueError(f"{sort} must be a number")


def default_state(kind: str, repo_id: str, created: str, sha: str) -> dict[str, Any]:
    """Every field of a freshly created repo, before the caller's fields are applied."""
    author, name = repo_id.split("/", 1)
    state: dict[str, Any] = dict.fromkeys(ALL_FIELDS[kind])
    state.update({
        "id": repo_id, "author": author, "private": False, "tags": [], "likes": 0, "trendingScore": 0,
        "sha": sha, "createdAt": created, "lastModified": created, "gated": False, "disabled": False,
        "siblings": [{"rfilename": ".gitattributes"}, {"rfilename": "README.md"}], "cardData": {},
        "usedStorage": 0,
    })
    if kind == "models":
        state.update({"modelId": repo_id, "downloads": 0, "downloadsAllTime": 0, "inference": "cold",
                      "config": {}, "spaces": [], "childrenModelCount": 0, "evalResults": [],
                      "inferenceProviderMapping": []})
    elif kind == "datasets":
        state.update({"downloads": 0, "downloadsAllTime": 0, "mainSize": 0,
                      "description": f"\n\t\n\t\t\n\t\tDataset Card for {name}\n\t\n\n"})
    else:
        subdomain = "".join(c if c.isalnum() else "-" for c in repo_id.lower()).strip("-")
        state.update({
            "sdk": "gradio", "subdomain": subdomain, "region": "us",
            "cardData": {"title": name, "emoji": "🚀", "colorFrom": "blue", "colorTo": "purple", "sdk": "gradio",
                         "pinned": False, "short_description": ""},
            "runtime": {"stage": "BUILDING", "hardware": {"current": None, "requested": "cpu-basic"},
                        "storage": None, "gcTimeout": 172800, "replicas": {"requested": 1}, "devMode": False,
                        "domains": [{"domain": f"{subdomain}.hf.space", "stage": "READY"}]},
        })
    return state


def default_tags(kind: str, state: dict[str, Any]) -> list[str]:
    if kind == "spaces":
        return [state.get("sdk") or "gradio", "region:us"]
    tags = [state[k] for k in ("library_name", "pipeline_tag") if state.get(k)]
    return [*tags, "region:us"]
