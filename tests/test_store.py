"""Page writes: change tracking, FTS kept in step, lineage, embedding jobs, migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import zstandard

from core.hub.records import parse_listed_repos, parse_paper, parse_repo
from core.kinds import Kind, doc_key
from core.store import connect, write_tx
from core.store.db import PAGE_SIZE, insert_rows
from core.store.items import (
    PageChanges,
    defer_indexes,
    mark_unseen_deleted,
    prepare_page,
    restore_indexes,
    write_page,
)
from core.store.memstatus import loaded_library
from core.store.migrations import latest_version, migrate
from core.store.rawjson import RawEncoder, decode_raw
from tests.conftest import PROJECT_ROOT


def _model(repo_id: str, **fields) -> dict:
    item = {"_id": "0" * 24, "id": repo_id, "likes": 0, "downloads": 0, "tags": [],
            "createdAt": "2025-01-01T00:00:00.000Z", "lastModified": "2025-01-01T00:00:00.000Z", "sha": "a" * 40}
    item.update(fields)
    return item


def _write(conn: sqlite3.Connection, items: list[dict], seen_at: str = "2025-06-01T00:00:00.000Z",
           hooks=()) -> PageChanges:
    with write_tx(conn):
        return write_page(conn, Kind.MODEL, [parse_repo(Kind.MODEL, i) for i in items], seen_at, hooks)


def _fts(conn: sqlite3.Connection, query: str) -> set[int]:
    return {row[0] for row in conn.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ?", (query,))}


def test_migrations_reach_latest(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    conn.close()
    # Reopening is a no-op.
    assert connect(tmp_path / "db.sqlite").execute("PRAGMA user_version").fetchone()[0] == latest_version()


def test_change_tracking(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    first = _write(conn, [_model("a/alpha-llama"), _model("b/beta", tags=["gguf"])])
    assert len(first.new) == 2 and not first.updated
    assert conn.execute("SELECT count(*) FROM embed_jobs").fetchone()[0] == 2

    same = _write(conn, [_model("a/alpha-llama"), _model("b/beta", tags=["gguf"])], "2025-06-02T00:00:00.000Z")
    assert same.unchanged == 2 and not same.new and not same.updated
    assert conn.execute("SELECT last_seen FROM models WHERE id='a/alpha-llama'").fetchone()[0].startswith("2025-06-02")

    conn.execute("DELETE FROM embed_jobs")
    counters = _write(conn, [_model("a/alpha-llama", downloads=50)])
    assert len(counters.updated) == 1
    item = counters.updated[0]
    assert item.counters_changed and not item.meta_changed and item.previous and item.previous.downloads == 0
    # Counters are not part of the text: nothing to re-embed.
    assert conn.execute("SELECT count(*) FROM embed_jobs").fetchone()[0] == 0

    retag = _write(conn, [_model("a/alpha-llama", downloads=50, tags=["text-generation"], sha="b" * 40)])
    assert retag.updated[0].meta_changed and retag.updated[0].previous.sha == "a" * 40
    assert conn.execute("SELECT count(*) FROM embed_jobs").fetchone()[0] == 1


def test_fts_follows_rows(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    _write(conn, [_model("acme/zebra-coder", tags=["code"])])
    pk = conn.execute("SELECT pk FROM models").fetchone()[0]
    assert _fts(conn, "zebra") == {doc_key(Kind.MODEL, pk)}
    _write(conn, [_model("acme/zebra-coder", tags=["giraffe"])])
    assert _fts(conn, "giraffe") == {doc_key(Kind.MODEL, pk)}
    assert _fts(conn, "code") == set()
    with write_tx(conn):
        conn.execute("DELETE FROM models")
    assert _fts(conn, "zebra") == set()
    assert conn.execute("INSERT INTO search_fts(search_fts, rank) VALUES ('integrity-check', 0)") is not None


def test_lineage_rows(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    _write(conn, [_model("q/base-7b"),
                  _model("t/base-7b-GGUF", tags=["gguf", "base_model:q/base-7b", "base_model:quantized:q/base-7b"])])
    rows = conn.execute(
        "SELECT m.id, l.relation FROM lineage l JOIN models m ON m.pk = l.child_pk WHERE l.base_id = 'q/base-7b'"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("t/base-7b-GGUF", "quantized")]
    assert conn.execute("SELECT quant_format FROM models WHERE id='t/base-7b-GGUF'").fetchone()[0] == "gguf"


def test_unseen_marked_deleted_and_resurrected(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    _write(conn, [_model("a/one"), _model("a/two")], "2025-06-01T00:00:00.000Z")
    _write(conn, [_model("a/one")], "2025-06-03T00:00:00.000Z")
    with write_tx(conn):
        assert mark_unseen_deleted(conn, Kind.MODEL, "2025-06-02T00:00:00.000Z", "2025-06-03T00:00:01.000Z") == 1
    assert conn.execute("SELECT deleted_at FROM models WHERE id='a/two'").fetchone()[0] is not None
    back = _write(conn, [_model("a/two")], "2025-06-04T00:00:00.000Z")
    assert len(back.updated) == 1 and back.updated[0].previous.was_deleted
    assert conn.execute("SELECT deleted_at FROM models WHERE id='a/two'").fetchone()[0] is None


def test_hooks_run_inside_the_transaction(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")

    def failing_hook(conn: sqlite3.Connection, changes: PageChanges) -> None:
        raise RuntimeError("boom")

    try:
        _write(conn, [_model("a/one")], hooks=[failing_hook])
    except RuntimeError:
        pass
    # The hook failed, so the page was not committed either.
    assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 0


def test_papers_page(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    paper = {"id": "2501.00001", "title": "Sparse Mixture of Experts", "summary": "We study routing.",
             "authors": [{"_id": "x", "name": "Ada Lovelace", "hidden": False}],
             "publishedAt": "2025-01-01T00:00:00.000Z", "upvotes": 3}
    with write_tx(conn):
        changes = write_page(conn, Kind.PAPER, [parse_paper(paper)], "2025-06-01T00:00:00.000Z")
    assert len(changes.new) == 1
    assert _fts(conn, "lovelace") == {doc_key(Kind.PAPER, changes.new[0].pk)}


def _page_of_models(count: int, start: int = 0) -> list[dict]:
    return [_model(f"author{i % 37}/model-{i}-gguf", downloads=i, tags=["gguf", "license:mit", f"topic{i % 11}"])
            for i in range(start, start + count)]


def test_raw_json_is_compressed_with_a_dictionary_trained_on_the_mirror(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    conn = connect(db)
    _write(conn, _page_of_models(10))  # too few items to train on: the fixed zlib vocabulary
    assert conn.execute("SELECT count(*) FROM raw_dictionaries").fetchone()[0] == 0
    assert conn.execute("SELECT raw FROM models LIMIT 1").fetchone()[0][:1] == b"\x01"
    _write(conn, _page_of_models(1200, start=10))
    assert [row[0] for row in conn.execute("SELECT kind FROM raw_dictionaries")] == ["model"]
    trained = conn.execute("SELECT raw FROM models WHERE id = 'author19/model-500-gguf'").fetchone()[0]
    assert trained[:1] == b"\x02" and len(trained) < 100
    # Another process, which never saw the dictionary, decodes both formats.
    script = (
        "import sys; from core.store import connect; from core.store.rawjson import decode_raw;"
        "conn = connect(sys.argv[1]);"
        "print(sorted(decode_raw(r[0])['id'] for r in conn.execute("
        "\"SELECT raw FROM models WHERE id IN ('author3/model-3-gguf', 'author19/model-500-gguf')\")))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT)
    assert out.stdout.strip() == "['author19/model-500-gguf', 'author3/model-3-gguf']"
    # Same item, same bytes: a re-sync recognises it without decoding anything.
    again = _write(conn, _page_of_models(1200, start=10), "2025-06-02T00:00:00.000Z")
    assert again.unchanged == 1200 and not again.updated
    # Those stored before the dictionary existed are unchanged too, and re-encoded with it, so
    # that the next sync compares their bytes again instead of decoding them.
    first = _write(conn, _page_of_models(10), "2025-06-03T00:00:00.000Z")
    assert first.unchanged == 10 and not first.updated
    assert conn.execute("SELECT raw FROM models WHERE id = 'author3/model-3-gguf'").fetchone()[0][:1] == b"\x02"


def test_a_prepared_page_keeps_the_bytes_as_sent_and_the_last_copy_of_an_id() -> None:
    items = [{"id": "a/x", "downloads": 1}, {"id": "b/y", "downloads": 2}, {"id": "a/x", "downloads": 3}]
    sent = [orjson.dumps(item) + b" " for item in items]  # bytes a re-serialization would not give
    listed = parse_listed_repos(Kind.MODEL, b"[" + b",".join(sent) + b"]")
    page = prepare_page(listed, sent)
    assert [(r.id, r.downloads) for r in page.records] == [("b/y", 2), ("a/x", 3)]
    assert page.documents == [sent[1], sent[2]]
    # A record parsed from a dict serializes its own; one parsed from page bytes needs them.
    assert prepare_page([parse_repo(Kind.MODEL, items[0])]).documents == [orjson.dumps(items[0])]
    with pytest.raises(ValueError, match="a/x"):
        prepare_page(listed[:1])


def test_encoding_a_page_at_once_gives_each_item_its_own_bytes() -> None:
    documents = [orjson.dumps({"id": f"a/m{i}", "tags": ["gguf", f"license:l{i % 3}"]}) for i in range(1200)]
    for encoder in (RawEncoder(), RawEncoder(zstandard.train_dictionary(4096, documents).as_bytes())):
        encoded = encoder.encode_many(documents)
        assert encoded == [encoder.encode_json(document) for document in documents]
        assert [decode_raw(blob) for blob in encoded[:3]] == [orjson.loads(d) for d in documents[:3]]


def test_a_dictionary_trained_in_a_rolled_back_page_is_not_used_afterwards(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")

    def failing_hook(conn: sqlite3.Connection, changes: PageChanges) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _write(conn, _page_of_models(1000), hooks=[failing_hook])
    assert conn.execute("SELECT count(*) FROM raw_dictionaries").fetchone()[0] == 0
    _write(conn, _page_of_models(5, start=2000))
    dict_ids = {row[0] for row in conn.execute("SELECT id FROM raw_dictionaries")}
    for (blob,) in conn.execute("SELECT raw FROM models"):
        assert blob[:1] == b"\x01" or int.from_bytes(blob[1:5], "big") in dict_ids


def test_bulk_load_defers_and_restores_secondary_indexes(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    before = {row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'models'")}
    with write_tx(conn):
        deferred = defer_indexes(conn, Kind.MODEL)
    assert deferred and all("INDEX" in sql for sql in deferred)
    assert not {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'models' AND sql IS NOT NULL")}
    hashsize = conn.execute("SELECT v FROM search_fts_config WHERE k = 'hashsize'").fetchone()
    cache_size = conn.execute("PRAGMA cache_size").fetchone()
    with write_tx(conn):
        restore_indexes(conn, Kind.MODEL, deferred)
        restore_indexes(conn, Kind.MODEL, deferred)  # idempotent: a crash between restore and commit repeats it
    assert {row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'models'")} == before
    # The bulk build's larger FTS memory and smaller sort runs are not left to the crawler's page writes.
    assert conn.execute("SELECT v FROM search_fts_config WHERE k = 'hashsize'").fetchone() == hashsize
    assert conn.execute("PRAGMA cache_size").fetchone() == cache_size


def test_a_bulk_load_writes_full_text_entries_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.store.items.BULK_CATCH_UP_ROWS", 3)
    conn = connect(tmp_path / "db.sqlite")
    with write_tx(conn):
        deferred = defer_indexes(conn, Kind.MODEL)
    merged = ["base_model:merge:a/base", "base_model:merge:b/base"]
    pages = [[_model("x/one", tags=merged), _model("x/two")], [_model("x/three", tags=["base_model:c/base"])],
             [_model("x/four")]]
    for page in pages:
        with write_tx(conn):
            write_page(conn, Kind.MODEL, [parse_repo(Kind.MODEL, i) for i in page], "2025-06-01T00:00:00.000Z",
                       bulk=True)
    # The third row reached the threshold: rows 1-3 are searchable, row 4 waits.
    assert _fts(conn, "one") == {doc_key(Kind.MODEL, 1)} and _fts(conn, "three") == {doc_key(Kind.MODEL, 3)}
    assert _fts(conn, "four") == set()
    # Another writer changes a searchable row: the triggers keep its entry in step.
    _write(conn, [_model("x/two", tags=["retagged"])])
    assert _fts(conn, "retagged") == {doc_key(Kind.MODEL, 2)}
    conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
    assert conn.execute("SELECT count(*) FROM lineage").fetchone()[0] == 0  # lineage waits for the end
    with write_tx(conn):
        restore_indexes(conn, Kind.MODEL, deferred)
    assert _fts(conn, "four") == {doc_key(Kind.MODEL, 4)}
    conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
    assert {tuple(r) for r in conn.execute("SELECT base_id, child_pk, relation FROM lineage")} == {
        ("a/base", 1, "merge"), ("b/base", 1, "merge"), ("c/base", 3, None)}
    assert conn.execute("SELECT count(*) FROM lineage_pending").fetchone()[0] == 0


def test_a_bulk_load_keeps_the_newest_copy_of_an_id_stored_twice(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    with write_tx(conn):
        deferred = defer_indexes(conn, Kind.MODEL)
    assert any(sql.startswith("CREATE UNIQUE INDEX models_id") for sql in deferred)
    quantized = ["base_model:quantized:meta/llama", "gguf"]
    pages = [
        [_model("a/one", tags=quantized), _model("a/two")],
        [_model("a/one", tags=["base_model:finetune:meta/llama"], likes=7), _model("a/three", tags=quantized)],
    ]
    for page in pages:  # without the id index, nothing notices the second a/one yet
        with write_tx(conn):
            write_page(conn, Kind.MODEL, [parse_repo(Kind.MODEL, i) for i in page], "2025-06-01T00:00:00.000Z",
                       bulk=True)
    # Other writers (the hot sweep, webhooks) go on meanwhile: they find rows by scanning.
    assert len(_write(conn, [_model("a/two", tags=["retagged"]), _model("b/new")]).new) == 1
    # Lineage and full-text entries wait, sorted in at the end.
    assert conn.execute("SELECT count(*) FROM lineage").fetchone()[0] == 0
    assert _fts(conn, "one") == _fts(conn, "retagged") == _fts(conn, "new") == set()
    with write_tx(conn):
        restore_indexes(conn, Kind.MODEL, deferred)
    rows = {r["id"]: (r["pk"], r["likes"]) for r in conn.execute("SELECT id, pk, likes FROM models")}
    assert rows == {"a/one": (3, 7), "a/two": (2, 0), "a/three": (4, 0), "b/new": (5, 0)}
    assert _fts(conn, "retagged") == _fts(conn, "two") == {doc_key(Kind.MODEL, 2)}
    assert _fts(conn, "new") == {doc_key(Kind.MODEL, 5)}
    conn.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
    assert conn.execute("SELECT count(*) FROM lineage_pending").fetchone()[0] == 0
    assert {tuple(r) for r in conn.execute("SELECT base_id, child_pk, relation FROM lineage")} == {
        ("meta/llama", 3, "finetune"), ("meta/llama", 4, "quantized")}
    assert _fts(conn, "one") == {doc_key(Kind.MODEL, 3)}
    jobs = {r[0] for r in conn.execute("SELECT doc_key FROM embed_jobs")}
    assert jobs == {doc_key(Kind.MODEL, pk) for pk in (2, 3, 4, 5)}
    with pytest.raises(sqlite3.IntegrityError), write_tx(conn):
        conn.execute("INSERT INTO models (id, name, raw, text_hash, first_seen, last_seen, indexed_at) "
                     "VALUES ('a/two', 'two', x'00', '', '', '', '')")


def test_ids_become_a_named_unique_index_and_lose_nothing(tmp_path: Path) -> None:
    """m0012 rebuilds every kind table; rows, their FTS entries and lineage survive it."""
    conn = connect(tmp_path / "db.sqlite", migrate_schema=False)
    migrate(conn, target=11)
    stamps = "'', '', '', ''"  # text_hash, first_seen, last_seen, indexed_at
    with write_tx(conn):  # what version 11's write_page stored
        for pk, repo_id in ((1, "a/base"), (2, "a/child")):
            conn.execute(f"INSERT INTO models (pk, id, name, author, tags, raw, text_hash, first_seen, last_seen, "
                         f"indexed_at) VALUES (?, ?, ?, 'a', '[]', x'00', {stamps})", (pk, repo_id, repo_id[2:]))
        conn.execute(f"INSERT INTO papers (pk, id, title, authors, raw, text_hash, first_seen, last_seen, "
                     f"indexed_at) VALUES (1, '2401.00001', 'Llama scaling', '[]', x'00', {stamps})")
        conn.execute("INSERT INTO search_fts (rowid, name, author, tags, body) "
                     "SELECT (1 << 40) | pk, id, author, tags, description FROM models")
        conn.execute("INSERT INTO search_fts (rowid, name, author, tags, body) "
                     "SELECT (4 << 40) | pk, title, authors, ai_keywords, summary FROM papers")
        conn.execute("INSERT INTO lineage (base_id, child_pk, relation) VALUES ('a/base', 2, 'adapter')")
    before = {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("models", "papers", "lineage")}
    migrate(conn)
    for table, rows in before.items():
        assert [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")] == [tuple(r) for r in rows]
    assert _fts(conn, "child") == {doc_key(Kind.MODEL, 2)} and _fts(conn, "scaling") == {doc_key(Kind.PAPER, 1)}
    for table in ("models", "datasets", "spaces", "papers"):
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = ?", (table,))}
        assert f"{table}_id" in names and not any(n.startswith("sqlite_autoindex") for n in names)
        assert {f"{table}_fts_update", f"{table}_fts_delete", f"{table}_embedding_purge"} <= names
    with write_tx(conn):
        conn.execute("UPDATE papers SET title = 'Llama growth' WHERE pk = 1")
        conn.execute("DELETE FROM models WHERE id = 'a/child'")
    assert _fts(conn, "child") == set() and _fts(conn, "scaling") == set()
    assert _fts(conn, "growth") == {doc_key(Kind.PAPER, 1)}


def test_case_insensitive_author_filters_use_an_index(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    for table in ("models", "datasets", "spaces"):
        plan = " ".join(row[3] for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT pk FROM {table} t WHERE t.deleted_at IS NULL "
            "AND t.author = ? COLLATE NOCASE ORDER BY t.downloads DESC LIMIT 20", ("TheBloke",)))
        assert f"USING INDEX {table}_author_nocase" in plan, plan


def test_insert_rows_splits_at_the_parameter_limit(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    conn.execute("CREATE TEMP TABLE wide (" + ", ".join(f"c{i}" for i in range(10)) + ")")
    rows = [tuple(range(n, n + 10)) for n in range(5000)]  # 50,000 parameters: two statements
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    insert_rows(conn, "INSERT INTO wide", rows)
    conn.set_trace_callback(None)
    assert len(statements) == 2
    assert [tuple(row) for row in conn.execute("SELECT * FROM wide ORDER BY c0")] == rows


def test_a_bulk_page_keeps_bytes_compressed_off_the_writer_only_in_the_writers_format(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    with write_tx(conn):
        defer_indexes(conn, Kind.MODEL)
    first = _page_of_models(1000)
    with write_tx(conn):  # the first big page trains the dictionary
        write_page(conn, Kind.MODEL, [parse_repo(Kind.MODEL, i) for i in first], "2025-06-01T00:00:00.000Z",
                   bulk=True)
    dictionary = conn.execute("SELECT data FROM raw_dictionaries").fetchone()[0]
    other = zstandard.train_dictionary(4096, [orjson.dumps(i) for i in first]).as_bytes()
    pages = {}
    for name, encoder, start in (("same", RawEncoder(dictionary), 1000), ("other", RawEncoder(other), 1003)):
        items = _page_of_models(3, start=start)
        pages[name] = prepare_page([parse_repo(Kind.MODEL, i) for i in items], encoder=encoder, bulk=True)
        with write_tx(conn):
            changes = write_page(conn, Kind.MODEL, pages[name], "2025-06-02T00:00:00.000Z", bulk=True)
        assert [(item.pk, item.record.id) for item in changes.new] == [
            (1001 + i + start - 1000, item["id"]) for i, item in enumerate(items)]
        rows = conn.execute("SELECT pk, id, raw, downloads, first_seen, last_seen, indexed_at FROM models "
                            "WHERE pk > ? ORDER BY pk", (start,)).fetchall()
        assert [(r["pk"], r["id"], decode_raw(r["raw"]), r["downloads"]) for r in rows] == [
            (1001 + i + start - 1000, item["id"], item, item["downloads"]) for i, item in enumerate(items)]
        assert {(r["first_seen"], r["last_seen"], r["indexed_at"]) for r in rows} == {("2025-06-02T00:00:00.000Z",) * 3}
    stored = [r[0] for r in conn.execute("SELECT raw FROM models WHERE pk > 1000 ORDER BY pk")]
    assert stored[:3] == pages["same"].raws
    # Compressed against another dictionary: compressed again, against the mirror's own.
    assert stored[3:] != pages["other"].raws
    assert {blob[:5] for blob in stored} == {pages["same"].raw_format}


def test_sqlite_memory_statistics_go_off_only_while_nothing_is_open(tmp_path: Path) -> None:
    script = (
        "import sqlite3, sys; from core.store import connect; from core.store.memstatus import "
        "disable_memory_statistics as off;"
        "early = sqlite3.connect(sys.argv[1] + '/early.db') if sys.argv[2] == 'open' else None;"
        "conn = connect(sys.argv[1] + '/db.sqlite');"
        "conn.execute('CREATE TABLE t (x)'); conn.executemany('INSERT INTO t VALUES (?)', [(str(i) * 50,) for i in "
        "range(10000)]);"
        "print(off(), conn.execute('SELECT count(*) FROM t').fetchone()[0])"
    )
    if loaded_library() is None:
        pytest.skip("SQLite is linked into Python's _sqlite3 here: there is no library to configure")
    for before, expected in (("none", "True 10000"), ("open", "False 10000")):
        (tmp_path / before).mkdir()
        out = subprocess.run([sys.executable, "-c", script, str(tmp_path / before), before], capture_output=True,
                             text=True, check=True, cwd=PROJECT_ROOT)
        assert out.stdout.split() == expected.split(), out.stderr
