"""Search: FTS query safety, filters, sorts, semantic/hybrid/similar, deletions, index reloads, and the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import core.search as search
from core.kinds import Kind
from core.search import (
    EXACT_MAX,
    SearchEngine,
    SearchFilters,
    filter_clauses,
    fts_query,
    parse_param_count,
    rrf,
)
from core.store import connect, write_tx
from core.store.db import utcnow
from core.store.items import mark_deleted
from core.vectorindex import FLAT, IVF_SQ8, IndexMaintainer, IndexStore, LoadedIndex, build_index
from tests.conftest import PROJECT_ROOT, cli_env, run_cli
from tests.search_helpers import (
    embed_all,
    make_config,
    repo,
    small_corpus,
    write_corpus,
    write_items,
)

NASTY = ['"', '""', "*", "AND", "OR NOT", "NEAR(a b", "name:llama", "^llama", "-llama", "llama*", "(", ")",
         "a:b:c", "🦙 llama", "'; DROP TABLE models; --", "\\", "\x00", "ünïcödé", "  ", "+++", "{a b}"]


# -- pure functions -------------------------------------------------------------------------


def test_fts_query_quotes_every_token() -> None:
    assert fts_query("Llama-2-7B GGUF") == '"llama"* AND "2" AND "7b"* AND "gguf"*'
    assert fts_query("llama gguf", any_term=True) == '"llama"* OR "gguf"*'
    assert fts_query('" * ( )') is None
    assert fts_query("") is None


@pytest.mark.parametrize(("text", "value"), [("7B", 7_000_000_000), ("1.5b", 1_500_000_000), ("500M", 500_000_000),
                                             ("7e9", 7_000_000_000), ("123", 123), (" 13 B ", 13_000_000_000)])
def test_parse_param_count(text: str, value: int) -> None:
    assert parse_param_count(text) == value


@pytest.mark.parametrize("text", ["seven", "7X", "-1", "nan", ""])
def test_parse_param_count_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_param_count(text)


def test_rrf_rewards_agreement() -> None:
    fused = rrf([[1, 2, 3], [3, 1, 4]])
    assert max(fused, key=lambda k: fused[k]) == 1
    assert fused[3] > fused[2] and fused[3] > fused[4]


def test_filters_exclude_kinds_that_cannot_match() -> None:
    assert filter_clauses(Kind.DATASET, SearchFilters(quant_format="gguf")) is None
    assert filter_clauses(Kind.PAPER, SearchFilters(min_downloads=1)) is None
    assert filter_clauses(Kind.MODEL, SearchFilters(kind=Kind.DATASET)) is None
    where, params = filter_clauses(Kind.MODEL, SearchFilters(base_model="x", relation="quantized"))
    assert "lineage" in where and params == ["x", "quantized"]
    assert filter_clauses(Kind.PAPER, SearchFilters(author="Hugo Touvron")) is not None


# -- against a real database -------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("search") / "data"
    config = make_config(data_dir)
    write_corpus(config.db_path, small_corpus())
    conn = connect(config.db_path)
    with write_tx(conn):
        mark_deleted(conn, Kind.MODEL, "gone/deleted-llama", utcnow())
    conn.close()
    embed_all(config)
    search_engine = SearchEngine(config)  # queries through the search path's own (numpy) encoder
    yield search_engine
    search_engine.close()


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def test_keyword_ranks_name_matches_first_and_prefixes(engine: SearchEngine) -> None:
    hits = engine.search("llama gguf")
    assert ids(hits)[0] == "TheBloke/Llama-2-7B-GGUF"
    assert "meta-llama/Llama-2-7b-hf" in ids(engine.search("lla"))  # prefix
    assert ids(engine.search("whisper", SearchFilters(kind=Kind.SPACE))) == ["gradio/whisper-demo"]
    # A dataset found by its description, a paper by its title.
    assert ids(engine.search("reading comprehension")) == ["rajpurkar/squad_v2"]
    assert "2307.09288" in ids(engine.search("foundation chat models"))


def test_bm25_is_the_rank_config(engine: SearchEngine) -> None:
    """`_fts_ranked` scores with `search.BM25`, not `ORDER BY rank`: both must give the same order and scores."""
    conn = engine.conn
    (config,) = conn.execute("SELECT v FROM search_fts_config WHERE k = 'rank'").fetchone()
    assert config.replace("bm25(", "bm25(search_fts, ") == search.BM25
    for match in ('"llama"*', '"model"* OR "data"*', '"llama"* AND "gguf"*'):
        expected = [(key, -rank) for key, rank in conn.execute(
            "SELECT rowid, rank FROM search_fts WHERE search_fts MATCH ? ORDER BY rank", (match,))]
        assert expected
        hits = engine._fts_ranked(match, 0, 1 << 62, None, len(expected))
        assert [(h.key, h.score) for h in hits] == [pair for pair in expected if pair[0] in {h.key for h in hits}]


@pytest.mark.parametrize("text", NASTY)
@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_any_user_text_is_safe(engine: SearchEngine, text: str, mode: str) -> None:
    engine.search(text, mode=mode)  # never raises


def test_deleted_items_are_never_returned(engine: SearchEngine) -> None:
    for mode in ("keyword", "semantic", "hybrid"):
        assert "gone/deleted-llama" not in ids(engine.search("llama", mode=mode, limit=50))
    assert "gone/deleted-llama" not in ids(engine.search("", sort="downloads", limit=50))


def test_filters(engine: SearchEngine) -> None:
    def found(**kw) -> set[str]:
        return set(ids(engine.search("", SearchFilters(**kw), limit=50)))

    assert found(base_model="meta-llama/Llama-2-7b-hf") == {
        "TheBloke/Llama-2-7B-GGUF", "TheBloke/Llama-2-7B-AWQ", "vicgalle/llama-2-7b-chat-finetune"}
    assert found(base_model="meta-llama/Llama-2-7b-hf", relation="quantized") == {
        "TheBloke/Llama-2-7B-GGUF", "TheBloke/Llama-2-7B-AWQ"}
    assert found(quant_format="gguf") == {"TheBloke/Llama-2-7B-GGUF"}
    assert found(quant_format="AWQ") == {"TheBloke/Llama-2-7B-AWQ"}
    assert found(author="thebloke") == {"TheBloke/Llama-2-7B-GGUF", "TheBloke/Llama-2-7B-AWQ"}
    assert found(min_params=10_000_000_000) == {"meta-llama/Llama-2-13b-hf"}
    assert found(min_params=6_000_000_000, max_params=7_000_000_000) == {
        "TheBloke/Llama-2-7B-GGUF", "meta-llama/Llama-2-7b-hf", "vicgalle/llama-2-7b-chat-finetune"}
    assert found(library="diffusers") == {"stabilityai/stable-diffusion-xl-base-1.0"}
    assert found(pipeline_tag="automatic-speech-recognition") == {"openai/whisper-large-v3"}
    assert found(license="cc-by-sa-4.0") == {"rajpurkar/squad_v2"}
    assert found(tag="language:en") == {"rajpurkar/squad_v2", "acme/llama-chat-logs"}
    assert found(min_downloads=60000) == {"meta-llama/Llama-2-7b-hf", "openai/whisper-large-v3",
                                          "stabilityai/stable-diffusion-xl-base-1.0",
                                          "sentence-transformers/all-MiniLM-L6-v2"}
    assert found(author="Hugo Touvron") == {"2307.09288"}
    # The same filters hold in the other modes.
    for mode in ("semantic", "hybrid"):
        hits = engine.search("llama", SearchFilters(base_model="meta-llama/Llama-2-7b-hf", relation="quantized"),
                             mode=mode)
        assert set(ids(hits)) == {"TheBloke/Llama-2-7B-GGUF", "TheBloke/Llama-2-7B-AWQ"}
        assert {h.kind for h in engine.search("speech", SearchFilters(kind=Kind.PAPER), mode=mode)} == {Kind.PAPER}


def test_sorts(engine: SearchEngine) -> None:
    hits = engine.search("llama", SearchFilters(kind=Kind.MODEL), sort="downloads", limit=50)
    downloads = [h.downloads for h in hits]
    assert downloads == sorted(downloads, reverse=True) and ids(hits)[0] == "meta-llama/Llama-2-7b-hf"
    created = [h.created_at for h in engine.search("llama", SearchFilters(kind=Kind.MODEL), sort="created")]
    assert created == sorted(created, reverse=True)
    likes = [h.likes for h in engine.search("llama", mode="semantic", sort="likes")]
    assert likes == sorted(likes, reverse=True)
    with pytest.raises(ValueError):
        engine.search("x", sort="stars")
    with pytest.raises(ValueError):
        engine.search("x", mode="fuzzy")


def test_semantic_and_hybrid_find_meaning(engine: SearchEngine) -> None:
    # No shared words with the item: only meaning links them.
    semantic = ids(engine.search("turn audio recordings into written transcripts", mode="semantic", limit=5))
    assert "openai/whisper-large-v3" in semantic or "gradio/whisper-demo" in semantic
    assert ids(engine.search("generate pictures from a prompt", SearchFilters(kind=Kind.MODEL), mode="semantic",
                             limit=1)) == ["stabilityai/stable-diffusion-xl-base-1.0"]
    hybrid = engine.search("llama gguf", mode="hybrid", limit=5)
    assert ids(hybrid)[0] == "TheBloke/Llama-2-7B-GGUF"
    assert all(h.to_json()["kind"] in ("model", "dataset", "space", "paper") for h in hybrid)
    page_two = engine.search("llama", mode="hybrid", limit=2, offset=2)
    assert ids(page_two) == ids(engine.search("llama", mode="hybrid", limit=4))[2:]


def test_similar(engine: SearchEngine) -> None:
    hits = engine.similar(Kind.MODEL, "TheBloke/Llama-2-7B-GGUF", limit=3)
    assert "TheBloke/Llama-2-7B-GGUF" not in ids(hits)
    assert "TheBloke/Llama-2-7B-AWQ" in ids(hits)
    assert all(h.kind is Kind.MODEL for h in hits)
    with pytest.raises(LookupError):
        engine.similar(Kind.MODEL, "nobody/nothing")


def test_keyword_over_more_matches_than_bm25_ranks(data_dir: Path) -> None:
    """Past EXACT_MAX matches: name matches first, then popularity; deletions honoured despite the caches."""
    config = make_config(data_dir)
    models = [repo(f"org{i}/tool-{i}", downloads=i, tags=["widget"]) for i in range(EXACT_MAX + 200)]
    models += [repo("gone/widget-gone", downloads=10**7, tags=["widget"]),
               repo("acme/widget-big", downloads=10**6), repo("acme/widget-small", downloads=5)]
    write_corpus(config.db_path, {Kind.MODEL: models})
    conn = connect(config.db_path)
    with write_tx(conn):
        mark_deleted(conn, Kind.MODEL, "gone/widget-gone", utcnow())
    engine = SearchEngine(config)
    top = EXACT_MAX + 199
    expected = ["acme/widget-big", "acme/widget-small", f"org{top}/tool-{top}", f"org{top - 1}/tool-{top - 1}"]
    assert ids(engine.search("widget", limit=4)) == expected
    # No item has both words: any word, same order.
    assert ids(engine.search("widget qqqq", limit=4)) == expected
    with write_tx(conn):
        mark_deleted(conn, Kind.MODEL, "acme/widget-big", utcnow())
    conn.close()
    assert ids(engine.search("widget", limit=3)) == expected[1:4]


@pytest.mark.parametrize("walk", [True, False])  # the popularity index walked, or the join when a walk gives up
def test_filtered_keyword_over_more_matches_than_bm25_ranks(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                            walk: bool) -> None:
    """Past EXACT_MAX matches with a filter: the bounded candidates, filtered; a filter they rarely
    pass sends the search to the most popular matches that pass (walking an index), or to the join."""
    if not walk:
        monkeypatch.setattr(search, "WALK_BUDGET_S", (0.0, 0.0))
        monkeypatch.setattr(search, "_BUDGET_CHECK_OPS", 1)
    config = make_config(data_dir)
    models = [repo(f"org{i}/widget-{i}", downloads=i, pipeline_tag="text-generation" if i % 2 else "fill-mask")
              for i in range(EXACT_MAX + 200)]
    # Unpopular and old (low pk): neither among the most popular nor among the newest matches.
    models.insert(0, repo("rare/widget-ocr", downloads=0, pipeline_tag="image-to-text"))
    write_corpus(config.db_path, {Kind.MODEL: models})
    engine = SearchEngine(config)
    top = EXACT_MAX + 199  # odd: text-generation
    hits = engine.search("widget", SearchFilters(pipeline_tag="text-generation"), limit=3)
    assert ids(hits) == [f"org{top}/widget-{top}", f"org{top - 2}/widget-{top - 2}", f"org{top - 4}/widget-{top - 4}"]
    assert ids(engine.search("widget", SearchFilters(pipeline_tag="image-to-text"), limit=3)) == ["rare/widget-ocr"]
    engine.close()
    # Candidate pools that no fill-mask model is in.
    monkeypatch.setattr(search, "POPULAR_WALK", 1)
    monkeypatch.setattr(search, "RECENT_POOL", 1)
    engine = SearchEngine(config)
    hits = engine.search("widget", SearchFilters(pipeline_tag="fill-mask"), limit=3)
    assert len(hits) == 3 and all(h.pipeline_tag == "fill-mask" and "widget" in h.id for h in hits)
    if walk:  # the most downloaded fill-mask matches
        assert ids(hits) == [f"org{top - 1}/widget-{top - 1}", f"org{top - 3}/widget-{top - 3}",
                             f"org{top - 5}/widget-{top - 5}"]
    engine.close()


def test_updates_and_deletions_reach_a_running_engine(data_dir: Path) -> None:
    config = make_config(data_dir)
    write_corpus(config.db_path, small_corpus())
    embed_all(config)
    engine = SearchEngine(config)
    query = "a robot that folds laundry"
    assert "acme/laundry-bot" not in ids(engine.search(query, mode="semantic"))
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, [repo("acme/laundry-bot", tags=["robotics"], pipeline_tag="robotics")])
    embed_all(config)
    # The engine picks up the new index version without a restart.
    assert ids(engine.search(query, mode="semantic"))[0] == "acme/laundry-bot"
    with write_tx(conn):
        mark_deleted(conn, Kind.MODEL, "acme/laundry-bot", utcnow())
    embed_all(config)  # nothing to embed; the deletion reaches the index from the log
    meta = IndexStore(data_dir / "embeddings").read_meta()
    assert meta is not None and meta.count == len([i for k in small_corpus().values() for i in k])
    assert "acme/laundry-bot" not in ids(engine.search(query, mode="semantic"))
    engine.close()
    conn.close()


def _clustered(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_approximate_index_recall_and_removal(data_dir: Path) -> None:
    """Above the exact threshold the index is IVF-SQ8; its recall@10 against exact stays ≥ 0.95."""
    vectors = _clustered(6000)
    conn = connect(data_dir / "db.sqlite")
    # Store vectors for live rows so build_index reads them the way production does.
    write_items(conn, Kind.MODEL, [repo(f"u/m{i}") for i in range(len(vectors))])
    with write_tx(conn):
        conn.executemany(
            "INSERT INTO embeddings (doc_key, text_hash, model, vector, updated_at) VALUES (?, 'h', 'm', ?, 'now')",
            [((1 << 40) | (i + 1), v.tobytes()) for i, v in enumerate(vectors)])
    approx = build_index(conn, "m", exact_max=1000)
    exact = build_index(conn, "m", exact_max=10**9)
    assert approx.meta.index_type == IVF_SQ8 and exact.meta.index_type == FLAT
    queries = _clustered(100, seed=1)
    recall = np.mean([
        len({k for k, _ in approx.search(q, 10)} & {k for k, _ in exact.search(q, 10)}) / 10 for q in queries])
    assert recall >= 0.95, recall
    # Removal through the log: a deleted item leaves the approximate index too.
    store = IndexStore(data_dir / "embeddings")
    store.save(approx)
    with write_tx(conn):
        mark_deleted(conn, Kind.MODEL, "u/m0", utcnow())
    IndexMaintainer(store, "m", exact_max=1000).update(conn)
    reloaded = store.load()
    assert isinstance(reloaded, LoadedIndex) and reloaded.meta.count == len(vectors) - 1
    assert (1 << 40) | 1 not in {k for k, _ in reloaded.search(vectors[0], 10)}
    conn.close()


# -- the command line ------------------------------------------------------------------------


def test_cli_semantic_search_on_an_empty_index_says_so_once(data_dir: Path) -> None:
    write_corpus(make_config(data_dir).db_path, small_corpus())
    env = cli_env(data_dir)
    text = run_cli("search", "llama", "--semantic", env=env)
    assert text.returncode == 0 and text.stderr == ""
    assert text.stdout.strip() == "no results (the semantic index is empty: run `python main.py embed --until-idle`)"
    as_json = run_cli("search", "llama", "--semantic", "--json", env=env)
    assert json.loads(as_json.stdout) == {"results": []}
    assert as_json.stderr.strip().splitlines() == [
        "main.py search: the semantic index is empty: run `python main.py embed --until-idle`"]


def test_cli_search_similar_index_and_interactive(data_dir: Path) -> None:
    config = make_config(data_dir)
    write_corpus(config.db_path, small_corpus())
    env = cli_env(data_dir)
    done = run_cli("embed", "--until-idle", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["embedded"] == 14

    out = run_cli("search", "llama", "gguf", "--json", env=env)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert results[0]["id"] == "TheBloke/Llama-2-7B-GGUF" and results[0]["kind"] == "model"
    assert {"id", "kind", "score"} <= set(results[0])

    out = run_cli("search", "llama", "--hybrid", "--type", "models", "--base-model", "meta-llama/Llama-2-7b-hf",
                  "--relation", "quantized", "--min-params", "6B", "--limit", "5", env=env)
    assert out.returncode == 0, out.stderr
    assert "TheBloke/Llama-2-7B-GGUF" in out.stdout and "score" in out.stdout.splitlines()[0]
    assert "AWQ" not in out.stdout  # no parameter count known: the range excludes it

    out = run_cli("similar", "TheBloke/Llama-2-7B-GGUF", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert "TheBloke/Llama-2-7B-AWQ" in [r["id"] for r in json.loads(out.stdout)["results"]]

    bad = run_cli("search", "x", "--min-params", "lots", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert run_cli("similar", "nobody/nothing", env=env).returncode == 2

    built = run_cli("index", "build", "--json", env=env)
    assert built.returncode == 0 and json.loads(built.stdout)["count"] == 14

    session = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py")], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=120, input=":stats\nwhisper\n:type papers\nspeech\n:similar openai/whisper-large-v3\n:simlar x\n")
    assert session.returncode == 0, session.stderr
    assert "openai/whisper-large-v3" in session.stdout and "2212.04356" in session.stdout
    assert "items:" in session.stdout
    assert "unknown command :simlar" in session.stdout and session.stderr == ""


def test_end_to_end_over_the_fake_hub(hub_thread, data_dir: Path) -> None:
    """crawl → embed --until-idle → search / similar; a repo deleted on the Hub leaves every mode."""
    try:
        from core.hub.fake import FakeHub  # noqa: F401
    except ImportError:
        pytest.skip("the fake Hub is not built yet")

    hub = hub_thread(models=200, datasets=60, spaces=30, papers=30, seed=3)
    hub.call("create_repo", "models", "acme/tiny-llama-gguf", tags=["gguf", "text-generation"],
             pipeline_tag="text-generation")
    hub.call("create_repo", "datasets", "medlab/histo-slides", description="Microscope photographs of stained "
             "tissue biopsies, annotated for the presence of tumours.")
    env = cli_env(data_dir, hub.url)
    crawl = run_cli("crawl", "--mode", "full", env=env)
    assert crawl.returncode == 0, crawl.stderr
    embedded = run_cli("embed", "--until-idle", "--json", env=env)
    assert embedded.returncode == 0, embedded.stderr
    assert json.loads(embedded.stdout)["embedded"] >= 320

    def found(*args: str) -> list[str]:
        out = run_cli("search", *args, "--json", env=env)
        assert out.returncode == 0, out.stderr
        return [r["id"] for r in json.loads(out.stdout)["results"]]

    assert found("tiny llama gguf")[0] == "acme/tiny-llama-gguf"
    assert "medlab/histo-slides" in found("cancer pathology images", "--semantic", "--limit", "5")
    assert "medlab/histo-slides" in found("cancer pathology images", "--hybrid", "--limit", "5")
    similar = run_cli("similar", "acme/tiny-llama-gguf", "--json", env=env)
    assert similar.returncode == 0 and json.loads(similar.stdout)["results"]

    hub.call("delete_repo", "models", "acme/tiny-llama-gguf")
    assert run_cli("crawl", "--mode", "full", env=env).returncode == 0
    assert run_cli("embed", "--until-idle", env=env).returncode == 0
    for mode in ([], ["--semantic"], ["--hybrid"]):
        assert "acme/tiny-llama-gguf" not in found("tiny llama gguf", *mode)


def test_cached_match_counts_never_hide_new_items(data_dir: Path) -> None:
    """Match counts are cached for a while to choose how to search; what a search finds is always current."""
    config = make_config(data_dir)
    write_corpus(config.db_path, small_corpus())
    engine = SearchEngine(config)
    assert engine.search("zebrafish") == [] and engine.search("zebrafish awq") != []
    conn = connect(config.db_path)
    write_items(conn, Kind.MODEL, [repo("acme/zebrafish-tracker", tags=["zebrafish"])])
    conn.close()
    assert ids(engine.search("zebrafish")) == ["acme/zebrafish-tracker"]
    assert "acme/zebrafish-tracker" in ids(engine.search("zebrafish awq"))
    engine.close()


@pytest.mark.parametrize("text", ["TheBloke/Llama-2_7B.GGUF", 'Ünï(co)de:x,"y"[z]', "ABC-İ-ß", ""])
def test_python_and_sql_normalise_names_alike(text: str) -> None:
    conn = sqlite3.connect(":memory:")
    assert conn.execute(f"SELECT {search._normalised('?')}", (text,)).fetchone()[0] == search._normalised_text(text)
    conn.close()
