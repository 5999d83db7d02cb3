"""Search over the mirror: keyword (FTS5 BM25), semantic (FAISS), hybrid (reciprocal rank fusion), similar items.

Every mode returns live items only (`deleted_at IS NULL` is checked against the
kind tables at hydration, so a stale FTS or FAISS entry can never leak a deleted
item) and honours the same filters. Filters that a kind cannot satisfy (a
quantisation format for a dataset) exclude that kind.

Semantic search with selective filters (an author, a base model) would starve a
post-filtered nearest-neighbour search, so when the filters leave few candidates
they are scored exactly from their stored vectors instead.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import orjson
import structlog

from core.config import Config
from core.kinds import ALL_KINDS, Kind, doc_key, key_range, split_doc_key
from core.store import connect
from core.store.stats import collect_stats
from core.vectorindex import IndexReader, IndexStore, vector_from_blob

log = structlog.get_logger(__name__)

MODES = ("keyword", "semantic", "hybrid")
SORTS = ("relevance", "downloads", "likes", "created", "modified")
RELATIONS = ("finetune", "adapter", "merge", "quantized")
RRF_K = 60
# The `rank` config's function (migration 0002): column weights name > author > tags > body.
BM25 = "bm25(search_fts, 10.0, 5.0, 3.0, 1.0)"
PREFILTER_MAX = 5_000  # filters matching at most this many items: score them exactly
MAX_FETCH = 20_000
_QUERY_CACHE = 256
# Keyword search: BM25 ranks every match before LIMIT (and reads each term's whole doclist
# for its IDF), so it is used only when the query matches at most EXACT_MAX items.
EXACT_MAX = 1_500
# Keyword search sorted by a column: when a kind's matches are dense enough that the `needed`-th lies
# within about WALK_MAX entries of the column's index, SQLite walks that index and checks each entry
# against the matches (materialised once, ~0.2 µs a match), instead of reading the row of every match
# to sort them (~2 µs a match at 1M: 300 ms for a prefix in a fifth of the models).
WALK_MAX = 50_000  # index entries, ~60 ns each
PROBE_TERM_COST = 150.0  # asking FTS about one row, per term (~30 µs), in materialised matches (~0.2 µs)
# A walk gives up for the join (filters that few matches pass) once it has run as long as the join
# would, reading ~2 µs a match, within these bounds; a walk that succeeds costs ~1-40 ms at 1M.
JOIN_S_PER_MATCH = 2e-6
WALK_BUDGET_S = (0.005, 0.06)
_JOIN_BUDGET_MATCHES = int(WALK_BUDGET_S[1] / JOIN_S_PER_MATCH)  # matches counted to price the join
_BUDGET_CHECK_OPS = 1000  # SQLite VM instructions between two looks at the CPU clock (~20-100 µs)
NARROW_MAX = 40  # matches of an author or tag filter scored one by one (~1 ms each at 1M) rather than joined
_SELECTIVE = ("author", "tag", "base_model")  # filters that leave too few rows for a walk to find matches
# Sort column → its index's name suffix (`INDEXED BY`: the walk must read the index, never sort the table).
_SORT_INDEX = {"downloads": "downloads", "likes": "likes", "created_at": "created", "last_modified": "modified",
               "upvotes": "upvotes", "published_at": "published"}
POPULAR_WALK = 300  # larger match sets: the most popular items of each kind checked for the words …
RECENT_POOL = 150  # … and the newest FTS matches of each kind,
RECENT_SCAN = 5_000  # from one cursor over every kind while it reaches them within this many rows
SEARCH_CACHE_KIB = 16_384  # SQLite page cache of each search connection
POPULAR_TTL_S = 60.0  # a newly popular item joins the popular candidates within this time
MAX_EXPANSIONS = 65  # a prefix with more indexed terms than this stays an FTS prefix query (see _match)
RANK_EXPANSIONS = 17  # … and when BM25 ranks the matches, one with more than this
VOCAB_TTL_S = 600.0
COUNT_TTL_S = 30.0
_COUNT_CACHE = 4096
_VOCAB_CACHE = 4096
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_PARAMS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmbt]?)\s*$", re.IGNORECASE)
_PARAM_UNITS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}


@dataclass
class SearchFilters:
    kind: Kind | None = None
    author: str | None = None
    tag: str | None = None
    pipeline_tag: str | None = None
    library: str | None = None
    license: str | None = None
    min_downloads: int | None = None
    base_model: str | None = None
    relation: str | None = None
    quant_format: str | None = None
    min_params: int | None = None
    max_params: int | None = None

    def beyond_kind(self) -> bool:
        """Whether anything but the kind narrows the results."""
        return any(v is not None for k, v in asdict(self).items() if k != "kind")


@dataclass
class SearchHit:
    id: str
    kind: Kind
    score: float
    pk: int
    author: str | None = None
    downloads: int | None = None
    likes: int | None = None
    pipeline_tag: str | None = None
    library_name: str | None = None
    license: str | None = None
    base_model: str | None = None
    base_relation: str | None = None
    num_parameters: int | None = None
    quant_format: str | None = None
    created_at: str | None = None
    last_modified: str | None = None
    title: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def key(self) -> int:
        return doc_key(self.kind, self.pk)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["score"] = round(self.score, 6)
        return data


# -- pure helpers ----------------------------------------------------------------------


def parse_param_count(text: str | int) -> int:
    """`7B` → 7_000_000_000, `1.5b`, `500M`, `7e9`, `7000000000`; ValueError otherwise."""
    if isinstance(text, int):
        return text
    match = _PARAMS.match(text)
    if match:
        return int(float(match.group(1)) * _PARAM_UNITS[match.group(2).lower()])
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a parameter count: {text!r} (try 7B, 500M, 1.5B)") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"not a parameter count: {text!r}")
    return int(value)


def query_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def fts_query(text: str, *, any_term: bool = False) -> str | None:
    """An FTS5 query that cannot be a syntax error: every token quoted, prefix-matched when ≥ 2 chars.

    Tokens are split the way the `unicode61` tokenizer splits, so `Llama-2-7B` finds
    `meta-llama/Llama-2-7b-hf`.
    """
    tokens = list(dict.fromkeys(query_tokens(text)))
    if not tokens:
        return None
    terms = [f'"{t}"*' if len(t) >= 2 else f'"{t}"' for t in tokens]
    return (" OR " if any_term else " AND ").join(terms)


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion of ranked key lists."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank + 1)
    return fused


_MODEL_ONLY = ("library", "base_model", "relation", "quant_format", "min_params", "max_params")
_REPO_ONLY = ("pipeline_tag", "license", "min_downloads")


def filter_clauses(kind: Kind, filters: SearchFilters | None, alias: str = "t") -> tuple[str, list[Any]] | None:
    """SQL (`AND …`) and parameters restricting rows of `kind`; None when the filters exclude the kind."""
    f = filters or SearchFilters()
    if f.kind is not None and f.kind is not kind:
        return None
    given = {name for name, value in asdict(f).items() if value is not None}
    if kind is not Kind.MODEL and given & set(_MODEL_ONLY):
        return None
    if kind is Kind.PAPER and given & set(_REPO_ONLY):
        return None
    sql: list[str] = []
    params: list[Any] = []
    a = alias
    if f.author:
        if kind is Kind.PAPER:
            sql.append(f"(EXISTS (SELECT 1 FROM json_each({a}.authors) WHERE value = ? COLLATE NOCASE) "
                       f"OR {a}.submitted_by = ? COLLATE NOCASE)")
            params += [f.author, f.author]
        else:
            sql.append(f"{a}.author = ? COLLATE NOCASE")
            params.append(f.author)
    if f.tag:
        column = "ai_keywords" if kind is Kind.PAPER else "tags"
        sql.append(f"EXISTS (SELECT 1 FROM json_each({a}.{column}) WHERE value = ? COLLATE NOCASE)")
        params.append(f.tag)
    if f.pipeline_tag:
        sql.append(f"{a}.pipeline_tag = ?")
        params.append(f.pipeline_tag)
    if f.library:
        sql.append(f"{a}.library_name = ? COLLATE NOCASE")
        params.append(f.library)
    if f.license:
        sql.append(f"{a}.license = ? COLLATE NOCASE")
        params.append(f.license)
    if f.min_downloads is not None:
        sql.append(f"{a}.downloads >= ?")
        params.append(f.min_downloads)
    if f.base_model or f.relation:
        conditions, lineage_params = [], []
        if f.base_model:
            conditions.append("l.base_id = ? COLLATE NOCASE")
            lineage_params.append(f.base_model)
        if f.relation:
            conditions.append("l.relation = ?")
            lineage_params.append(f.relation)
        sql.append(f"EXISTS (SELECT 1 FROM lineage l WHERE l.child_pk = {a}.pk AND {' AND '.join(conditions)})")
        params += lineage_params
    if f.quant_format:
        sql.append(f"{a}.quant_format = ?")
        params.append(f.quant_format.lower())
    if f.min_params is not None:
        sql.append(f"{a}.num_parameters >= ?")
        params.append(f.min_params)
    if f.max_params is not None:
        sql.append(f"{a}.num_parameters <= ?")
        params.append(f.max_params)
    return "".join(f" AND {clause}" for clause in sql), params



def _plain(match: str) -> bool:
    """Whether an FTS expression is only whole terms (no prefix, no OR of expansions).

    Each FTS cursor opened on a prefix term merges the doclists of every term with that
    prefix first, and one on an OR sets up each of its terms: ~10 ms a cursor at 1M items,
    where the narrowing's per-key scores open one cursor per key.
    """
    return "*" not in match and " OR " not in match


def _within(conn: sqlite3.Connection, seconds: float, sql: str, params: Sequence[Any]) -> list[sqlite3.Row] | None:
    """The query's rows, or None when it uses more than `seconds` of CPU (interrupted through the progress
    handler). CPU, not wall time: on a busy machine a walk waiting for a core is no reason to give up."""
    deadline = time.thread_time() + seconds
    conn.set_progress_handler(lambda: time.thread_time() > deadline, _BUDGET_CHECK_OPS)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if str(exc) == "interrupted":
            return None
        raise
    finally:
        conn.set_progress_handler(None, 0)


def _probe_cost(match: str) -> float:
    """What asking FTS whether one row matches costs, in materialised matches (~0.2 µs each; see
    `SearchEngine._fts_walk`): ~30 µs a term, so 150 a term. 0 when a prefix longer than the
    3-character prefix index would merge the doclists of all its terms for every row (~50 ms)."""
    terms = re.findall(r'"([^"]*)"(\*?)', match)
    if any(star and len(term) > 3 for term, star in terms):
        return 0.0
    return PROBE_TERM_COST * len(terms)


def _narrowing(kind: Kind, filters: SearchFilters | None) -> str | None:
    """An FTS expression that every row of `kind` passing the author and tag filters matches, or None.

    A repo's author is indexed as is (a paper's filter also accepts its submitter: no narrowing);
    tags as their JSON text, whose escapes (quote, backslash, control characters) would split words.
    """
    if filters is None:
        return None
    phrases = []
    if filters.author and kind is not Kind.PAPER and query_tokens(filters.author):
        phrases.append(("author", filters.author))
    tag = filters.tag
    if tag and query_tokens(tag) and not any(c in tag for c in '"\\') and all(ord(c) >= 0x20 for c in tag):
        phrases.append(("tags", tag))
    quoted = [(column, text.replace('"', '""')) for column, text in phrases]
    return " AND ".join(f'{column} : "{text}"' for column, text in quoted) or None


def kinds_with_filters(filters: SearchFilters | None,
                       kinds: Iterable[Kind] = ALL_KINDS) -> Iterator[tuple[Kind, str, list[Any]]]:
    """Each kind the filters leave in play, with its SQL restriction and parameters."""
    for kind in kinds:
        clauses = filter_clauses(kind, filters)
        if clauses is not None:
            yield kind, *clauses

def check_filters(filters: SearchFilters | None) -> None:
    if filters is None:
        return
    if filters.relation is not None and filters.relation not in RELATIONS:
        raise ValueError(f"unknown relation {filters.relation!r} (expected one of: {', '.join(RELATIONS)})")
    if filters.min_params is not None and filters.max_params is not None and filters.min_params > filters.max_params:
        raise ValueError("min_params is above max_params")


_REPO_COLUMNS = ("pk, id, author, downloads, likes, pipeline_tag, library_name, license, base_model, base_relation, "
                 "num_parameters, quant_format, created_at, last_modified, description, tags, sdk")
_PAPER_COLUMNS = "pk, id, title, summary, authors, upvotes, published_at"
_SORT_SQL = {
    "downloads": ("downloads", "upvotes"),
    "likes": ("likes", "upvotes"),
    "created": ("created_at", "published_at"),
    "modified": ("last_modified", "published_at"),
}


_POPULARITY = {Kind.MODEL: "downloads", Kind.DATASET: "downloads", Kind.SPACE: "likes", Kind.PAPER: "upvotes"}
_REPO_TEXT = "t.id || ' ' || coalesce(t.author, '') || ' ' || t.tags || ' ' || coalesce(t.description, '')"
_PAPER_TEXT = "t.title || ' ' || t.authors || ' ' || t.ai_keywords || ' ' || coalesce(t.summary, '')"
_SEPARATORS = "/-_.:,\"[]()"


def _normalised(expr: str) -> str:
    """SQL: ` ` + lower-cased text with separators as spaces, so `instr(x, ' ' || word)` is a word-prefix test."""
    for char in _SEPARATORS:
        expr = f"replace({expr}, '{char}', ' ')"
    return f"(' ' || lower({expr}))"


# `_normalised` in Python, ~3 times cheaper than SQLite's nested replace(): SQLite's lower() folds ASCII only.
_NORMALISE = str.maketrans({**{c: " " for c in _SEPARATORS}, **{chr(c): chr(c + 32) for c in range(65, 91)}})


def _normalised_text(text: str | None) -> str:
    return " " + (text or "").translate(_NORMALISE)


def _columns(kind: Kind, alias: str = "t") -> str:
    names = _PAPER_COLUMNS if kind is Kind.PAPER else _REPO_COLUMNS
    return ", ".join(f"{alias}.{name.strip()}" for name in names.split(","))


def _sort_column(kind: Kind, sort: str) -> str:
    repo, paper = _SORT_SQL[sort]
    return paper if kind is Kind.PAPER else repo


def hit_from_row(kind: Kind, row: sqlite3.Row, score: float) -> SearchHit:
    if kind is Kind.PAPER:
        authors = orjson.loads(row["authors"] or "[]")
        summary = row["summary"] or ""
        return SearchHit(id=row["id"], kind=kind, score=score, pk=row["pk"], author=authors[0] if authors else None,
                         likes=row["upvotes"], created_at=row["published_at"], last_modified=row["published_at"],
                         title=row["title"], description=summary[:300] or None)
    return SearchHit(
        id=row["id"], kind=kind, score=score, pk=row["pk"], author=row["author"], downloads=row["downloads"],
        likes=row["likes"], pipeline_tag=row["pipeline_tag"], library_name=row["library_name"],
        license=row["license"], base_model=row["base_model"], base_relation=row["base_relation"],
        num_parameters=row["num_parameters"], quant_format=row["quant_format"], created_at=row["created_at"],
        last_modified=row["last_modified"], description=(row["description"] or "")[:300] or None,
        tags=orjson.loads(row["tags"] or "[]"),
    )


def sort_key(hit: SearchHit, sort: str) -> Any:
    if sort == "downloads":
        return hit.downloads if hit.downloads is not None else (hit.likes or 0)
    if sort == "likes":
        return hit.likes or 0
    if sort == "created":
        return hit.created_at or ""
    return hit.last_modified or ""


K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class _Recent(Generic[K, V]):
    """At most `size` entries, the oldest written dropped first, each forgotten `ttl_s` after it was
    written. Shared by the search threads."""

    def __init__(self, size: int, ttl_s: float = math.inf) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default: D) -> V | D:
        item = self._items.get(key)
        return item[1] if item is not None and time.monotonic() - item[0] < self._ttl_s else default

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_MISSING = object()


class SearchEngine:
    """Search over one data directory. Safe to call from several threads (one SQLite connection per thread)."""

    def __init__(self, config: Config, *, model: Any = None) -> None:
        self.config = config
        self._model = model
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._query_vectors: _Recent[str, np.ndarray] = _Recent(_QUERY_CACHE)
        self._vocab: _Recent[str, list[str] | None] = _Recent(_VOCAB_CACHE, VOCAB_TTL_S)
        self._popular_cache: _Recent[Kind, list[tuple[int, str]]] = _Recent(len(ALL_KINDS), POPULAR_TTL_S)
        self._counts: _Recent[tuple[str, int, int], tuple[int, int]] = _Recent(_COUNT_CACHE, COUNT_TTL_S)
        from core.embedder import index_dir

        self.index = IndexReader(IndexStore(index_dir(config)))

    # -- resources ------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.config.db_path)
            # Per thread, so it multiplies: 16 MB instead of the default 64 kept keyword latency at 1M
            # items (p50/p95 CPU 6.1/11.8 ms against 5.8/11.6, within the noise) and saves 48 MB a thread.
            conn.execute(f"PRAGMA cache_size = -{SEARCH_CACHE_KIB}")
            # Term lookups for prefix expansion (a temp table: nothing is written to the database).
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_vocab "
                         "USING fts5vocab(main, search_fts, 'row')")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    # Not the worker's sentence-transformers: torch alone would double this process's RSS.
                    from core.query_encoder import load_query_encoder

                    self._model = load_query_encoder(self.config.embedding_model, self.config.embedding_precision)
        return self._model

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def embed_query(self, text: str) -> np.ndarray:
        cached = self._query_vectors.get(text, None)
        if cached is not None:
            return cached
        from core.embedder import encode

        vector = encode(self.model, [text], 1)[0]
        self._query_vectors.put(text, vector)
        return vector

    def index_status(self) -> dict[str, Any]:
        loaded = self.index.get()
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE parked = 0), count(*) FILTER (WHERE parked = 1) FROM embed_jobs"
        ).fetchone()
        embedded = self.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        status: dict[str, Any] = {"embedded": embedded, "pending": row[0], "parked": row[1], "index": None}
        if loaded is not None:
            meta = loaded.meta
            status["index"] = {"type": meta.index_type, "count": meta.count, "model": meta.model,
                               "updated_at": meta.updated_at, "file": meta.file}
        return status

    def stats(self) -> dict[str, Any]:
        return collect_stats(self.conn) | {"search_index": self.index_status()}

    def resolve_kind(self, item_id: str) -> Kind | None:
        """The kind of a live item with this id (models first), or None."""
        for kind in ALL_KINDS:
            if self.conn.execute(f"SELECT 1 FROM {kind.table} WHERE id = ? AND deleted_at IS NULL",
                                 (item_id,)).fetchone():
                return kind
        return None

    # -- public search --------------------------------------------------------------------

    def search(self, query: str, filters: SearchFilters | None = None, *, mode: str = "keyword",
               sort: str = "relevance", limit: int = 20, offset: int = 0) -> list[SearchHit]:
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r} (expected one of: {', '.join(MODES)})")
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r} (expected one of: {', '.join(SORTS)})")
        if limit < 1 or offset < 0:
            raise ValueError("limit must be ≥ 1 and offset ≥ 0")
        check_filters(filters)
        needed = offset + limit
        query = query or ""
        if not query.strip():
            hits = self._browse(filters, "downloads" if sort == "relevance" else sort, needed)
            return hits[offset:needed]
        if mode == "keyword":
            hits = self._keyword(query, filters, needed, sort)
        else:
            pool = needed if sort == "relevance" else max(needed, 100)
            hits = self._semantic(query, filters, pool) if mode == "semantic" else self._hybrid(query, filters, pool)
            if sort != "relevance":
                hits.sort(key=lambda h: sort_key(h, sort), reverse=True)
        return hits[offset:needed]

    def similar(self, kind: Kind, item_id: str, *, limit: int = 10,
                filters: SearchFilters | None = None) -> list[SearchHit]:
        """Nearest neighbours of an item; same kind unless `filters` say otherwise."""
        check_filters(filters)
        row = self.conn.execute(f"SELECT pk, raw FROM {kind.table} WHERE id = ? AND deleted_at IS NULL",
                                (item_id,)).fetchone()
        if row is None:
            raise LookupError(f"no {kind.value} {item_id!r} in the mirror")
        key = doc_key(kind, row["pk"])
        stored = self.conn.execute("SELECT vector FROM embeddings WHERE doc_key = ?", (key,)).fetchone()
        if stored is not None:
            vector = vector_from_blob(stored[0])
        else:
            from core.embedder import record_from_row
            from core.itemtext import item_text

            vector = self.embed_query(item_text(record_from_row(kind, row["raw"])))
        filters = filters if filters is not None else SearchFilters(kind=kind)
        hits = self._nearest(vector, filters, limit + 1)
        return [h for h in hits if h.key != key][:limit]

    # -- keyword -------------------------------------------------------------------------

    def _keyword(self, query: str, filters: SearchFilters | None, needed: int, sort: str,
                 *, loose: bool = True) -> list[SearchHit]:
        tokens = list(dict.fromkeys(query_tokens(query)))
        if not tokens:
            return self._browse(filters, "downloads" if sort == "relevance" else sort, needed) if loose else []
        hits = self._fts(tokens, filters, needed, sort)
        if loose and len(hits) < needed and len(tokens) > 1:
            # Not every word matched anywhere (a typo, an extra word): fall back to any word,
            # ranked after the items that matched them all.
            seen = {h.key for h in hits}
            hits += [h for h in self._fts(tokens, filters, needed, sort, any_term=True) if h.key not in seen]
        return hits[:needed]

    def _match(self, tokens: list[str], any_term: bool, *, or_max: int = MAX_EXPANSIONS) -> str:
        """The FTS5 expression; a prefix that expands to at most `or_max` terms becomes an OR of them.

        FTS5 evaluates `"tok"*` (longer than the 3-character prefix index) by merging the
        doclists of every term with that prefix into memory before it can skip anywhere,
        which costs ~30 ms for a term in half the corpus. An OR of the expansions is walked
        lazily instead, and skips: at 1M, up to 65 terms (MAX_EXPANSIONS) brought two-word
        searches with `instruct` or `image` (18 terms each) from p99 63 to 46 ms of CPU.
        BM25 is another matter: it reads every phrase's whole doclist for its IDF and scores
        each phrase of each match, so an OR of 65 terms ranks slower than their prefix
        (RANK_EXPANSIONS is the OR's size for ranking).
        """
        terms = []
        for token in tokens:
            expansions = self._expansions(token) if len(token) > 3 else None
            if expansions is None or len(expansions) > or_max:
                terms.append(f'"{token}"*' if len(token) >= 2 else f'"{token}"')
            elif len(expansions) == 1:
                terms.append(f'"{expansions[0]}"')
            else:
                terms.append("(" + " OR ".join(f'"{t}"' for t in expansions) + ")")
        return (" OR " if any_term else " AND ").join(terms)

    def _expansions(self, token: str) -> list[str] | None:
        """Indexed terms that start with `token` (itself first), or None when there are MAX_EXPANSIONS or more.

        Cached for VOCAB_TTL_S: a term that first appears meanwhile is found by its exact
        spelling at once and by its prefix a little later.
        """
        cached = self._vocab.get(token, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        upper = token[:-1] + chr(ord(token[-1]) + 1)
        # Strictly above the token itself: fts5vocab counts each term's documents as it
        # goes, and the token's own (possibly huge) doclist is not needed to know it exists.
        longer = [r[0] for r in self.conn.execute("SELECT term FROM search_vocab WHERE term > ? AND term < ? LIMIT ?",
                                                  (token, upper, MAX_EXPANSIONS))]
        expansions = None if len(longer) >= MAX_EXPANSIONS else [token, *longer]
        self._vocab.put(token, expansions)
        return expansions

    def _fts(self, tokens: list[str], filters: SearchFilters | None, needed: int, sort: str,
             *, any_term: bool = False) -> list[SearchHit]:
        """BM25 over every match when there are at most EXACT_MAX of them, else a bounded candidate set."""
        match = self._match(tokens, any_term)
        filtered = filters is not None and filters.beyond_kind()
        if sort != "relevance":
            return self._fts_joined(match, filters, needed, sort)
        if filtered and any(_narrowing(k, filters) for k in ALL_KINDS):
            return self._fts_joined(self._match(tokens, any_term, or_max=RANK_EXPANSIONS), filters, needed, sort)
        kinds = [kind for kind in ALL_KINDS if filter_clauses(kind, filters) is not None]
        if not kinds:
            return []
        lo, hi = (key_range(kinds[0])[0], key_range(kinds[-1])[1]) if len(kinds) == 1 else (0, 1 << 62)
        try:
            if self._few_matches(match, tokens, any_term, lo, hi):
                # Filters: BM25 scores every match in the join anyway, and there are few.
                ranked = self._match(tokens, any_term, or_max=RANK_EXPANSIONS)
                return self._fts_joined(ranked, filters, needed, sort) if filtered else \
                    self._fts_ranked(ranked, lo, hi, filters, needed)
            return self._fts_large(match, tokens, any_term, filters, needed)
        except sqlite3.OperationalError as exc:
            # Quoting makes syntax errors impossible; anything else is logged, never raised at the user.
            log.warning("fts_query_failed", match=match, error=str(exc))
            return []

    def _few_matches(self, match: str, tokens: list[str], any_term: bool, lo: int, hi: int) -> bool:
        """Whether `match` has at most EXACT_MAX matches in lo..hi (BM25 can rank them all in time).

        Each word's count is cached (`_count`), and often settles it: all the words match at most as
        many rows as the rarest, any of them at least as many as the commonest.
        """
        if len(tokens) > 1:
            counts = [self._count(self._match([token], False), lo, hi, EXACT_MAX + 1) for token in tokens]
            if any_term and max(counts) > EXACT_MAX:
                return False
            if not any_term and min(counts) <= EXACT_MAX:
                return True
        return self._count(match, lo, hi, EXACT_MAX + 1) <= EXACT_MAX

    def _count(self, match: str, lo: int, hi: int, cap: int) -> int:
        """min(cap, matches of `match` among the rowids lo..hi).

        Cached for COUNT_TTL_S: a count only chooses how to search (BM25 or candidates, walk or join),
        never what is found, and counting a prefix of many terms costs ~10 ms at 1M.
        """
        key = (match, lo, hi)
        cached = self._counts.get(key, None)
        if cached is not None:
            value, counted_to = cached
            if value < counted_to or cap <= counted_to:  # exact, or counted at least as far
                return min(value, cap)
        value = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ? "
            "LIMIT ?)", (match, lo, hi, cap)).fetchone()[0]
        self._counts.put(key, (value, cap))
        return value

    def _fts_ranked(self, match: str, lo: int, hi: int, filters: SearchFilters | None,
                    needed: int) -> list[SearchHit]:
        """Exact BM25 over the FTS index alone; rows joined after.

        `bm25()` with the `rank` config's weights, not `ORDER BY rank`: FTS5's own rank-sorted cursor
        gives the same scores in the same order for ~40% more CPU (a join, `_fts_join`, is another
        matter: there the rank-sorted cursor lets SQLite stop at the LIMIT-th row that passes).
        """
        limit = needed * 2 + 20
        while True:
            scored = [(key, -score) for key, score in self.conn.execute(
                f"SELECT rowid, {BM25} FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ? "
                "ORDER BY 2, rowid LIMIT ?", (match, lo, hi, limit))]
            hits = self._hydrate(scored, filters)
            # Deleted items still in the index were dropped: ask for more.
            if len(hits) >= needed or len(scored) < limit:
                return hits[:needed]
            limit *= 4

    def _fts_large(self, match: str, tokens: list[str], any_term: bool, filters: SearchFilters | None,
                   needed: int) -> list[SearchHit]:
        """More matches than BM25 can rank in time (it scores every match, and reads every term's
        whole doclist for its IDF, which is ~0 anyway for a term in a large share of the corpus).

        Candidates per kind: the most popular matches and the RECENT_POOL newest matches from FTS (both
        bounded, whatever the match count). Ranked by the share of the words found in the name, then by
        popularity, as the Hub itself ranks such queries. Only the `needed` best are read in full.
        The most popular matches are sought among the POPULAR_WALK most popular items (cached with their
        text). With filters beyond the kind that fewer than `needed` candidates pass, they are found by
        walking the popularity index instead (`_fts_walk`), or where the walk gives up by the join's
        BM25 best (a join ranking every match cost 100-450 ms for a common word with a pipeline tag at 1M).
        """
        required = 1 if any_term else len(tokens)
        words = [" " + t for t in tokens]
        filtered = filters is not None and filters.beyond_kind()
        scored: list[tuple[int, float]] = []
        in_play = list(kinds_with_filters(filters))
        recent = self._recent(match, [kind for kind, _, _ in in_play])
        for kind, where, params in in_play:
            pool = {pk for pk, text in self._popular(kind) if sum(w in text for w in words) >= required}
            candidates = self._large_candidates(kind, words, pool.union(recent[kind]), where, params)
            if filtered and len(candidates) < needed:
                popularity = "likes" if _POPULARITY[kind] == "likes" else "downloads"
                best = self._fts_walk(kind, match, filters, where, params, needed, popularity)
                if best is None:
                    best = self._fts_join(kind, match, where, params, needed, "relevance")
                candidates = self._large_candidates(kind, words, {h.pk for h in best}.union(recent[kind]),
                                                    where, params)
            candidates.sort(key=lambda c: (c[0], c[1] is not None, c[1] or 0), reverse=True)
            scored += [(key_range(kind)[0] | pk, hits / len(tokens) + math.log10(1 + (pop or 0)) / 10)
                       for hits, pop, pk in candidates[:needed]]
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return self._hydrate(scored[:needed], filters)

    def _recent(self, match: str, kinds: list[Kind]) -> dict[Kind, list[int]]:
        """The pks of the RECENT_POOL newest matches of each kind (highest rowids: the latest crawled).

        One FTS cursor, read newest first, serves every kind it reaches within RECENT_SCAN rows: a
        prefix of many terms merges all their doclists for each cursor (~11 ms for `quant*` at 1M),
        whatever its rowid range, so one cursor per kind cost four merges. A kind the cursor did not
        get through in time has its own.
        """
        recent: dict[Kind, list[int]] = {kind: [] for kind in kinds}
        if not kinds:
            return recent
        done: set[Kind] = set()
        lowest = min(key_range(kind)[0] for kind in kinds)
        cursor = self.conn.execute(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ? ORDER BY rowid DESC",
            (match, lowest, max(key_range(kind)[1] for kind in kinds)))
        read = 0
        while len(done) < len(kinds) and read < RECENT_SCAN:
            rows = cursor.fetchmany(500)
            if not rows:
                done.update(kinds)  # every match read
                break
            read += len(rows)
            current: Kind | None = None
            for (key,) in rows:
                kind, pk = split_doc_key(key)
                if kind is not current:  # rowids descend: the kinds above this one are behind the cursor
                    done.update(k for k in kinds if k.code > kind.code)
                    current = kind
                pool = recent.get(kind)
                if pool is not None and kind not in done:
                    pool.append(pk)
                    if len(pool) == RECENT_POOL:
                        done.add(kind)
        cursor.close()
        for kind in kinds:
            if kind not in done:
                lo, hi = key_range(kind)
                recent[kind] = [key - lo for (key,) in self.conn.execute(
                    "SELECT rowid FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ? "
                    "ORDER BY rowid DESC LIMIT ?", (match, lo, hi, RECENT_POOL))]
        return recent

    def _large_candidates(self, kind: Kind, words: list[str], pks: set[int], where: str,
                          params: list[Any]) -> list[tuple[int, int | None, int]]:
        """(words found in the name, popularity, pk) of the items `pks` that are live and pass the filters."""
        name = "t.title" if kind is Kind.PAPER else "t.id"
        sql = (
            # NOT INDEXED: rowid lookups, never a scan of an index that a filter's column leads.
            f"SELECT t.pk, {name} AS name, t.{_POPULARITY[kind]} AS popularity FROM {kind.table} t NOT INDEXED "
            f"WHERE t.pk IN (SELECT value FROM json_each(?)) AND t.deleted_at IS NULL{where}"
        )
        return [(sum(w in _normalised_text(row[1]) for w in words), row[2], row[0])
                for row in self.conn.execute(sql, (orjson.dumps(sorted(pks)).decode(), *params))]

    def _popular(self, kind: Kind) -> list[tuple[int, str]]:
        """The POPULAR_WALK most popular items of `kind` (deleted ones too: hydration drops them) with
        their normalised text; cached for POPULAR_TTL_S, since normalising the text is most of the cost."""
        cached = self._popular_cache.get(kind, None)
        if cached is not None:
            return cached
        text = _PAPER_TEXT if kind is Kind.PAPER else _REPO_TEXT
        rows = [(r[0], r[1]) for r in self.conn.execute(
            f"SELECT t.pk, {_normalised(text)} FROM {kind.table} t "
            f"ORDER BY t.{_POPULARITY[kind]} DESC LIMIT {POPULAR_WALK}") if r[1] is not None]
        self._popular_cache.put(kind, rows)
        return rows

    def _fts_joined(self, match: str, filters: SearchFilters | None, needed: int, sort: str) -> list[SearchHit]:
        """Filters beyond the kind, or a sort other than relevance: the FTS matches joined to their rows.

        The join reads the row of every match before the LIMIT (~100-300 ms for a common word at 1M),
        so two bounded ways come first, each giving exactly the join's results in the join's order:
        author and tag filters narrowed by FTS (`_fts_narrowed`), and for a sort by a column a walk of
        that column's index (`_fts_walk`). Relevance with broad filters stays a join: BM25 must
        score every match anyway, and the join stops reading rows once it has `needed`.
        """
        ranked: list[tuple[Any, SearchHit]] = []  # per kind, in kind order: (sort value, hit)
        for kind, where, params in kinds_with_filters(filters):
            try:
                hits = self._fts_narrowed(kind, match, filters, where, params, sort)
                if hits is None and sort != "relevance":
                    hits = self._fts_walk(kind, match, filters, where, params, needed, sort)
                if hits is None:
                    hits = self._fts_join(kind, match, where, params, needed, sort)
            except sqlite3.OperationalError as exc:
                # Quoting makes syntax errors impossible; anything else is logged, never raised at the user.
                log.warning("fts_query_failed", match=match, error=str(exc))
                continue
            ranked += [(h.score if sort == "relevance" else sort_key(h, sort), h) for h in hits[:needed]]
        default = "" if sort in ("created", "modified") else 0
        # Stable, as the join results always were: equal values keep kind order, then each kind's order.
        ranked.sort(key=lambda r: r[0] if r[0] is not None else default, reverse=True)
        return [hit for _, hit in ranked[:needed]]

    def _fts_join(self, kind: Kind, match: str, where: str, params: list[Any], needed: int,
                  sort: str) -> list[SearchHit]:
        lo, hi = key_range(kind)
        # Equal values newest pk first, as the column's index (and so `_fts_walk`) lists them.
        order = "f.rank" if sort == "relevance" else f"t.{_sort_column(kind, sort)} DESC, t.pk DESC"
        # BM25 only where it orders the results: it reads each term's whole doclist for its IDF.
        score = "-f.rank" if sort == "relevance" else "0.0"
        sql = (f"SELECT {_columns(kind)}, {score} AS score FROM search_fts f JOIN {kind.table} t "
               f"ON t.pk = f.rowid - {lo} WHERE search_fts MATCH ? AND f.rowid BETWEEN {lo} AND {hi} "
               f"AND t.deleted_at IS NULL{where} ORDER BY {order} LIMIT ?")
        return [hit_from_row(kind, row, float(row["score"]))
                for row in self.conn.execute(sql, [match, *params, needed])]

    def _fts_narrowed(self, kind: Kind, match: str, filters: SearchFilters | None, where: str,
                      params: list[Any], sort: str) -> list[SearchHit] | None:
        """Every match passing an author or tag filter, in the join's order; None when the join must answer.

        The join reads the row of every match to compare its author or tags (~200 ms for a common
        word at 1M): FTS first narrows the matches to those whose indexed author or tags contain the
        filter's words as a phrase (a superset: values equal up to ASCII case tokenise alike), and
        only those rows are read. FTS is asked about them one key at a time (and for a relevance
        sort recomputes the IDF each time), hence NARROW_MAX.
        """
        narrowing = _narrowing(kind, filters)
        if narrowing is None:
            return None
        lo, hi = key_range(kind)
        keys = [r[0] for r in self.conn.execute(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ? LIMIT ?",
            (f"({match}) AND {narrowing}", lo, hi, NARROW_MAX + 1))]
        if len(keys) > (NARROW_MAX if _plain(match) else NARROW_MAX // 8):
            return None
        rows = {lo | row["pk"]: row for row in self.conn.execute(
            f"SELECT {_columns(kind)} FROM {kind.table} t WHERE t.pk IN ({','.join('?' * len(keys))}) "
            f"AND t.deleted_at IS NULL{where}", [*(key - lo for key in keys), *params])} if keys else {}
        if not rows:
            return []
        # Which of them really match (narrowing gave a superset), with BM25 where it orders them.
        scores = {key: score for key, score in self.conn.execute(
            f"SELECT rowid, {'-rank' if sort == 'relevance' else '0.0'} FROM search_fts WHERE search_fts MATCH ? "
            f"AND rowid IN ({','.join('?' * len(rows))})", [match, *rows])}
        # Key order first: the join lists equal ranks in FTS (rowid) order.
        hits = [hit_from_row(kind, rows[key], scores[key]) for key in sorted(rows) if key in scores]
        if sort == "relevance":
            hits.sort(key=lambda h: h.score, reverse=True)
        else:
            column = _sort_column(kind, sort)
            # SQLite's DESC: NULLs last; equal values newest pk first, as in the column's index.
            hits.sort(key=lambda h: (rows[h.key][column] is not None,
                                     rows[h.key][column] if rows[h.key][column] is not None else 0, h.pk),
                      reverse=True)
        return hits

    def _fts_walk(self, kind: Kind, match: str, filters: SearchFilters | None, where: str, params: list[Any],
                  needed: int, sort: str) -> list[SearchHit] | None:
        """The join's results, found by walking the sort column's index from the top and keeping the
        entries that match; None when the join is cheaper (matches too sparse for the `needed`-th to lie
        within ~WALK_MAX entries) or selective filters would make the walk long.

        Results are in index order (value descending, then pk descending), so the walk stops at the
        `needed`-th match. Each entry is checked against the matches materialised once (~0.2 µs a
        match), or, when matches are so dense that few entries are walked, by asking FTS about that key
        alone (`_probe_cost`). Filters that pass a small share of the matches lengthen the walk in
        proportion: past what the join would cost (`WALK_BUDGET_S`) it gives up (None), and the join
        answers.
        """
        if filters is not None and any(getattr(filters, f) for f in _SELECTIVE):
            return None
        lo, hi = key_range(kind)
        column = _sort_column(kind, sort)
        index = f"{kind.table}_{_SORT_INDEX[column]}"
        if filters is not None and filters.pipeline_tag and column == "downloads" and kind is not Kind.PAPER:
            # Only the entries that pass the filter (m0010: NOCASE, so that nothing else picks the index).
            index = f"{kind.table}_pipeline_downloads"
            where, params = f" AND t.pipeline_tag = ? COLLATE NOCASE{where}", [filters.pipeline_tag, *params]
        rows = self.conn.execute(f"SELECT max(pk) FROM {kind.table}").fetchone()[0] or 0
        dense = needed * rows // WALK_MAX + 1  # at least this many matches: the walk is the cheaper way
        # Probing costs ~walked × probe_cost and walked ≈ needed × rows / matches; materialising costs
        # ~matches: probing wins past the square root of their product. Not with filters: how few of
        # the matches pass them (a pipeline tag on none of a word's 50,000 matches) is unknown, and a
        # probe costs 50 times a materialised match.
        probe_cost = 0.0 if filters is not None and filters.beyond_kind() else _probe_cost(match)
        probe_from = math.isqrt(int(needed * rows * probe_cost)) if probe_cost else None
        count = self._count(match, lo, hi, max(dense, probe_from or 0, _JOIN_BUDGET_MATCHES))
        if count < dense:
            return None
        member = (f"EXISTS (SELECT 1 FROM search_fts WHERE search_fts MATCH ? AND rowid = t.pk + {lo})"
                  if probe_from is not None and count >= probe_from else
                  f"t.pk IN (SELECT rowid - {lo} FROM search_fts WHERE search_fts MATCH ? "
                  f"AND rowid BETWEEN {lo} AND {hi})")
        sql = (f"SELECT {_columns(kind)} FROM {kind.table} t INDEXED BY {index} "
               f"WHERE {member} AND t.deleted_at IS NULL{where} ORDER BY t.{column} DESC, t.pk DESC LIMIT ?")
        try:
            # Through the pipeline index the walk reads at most the entries that pass (~0.15 µs each),
            # which costs less than the join whenever the matches outnumber them a tenth.
            budget = WALK_BUDGET_S[1] if index.endswith("_pipeline_downloads") else \
                min(max(count * JOIN_S_PER_MATCH, WALK_BUDGET_S[0]), WALK_BUDGET_S[1])
            found = _within(self.conn, budget, sql, [match, *params, needed])
        except sqlite3.OperationalError as exc:
            if "no such index" in str(exc):  # dropped for a first bulk load: the join still answers
                return None
            raise
        return None if found is None else [hit_from_row(kind, row, 0.0) for row in found]

    def _browse(self, filters: SearchFilters | None, sort: str, needed: int) -> list[SearchHit]:
        """No query text: the filtered items in sort order."""
        hits: list[SearchHit] = []
        for kind, where, params in kinds_with_filters(filters):
            sql = (f"SELECT {_columns(kind)} FROM {kind.table} t WHERE t.deleted_at IS NULL{where} "
                   f"ORDER BY t.{_sort_column(kind, sort)} DESC LIMIT ?")
            hits += [hit_from_row(kind, row, 0.0) for row in self.conn.execute(sql, [*params, needed])]
        hits.sort(key=lambda h: sort_key(h, sort), reverse=True)
        return hits[:needed]

    # -- semantic ------------------------------------------------------------------------

    def _semantic(self, query: str, filters: SearchFilters | None, needed: int) -> list[SearchHit]:
        if self.index.get() is None:
            # Normal until the embedder's first batch: the callers tell their users so.
            log.info("semantic_index_missing", hint="run `python main.py embed --until-idle`")
            return []
        return self._nearest(self.embed_query(query), filters, needed)

    def _nearest(self, vector: np.ndarray, filters: SearchFilters | None, needed: int) -> list[SearchHit]:
        loaded = self.index.get()
        if loaded is None:
            return []
        if filters is not None and filters.beyond_kind():
            candidates = self._filtered_keys(filters, PREFILTER_MAX + 1)
            if len(candidates) <= PREFILTER_MAX:
                return self._hydrate(self._exact_scores(vector, candidates)[:needed], filters)
        kind = filters.kind if filters is not None else None
        k = max(needed * 2, 50)
        while True:
            scored = loaded.search(vector, k, kind=kind)
            if not loaded.exact:
                # SQ8 scores are approximate: re-rank the candidates with the stored float32 vectors.
                scored = self._exact_scores(vector, [key for key, _ in scored])
            hits = self._hydrate_best(scored, filters, needed)
            if len(hits) >= needed or len(scored) < k or k >= min(MAX_FETCH, loaded.index.ntotal):
                return hits[:needed]
            k *= 4

    def _filtered_keys(self, filters: SearchFilters, cap: int) -> list[int]:
        keys: list[int] = []
        for kind, where, params in kinds_with_filters(filters):
            lo, _ = key_range(kind)
            rows = self.conn.execute(f"SELECT t.pk FROM {kind.table} t WHERE t.deleted_at IS NULL{where} LIMIT ?",
                                     [*params, cap - len(keys)])
            keys += [lo | r[0] for r in rows]
            if len(keys) >= cap:
                break
        return keys

    def _exact_scores(self, vector: np.ndarray, keys: list[int]) -> list[tuple[int, float]]:
        ids: list[int] = []
        blobs: list[bytes] = []
        model = self.config.embedding_model
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            for key, blob in self.conn.execute(
                f"SELECT doc_key, vector FROM embeddings WHERE model = ? AND doc_key IN ({','.join('?' * len(part))})",
                [model, *part],
            ):
                ids.append(key)
                blobs.append(blob)
        if not ids:
            return []
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(ids), -1)
        scores = matrix @ vector.astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        return [(ids[i], float(scores[i])) for i in order]

    def _hydrate_best(self, scored: list[tuple[int, float]], filters: SearchFilters | None,
                      needed: int) -> list[SearchHit]:
        """The first `needed` hits of `scored` that survive hydration, reading rows a slice at a time:
        most searches need 10 rows, not the 50 or more candidates that were scored."""
        hits: list[SearchHit] = []
        start, step = 0, needed + 10
        while len(hits) < needed and start < len(scored):
            hits += self._hydrate(scored[start:start + step], filters)
            start += step
            step *= 4
        return hits

    def _hydrate(self, scored: list[tuple[int, float]], filters: SearchFilters | None) -> list[SearchHit]:
        """Rows for (doc_key, score) pairs, in the given order; deleted or filtered-out items dropped."""
        by_kind: dict[Kind, list[int]] = {}
        for key, _ in scored:
            kind, pk = split_doc_key(key)
            by_kind.setdefault(kind, []).append(pk)
        found: dict[int, sqlite3.Row] = {}
        for kind, where, params in kinds_with_filters(filters, by_kind):
            pks = by_kind[kind]
            lo, _ = key_range(kind)
            for i in range(0, len(pks), 500):
                part = pks[i:i + 500]
                for row in self.conn.execute(
                    f"SELECT {_columns(kind)} FROM {kind.table} t WHERE t.pk IN ({','.join('?' * len(part))}) "
                    f"AND t.deleted_at IS NULL{where}", [*part, *params],
                ):
                    found[lo | row["pk"]] = row
        hits = []
        for key, score in scored:
            row = found.get(key)
            if row is not None:
                hits.append(hit_from_row(split_doc_key(key)[0], row, score))
        return hits

    # -- hybrid --------------------------------------------------------------------------

    def _hybrid(self, query: str, filters: SearchFilters | None, needed: int) -> list[SearchHit]:
        depth = max(needed * 2, 50)
        # Only items matching every word: any-word matches are weak evidence, and in rank fusion
        # their agreement with the semantic list would outvote the semantic list's best answer.
        keyword = self._keyword(query, filters, depth, "relevance", loose=False)
        semantic = self._semantic(query, filters, depth)
        fused = rrf([[h.key for h in keyword], [h.key for h in semantic]])
        by_key = {h.key: h for h in (*semantic, *keyword)}
        ranked = sorted(fused, key=lambda key: fused[key], reverse=True)[:needed]
        hits = []
        for key in ranked:
            hit = by_key[key]
            hit.score = fused[key]
            hits.append(hit)
        return hits
