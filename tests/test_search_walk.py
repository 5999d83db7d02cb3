"""Keyword search with filters or sorts: the index walk (sorts by a column) and the author narrowing return
exactly what joining every match to its row returns."""

from __future__ import annotations

import random

import pytest

import core.search as search
from core.kinds import ALL_KINDS, Kind, key_range
from core.search import SearchEngine, SearchFilters, filter_clauses
from core.store import connect, write_tx
from core.store.db import utcnow
from core.store.items import mark_deleted
from tests.search_helpers import make_config, repo, write_corpus

WORDS = ("llama", "mistral", "gguf", "vision")
PIPELINES = ("text-generation", "translation", None)
TAGS = ("GGUF-Q4", "gguf", "base_model:quantized:org1/x", 'we"ird', "two words", "ünï-code")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    rng = random.Random(3)
    config = make_config(tmp_path_factory.mktemp("walk") / "data")

    def item(i: int, prefix: str) -> dict:
        words = rng.sample(WORDS, rng.randint(1, 2))
        # Few distinct values: many ties, which the walk must order as the join does.
        owner = ("Big-Org", "big-org", "big-org-extra", 'quo"te')[i % 4] if i % 5 == 0 else f"org{i % 37}"
        return repo(f"{owner}/{prefix}-{'-'.join(words)}-{i}", downloads=rng.choice((0, 0, 1, 5, 50, 900)),
                    likes=rng.randint(0, 3), pipeline_tag=rng.choice(PIPELINES),
                    tags=rng.sample(TAGS, rng.randint(0, 2)) + (["Rare-One"] if i % 97 == 0 else []),
                    createdAt=f"2025-0{rng.randint(1, 9)}-01T00:00:00.000Z")

    corpus = {Kind.MODEL: [item(i, "m") for i in range(1500)], Kind.DATASET: [item(i, "d") for i in range(400)]}
    write_corpus(config.db_path, corpus)
    conn = connect(config.db_path)
    with write_tx(conn):
        for i in range(0, 1500, 23):
            mark_deleted(conn, Kind.MODEL, corpus[Kind.MODEL][i]["id"], utcnow())
    conn.close()
    engine = SearchEngine(config)
    yield engine
    engine.close()


def reference(engine: SearchEngine, word: str, filters: SearchFilters | None, sort: str,
              needed: int) -> list[tuple[str, float]]:
    """The plain join, merged across kinds in kind order; ties by FTS rowid for relevance, newest first
    (rowid descending) for a sort by a column."""
    rows = []
    for kind in ALL_KINDS:
        clauses = filter_clauses(kind, filters)
        if clauses is None:
            continue
        where, params = clauses
        lo, hi = key_range(kind)
        value, order = ("-f.rank", "f.rank") if sort == "relevance" else \
            (f"t.{search._sort_column(kind, sort)}", f"t.{search._sort_column(kind, sort)} DESC")
        rows += engine.conn.execute(
            f"SELECT t.id, {value}, -f.rank FROM search_fts f JOIN {kind.table} t ON t.pk = f.rowid - {lo} "
            f"WHERE search_fts MATCH ? AND f.rowid BETWEEN {lo} AND {hi} AND t.deleted_at IS NULL{where} "
            f"ORDER BY {order}, f.rowid{'' if sort == 'relevance' else ' DESC'} LIMIT ?",
            [f'"{word}"', *params, needed]).fetchall()
    default = "" if sort in ("created", "modified") else 0
    rows.sort(key=lambda r: r[1] if r[1] is not None else default, reverse=True)
    # BM25 is the score only when it orders the results; sorted by a column, every score is 0.
    return [(r[0], round(r[2], 6) if sort == "relevance" else 0.0) for r in rows[:needed]]


CASES = [
    (None, "downloads"),
    (SearchFilters(kind=Kind.MODEL), "downloads"),
    (SearchFilters(kind=Kind.MODEL), "likes"),
    (SearchFilters(kind=Kind.MODEL, pipeline_tag="text-generation"), "downloads"),
    (SearchFilters(pipeline_tag="translation"), "created"),
    (SearchFilters(author="org5"), "downloads"),
    (SearchFilters(author="org5"), "relevance"),
    (SearchFilters(author="BIG-org"), "relevance"),
    (SearchFilters(author="big-org", kind=Kind.MODEL), "downloads"),
    (SearchFilters(author="big-org", pipeline_tag="translation"), "created"),
    (SearchFilters(author='quo"te'), "relevance"),
    (SearchFilters(author="_"), "relevance"),
    (SearchFilters(kind=Kind.MODEL, pipeline_tag="text-generation"), "relevance"),
    (SearchFilters(tag="gguf-q4"), "relevance"),
    (SearchFilters(tag="rare-one"), "relevance"),
    (SearchFilters(tag="rare-one"), "downloads"),
    (SearchFilters(tag="base_model:quantized:org1/x", kind=Kind.MODEL), "likes"),
    (SearchFilters(tag='we"ird'), "relevance"),
    (SearchFilters(tag="two words", author="big-org"), "relevance"),
    (SearchFilters(tag="ÜNÏ-code"), "relevance"),
    (SearchFilters(tag="ünï-code"), "relevance"),
    (SearchFilters(min_downloads=5), "modified"),
]


@pytest.mark.parametrize(("filters", "sort"), CASES)
# A walk for common words only, or for every word; rows checked against the materialised matches, or
# (a cheap probe) one by one for the commonest words.
@pytest.mark.parametrize(("walk_max", "probe_term_cost"), [(3_000, 150.0), (10**12, 150.0), (10**12, 1e-3)])
def test_walk_matches_the_join(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch, filters: SearchFilters | None,
                               sort: str, walk_max: int, probe_term_cost: float) -> None:
    found_any = False
    for word in WORDS:
        for limit, offset in ((20, 0), (5, 10), (1, 0)):
            # The join alone, as before the walk and the narrowing.
            monkeypatch.setattr(search, "WALK_MAX", 1)
            monkeypatch.setattr(search, "NARROW_MAX", -1)
            joined = engine.search(word, filters, sort=sort, limit=limit, offset=offset)
            monkeypatch.setattr(search, "WALK_MAX", walk_max)
            monkeypatch.setattr(search, "PROBE_TERM_COST", probe_term_cost)
            monkeypatch.setattr(search, "NARROW_MAX", 15)
            walked = engine.search(word, filters, sort=sort, limit=limit, offset=offset)
            expected = reference(engine, word, filters, sort, offset + limit)[offset:]
            assert [(h.id, h.to_json()["score"]) for h in walked] == expected
            found_any = found_any or bool(expected)
            assert [h.to_json() for h in walked] == [h.to_json() for h in joined]
    # Not vacuous, except where the filter matches nothing: NOCASE folds ASCII only.
    assert found_any or (filters is not None and (filters.author in ("_", 'quo"te') or filters.tag == "ÜNÏ-code"))


def test_relevance_with_filters_is_unchanged(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "WALK_MAX", 10**12)
    filters = SearchFilters(kind=Kind.MODEL, pipeline_tag="text-generation")
    hits = engine.search("llama", filters, limit=30)
    assert hits and all(h.pipeline_tag == "text-generation" and "llama" in h.id for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize(("query", "sort"), [
    ("visio", "downloads"), ("visio", "created"), ("mistr gguf", "downloads"), ("mistr gguf", "created"),
    ("llam zzzz", "downloads"), ("llam zzzz", "created"), ("visio mistr", "created"), ("vis", "downloads"),
    ("m", "likes"), ("lla", "modified"),
])
@pytest.mark.parametrize("probe_term_cost", [150.0, 1e-3])
def test_walk_over_prefixes_matches_the_join(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch,
                                             query: str, sort: str, probe_term_cost: float) -> None:
    """Words that FTS expands to several indexed terms (and a word that matches nothing, for any-word
    results): the walk returns exactly what the join returns, with either way of checking rows."""
    walks: list[str] = []

    def trace(sql: str) -> None:
        if "INDEXED BY" in sql:
            walks.append("probe" if "EXISTS (SELECT 1 FROM search_fts" in sql else "materialised")

    for filters in (None, SearchFilters(kind=Kind.MODEL, pipeline_tag="text-generation")):
        monkeypatch.setattr(search, "WALK_MAX", 1)
        joined = engine.search(query, filters, sort=sort, limit=20)
        monkeypatch.setattr(search, "WALK_MAX", 10**12)
        monkeypatch.setattr(search, "PROBE_TERM_COST", probe_term_cost)
        engine.conn.set_trace_callback(trace)
        try:
            walked = engine.search(query, filters, sort=sort, limit=20)
        finally:
            engine.conn.set_trace_callback(None)
        assert walked and [h.to_json() for h in walked] == [h.to_json() for h in joined]
        monkeypatch.undo()
    assert walks, "the walk did not run"
    # With probes priced as in production, 1,500 models are never dense enough for them.
    assert ("probe" in walks) == (probe_term_cost < 1), walks


def test_probe_cost() -> None:
    """A row is probed a term at a time; never through a prefix longer than the prefix index (3 characters),
    which FTS would expand again for every row."""
    assert search._probe_cost('"llama"') == search.PROBE_TERM_COST
    assert search._probe_cost('("visio" OR "vision") AND "lla"*') == 3 * search.PROBE_TERM_COST
    assert search._probe_cost('"llama" AND "instruct"*') == 0


def test_walk_needs_the_sort_index(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a first bulk load has the sort indexes dropped, sorted searches fall back to the join."""
    monkeypatch.setattr(search, "WALK_MAX", 10**12)
    conn = engine.conn
    try:
        conn.execute("SAVEPOINT drop_index")
        conn.execute("DROP INDEX models_downloads")
        hits = engine.search("llama", SearchFilters(kind=Kind.MODEL), sort="downloads", limit=10)
    finally:
        conn.execute("ROLLBACK TO drop_index")
        conn.execute("RELEASE drop_index")
    downloads = [h.downloads for h in hits]
    assert len(hits) == 10 and downloads == sorted(downloads, reverse=True)


def test_a_walk_past_its_budget_gives_way_to_the_join(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk that runs longer than the join would (filters few matches pass) is interrupted, and the join
    answers: the same results."""
    filters = SearchFilters(kind=Kind.MODEL, pipeline_tag="translation")
    monkeypatch.setattr(search, "WALK_MAX", 1)
    joined = engine.search("llama", filters, sort="downloads", limit=20)
    monkeypatch.setattr(search, "WALK_MAX", 10**12)
    monkeypatch.setattr(search, "WALK_BUDGET_S", (0.0, 0.0))
    monkeypatch.setattr(search, "_BUDGET_CHECK_OPS", 1)
    walks: list[str] = []
    engine.conn.set_trace_callback(lambda sql: walks.append(sql) if "INDEXED BY" in sql else None)
    try:
        walked = engine.search("llama", filters, sort="downloads", limit=20)
    finally:
        engine.conn.set_trace_callback(None)
    assert walks and joined and [h.to_json() for h in walked] == [h.to_json() for h in joined]


def test_a_pipeline_filter_walks_only_the_items_that_carry_it(engine: SearchEngine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "WALK_MAX", 10**12)
    walks: list[str] = []
    engine.conn.set_trace_callback(lambda sql: walks.append(sql) if "INDEXED BY" in sql else None)
    try:
        hits = engine.search("llama", SearchFilters(pipeline_tag="translation"), sort="downloads", limit=5)
    finally:
        engine.conn.set_trace_callback(None)
    assert hits and all(h.pipeline_tag == "translation" for h in hits)
    assert any("INDEXED BY models_pipeline_downloads" in sql for sql in walks), walks


@pytest.mark.parametrize("scan", [5_000, 120, 1])  # one cursor for all kinds, or a cursor per kind after it
@pytest.mark.parametrize("query", ["llama", "llama mistral", "vis", "gguf"])
def test_newest_matches_of_each_kind(engine: SearchEngine, monkeypatch: pytest.MonkeyPatch, scan: int,
                                     query: str) -> None:
    monkeypatch.setattr(search, "RECENT_SCAN", scan)
    monkeypatch.setattr(search, "RECENT_POOL", 40)
    match = engine._match(search.query_tokens(query), any_term=True)
    kinds = [Kind.MODEL, Kind.DATASET]
    expected = {}
    for kind in kinds:
        lo, hi = key_range(kind)
        expected[kind] = [key - lo for (key,) in engine.conn.execute(
            "SELECT rowid FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ? "
            "ORDER BY rowid DESC LIMIT 40", (match, lo, hi))]
    assert all(expected.values())
    assert engine._recent(match, kinds) == expected
    assert engine._recent(match, [Kind.MODEL]) == {Kind.MODEL: expected[Kind.MODEL]}
