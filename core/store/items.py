"""Writing crawled pages into the kind tables, with change tracking.

A page is compared against what is stored in one query; only new and changed
rows are rewritten, unchanged rows just get `last_seen`. Hooks (alerts, trends)
run inside the same transaction, so a detection is committed with its repo or
not at all. The caller owns the transaction (`write_tx`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

from core.hub.records import COUNTER_FIELDS, PaperRecord, RepoRecord
from core.itemtext import source_hash
from core.kinds import Kind, doc_key, doc_key_sql
from core.store.db import MAX_PARAMETERS, insert_rows
from core.store.rawjson import RawEncoder, decode_raw, encoder_for, train_dictionary


@dataclass(frozen=True)
class Previous:
    """What a row held before this page changed it."""

    downloads: int
    likes: int
    trending_score: float | None
    sha: str | None
    was_deleted: bool


@dataclass
class StoredItem:
    pk: int
    record: RepoRecord | PaperRecord
    previous: Previous | None  # None for a new row
    meta_changed: bool = True
    counters_changed: bool = True

    @property
    def key(self) -> int:
        return doc_key(self.record.kind, self.pk)


@dataclass
class PageChanges:
    kind: Kind
    seen_at: str
    new: list[StoredItem] = field(default_factory=list)  # in the order of their primary keys, which follow on
    updated: list[StoredItem] = field(default_factory=list)
    unchanged: int = 0

    @property
    def new_pks(self) -> tuple[int, int] | None:
        """The first and last primary key of the new rows: every key between is one of them."""
        return (self.new[0].pk, self.new[-1].pk) if self.new else None


PageHook = Callable[[sqlite3.Connection, PageChanges], None]


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _stable(raw: dict) -> dict:
    """Everything but the counters, which change without a commit."""
    return {k: v for k, v in raw.items() if k not in COUNTER_FIELDS}


# Values that come from the record alone first (built by `prepare_page`), then what the write decides.
_WRITE_COLUMNS = ("raw", "text_hash")
_REPO_COLUMNS = (
    "id", "hub_oid", "name", "author", "description", "downloads", "downloads_all_time", "likes",
    "trending_score", "tags", "pipeline_tag", "library_name", "sdk", "sha", "created_at", "last_modified",
    "private", "gated", "disabled", "license", "base_model", "base_relation", "arxiv_ids",
    "num_parameters", "quant_format",
)
# What each kind puts in search_fts(name, author, tags, body); the update/delete
# triggers in migration 0001 use the same columns.
_FTS_SOURCE = {
    Kind.PAPER: "title, authors, ai_keywords, summary",
}
_REPO_FTS_SOURCE = "id, author, tags, description"

_PAPER_COLUMNS = (
    "id", "title", "summary", "authors", "published_at", "upvotes", "num_comments", "submitted_by",
    "ai_keywords", "github_repo",
)


def _repo_values(r: RepoRecord) -> tuple:
    base = r.base_model
    return (
        r.id, r.hub_oid, r.name, r.author, r.description, r.downloads, r.downloads_all_time, r.likes,
        r.trending_score, _dumps(r.tags), r.pipeline_tag, r.library_name, r.sdk, r.sha, r.created_at,
        r.last_modified, int(r.private), r.gated, int(r.disabled), r.license,
        base.repo_id if base else None, base.relation if base else None,
        _dumps(r.arxiv_ids) if r.arxiv_ids else None, r.num_parameters, r.quant_format,
    )


def _paper_values(p: PaperRecord) -> tuple:
    return (
        p.id, p.title, p.summary, _dumps(p.authors), p.published_at, p.upvotes, p.num_comments,
        p.submitted_by, _dumps(p.ai_keywords), p.github_repo,
    )


def _counters(record: RepoRecord | PaperRecord) -> tuple[int, int, float | None]:
    if isinstance(record, PaperRecord):
        return record.upvotes, record.upvotes, None
    return record.downloads, record.likes, record.trending_score


@dataclass
class PreparedPage:
    """What writing a page needs that no stored state decides, in lists that line up with `records`.

    Built by `prepare_page` before the page's transaction, so the write lock is not
    held meanwhile: by the crawler's writer thread for a full sync, on its event loop
    for a sync that must parse a page to know whether to fetch the next
    (`core.crawler.Crawler._fetch_ahead`).
    """

    records: list[RepoRecord | PaperRecord]  # one per id: a page may repeat an id, the last copy wins
    documents: list[bytes]  # the raw JSON
    text_hashes: list[str]  # `source_hash`: it changes whenever the search text may
    values: list[tuple]  # the row's columns that come from the record alone
    # Given an encoder, `prepare_page` compresses the documents too (the writer uses them when its
    # own encoder has the same format), and for a bulk load lays out each row's INSERT parameters.
    raws: list[bytes] | None = None
    raw_format: bytes | None = None
    bulk_parameters: list | None = None  # per row: its values, raw, text hash (`_bulk_parameters`)


def prepare_page(records: Sequence[RepoRecord | PaperRecord], documents: Sequence[bytes | None] | None = None,
                 *, encoder: RawEncoder | None = None, bulk: bool = False) -> PreparedPage:
    """`documents[i]` is `records[i]`'s raw JSON as the Hub sent it; where it is None (or not
    given), `raw` is serialized. A record without `raw` was parsed from the page's bytes, so
    it always comes with its document.

    `encoder` must be one the calling thread owns: zstd compressors are not thread-safe.
    """
    wire = list(documents) if documents is not None else [None] * len(records)
    records = list(records)
    if len({r.id for r in records}) < len(records):
        last = {r.id: i for i, r in enumerate(records)}
        keep = sorted(last.values())
        records, wire = [records[i] for i in keep], [wire[i] for i in keep]
    page = PreparedPage(
        records=records,
        documents=[orjson.dumps(_raw_of(r)) if document is None else document
                   for r, document in zip(records, wire, strict=True)],
        text_hashes=[source_hash(r) for r in records],
        values=[_paper_values(r) if isinstance(r, PaperRecord) else _repo_values(r) for r in records],
    )
    if encoder is not None and encoder.trained:
        page.raws, page.raw_format = encoder.encode_many(page.documents), encoder.format
        if bulk:
            page.bulk_parameters = _bulk_parameters(page.values, page.raws, page.text_hashes)
    return page


def _bulk_parameters(values: list[tuple], raws: list[bytes], text_hashes: list[str]) -> list:
    parameters: list = []
    for row, raw, text_hash in zip(values, raws, text_hashes, strict=True):
        parameters += row
        parameters.append(raw)
        parameters.append(text_hash)
    return parameters


def _raw_of(record: RepoRecord | PaperRecord) -> dict:
    if record.raw is None:
        raise ValueError(f"{record.id}: parsed from a page's bytes, but its document was not passed on")
    return record.raw


def _encoded(conn: sqlite3.Connection, kind: Kind, page: PreparedPage, seen_at: str) -> list[bytes]:
    """Each record's raw JSON, compressed; the kind's first big page trains its dictionary."""
    encoder = encoder_for(conn, kind)
    if not encoder.trained:
        encoder = train_dictionary(conn, kind, page.documents, seen_at) or encoder
    if page.raws is not None and page.raw_format == encoder.format:
        return page.raws
    return encoder.encode_many(page.documents)


def write_page(
    conn: sqlite3.Connection,
    kind: Kind,
    page: Sequence[RepoRecord | PaperRecord] | PreparedPage,
    seen_at: str,
    hooks: Sequence[PageHook] = (),
    *,
    bulk: bool = False,
) -> PageChanges:
    """Upsert one page of records of one kind. Call inside `write_tx`.

    `bulk`: the table is being bulk-loaded (`defer_indexes`), every record is new and
    nothing is looked up; lineage waits for `restore_indexes`.
    """
    if not isinstance(page, PreparedPage):
        page = prepare_page(page)
    if bulk:
        return _write_bulk_page(conn, kind, page, seen_at, hooks)
    table = kind.table
    columns = _PAPER_COLUMNS if kind is Kind.PAPER else _REPO_COLUMNS
    counter_sql = "upvotes, upvotes, NULL, NULL" if kind is Kind.PAPER else "downloads, likes, trending_score, sha"
    existing = {
        row[1]: row
        for row in conn.execute(
            f"SELECT pk, id, raw, text_hash, deleted_at, {counter_sql} FROM {table} "
            f"WHERE id IN ({','.join('?' * len(page.records))})",
            [r.id for r in page.records],
        )
    }
    raws = _encoded(conn, kind, page, seen_at)
    changes = PageChanges(kind=kind, seen_at=seen_at)
    inserts: list[tuple] = []
    updates: list[tuple] = []
    touches: list[int] = []
    reencoded: list[tuple] = []
    jobs: list[tuple] = []
    next_pk = conn.execute(f"SELECT coalesce(max(pk), 0) + 1 FROM {table}").fetchone()[0]
    first_new_pk = next_pk
    for record, raw, values, thash, document in zip(page.records, raws, page.values, page.text_hashes,
                                                    page.documents, strict=True):
        row = existing.get(record.id)
        if row is None:
            # The write lock is held, so nobody else can take these primary keys.
            pk, next_pk = next_pk, next_pk + 1
            inserts.append((*values, pk, raw, thash, seen_at, seen_at, seen_at))
            changes.new.append(StoredItem(pk, record, None))
            continue
        pk, _, old_raw, old_thash, deleted_at, downloads, likes, trending, sha = row
        if old_raw == raw and deleted_at is None:
            # The common case of a re-sync: the same bytes, nothing to compare.
            touches.append(pk)
            changes.unchanged += 1
            continue
        counters_changed = (downloads, likes, trending) != _counters(record)
        new_raw = record.raw if record.raw is not None else orjson.loads(document)
        meta_changed = deleted_at is not None or _stable(decode_raw(old_raw)) != _stable(new_raw)
        if not (meta_changed or counters_changed):
            # The same item in other bytes (an older dictionary or compression level): keep the
            # new bytes, so that the next sync compares bytes again instead of decoding.
            reencoded.append((raw, seen_at, pk))
            changes.unchanged += 1
            continue
        thash = thash if meta_changed else old_thash
        updates.append((*values, raw, thash, seen_at, seen_at, pk))
        changes.updated.append(StoredItem(
            pk, record, Previous(downloads, likes, trending, sha, deleted_at is not None),
            meta_changed=meta_changed, counters_changed=counters_changed,
        ))
        if old_thash != thash or deleted_at is not None:
            jobs.append((doc_key(kind, pk), thash, seen_at))
    if inserts:
        insert_rows(
            conn,
            f"INSERT INTO {table} ({', '.join(columns)}, pk, {', '.join(_WRITE_COLUMNS)}, first_seen, last_seen, "
            f"indexed_at)",
            inserts,
        )
        _follow_new_rows(conn, kind, first_new_pk, next_pk, seen_at)
    if updates:
        assignments = ", ".join(f"{c} = ?" for c in (*columns, *_WRITE_COLUMNS))
        conn.executemany(
            f"UPDATE {table} SET {assignments}, last_seen = ?, indexed_at = ?, deleted_at = NULL WHERE pk = ?",
            updates,
        )
    if touches:
        # One statement, the same for any number of rows (see `insert_rows` for why not executemany).
        conn.execute(f"UPDATE {table} SET last_seen = ? WHERE pk IN (SELECT value FROM json_each(?))",
                     (seen_at, orjson.dumps(touches)))
    if reencoded:
        conn.executemany(f"UPDATE {table} SET raw = ?, last_seen = ? WHERE pk = ?", reencoded)
    if kind is Kind.MODEL:
        _write_lineage(conn, changes)
    if jobs:
        insert_rows(conn, "INSERT INTO embed_jobs (doc_key, text_hash, enqueued_at)", jobs, _REQUEUE)
    for hook in hooks:
        hook(conn, changes)
    return changes


def _write_bulk_page(conn: sqlite3.Connection, kind: Kind, page: PreparedPage, seen_at: str,
                     hooks: Sequence[PageHook]) -> PageChanges:
    """`write_page` into a table being bulk-loaded: every record is a new row, and nothing is looked up."""
    raws = _encoded(conn, kind, page, seen_at)
    parameters = page.bulk_parameters
    if parameters is None or raws is not page.raws:
        parameters = _bulk_parameters(page.values, raws, page.text_hashes)
    columns = (*(_PAPER_COLUMNS if kind is Kind.PAPER else _REPO_COLUMNS), *_WRITE_COLUMNS)
    first_pk = conn.execute(f"SELECT coalesce(max(pk), 0) + 1 FROM {kind.table}").fetchone()[0]
    # No primary keys are bound: SQLite gives each row the next one, in order, as the write lock is held.
    # The three timestamps are one parameter, not three a row.
    row_sql = "(" + ", ".join("?" * len(columns)) + ")"
    most = (MAX_PARAMETERS - 1) // len(columns)
    for start in range(0, len(parameters), most * len(columns)):
        chunk = parameters[start:start + most * len(columns)]
        conn.execute(
            f"INSERT INTO {kind.table} ({', '.join(columns)}, first_seen, last_seen, indexed_at) "
            f"SELECT *, ?1, ?1, ?1 FROM (VALUES {', '.join([row_sql] * (len(chunk) // len(columns)))})",
            [seen_at, *chunk],
        )
    changes = PageChanges(kind=kind, seen_at=seen_at)
    changes.new = [StoredItem(pk, record, None) for pk, record in enumerate(page.records, first_pk)]
    end_pk = first_pk + len(page.records)
    if page.records:
        _follow_new_rows(conn, kind, first_pk, end_pk, seen_at)
    if kind is Kind.MODEL:
        _write_further_bases(conn, changes)
    for hook in hooks:
        hook(conn, changes)
    return changes


def _follow_new_rows(conn: sqlite3.Connection, kind: Kind, first_pk: int, end_pk: int, seen_at: str) -> None:
    """Full-text entries (now, or in the bulk load's next catch-up) and embedding jobs for rows first_pk..end_pk-1."""
    pending_from = _fts_pending_from(conn, kind)
    if pending_from is None:
        _index_text(conn, kind, "pk BETWEEN ? AND ?", (first_pk, end_pk - 1))
    elif end_pk - pending_from >= BULK_CATCH_UP_ROWS:
        _catch_up_bulk_rows(conn, kind, pending_from, end_pk)
    # New rows' jobs come from the rows themselves: no tuple to build and bind for each.
    conn.execute(
        f"INSERT INTO embed_jobs (doc_key, text_hash, enqueued_at) "
        f"SELECT {doc_key_sql(kind)}, text_hash, ? FROM {kind.table} WHERE pk BETWEEN ? AND ? {_REQUEUE}",
        (seen_at, first_pk, end_pk - 1),
    )


# A text that changes again before its job ran replaces the job (and gives it a fresh start).
_REQUEUE = (
    "ON CONFLICT (doc_key) DO UPDATE SET text_hash = excluded.text_hash, enqueued_at = excluded.enqueued_at, "
    "attempts = 0, parked = 0, last_error = NULL, lease_until = NULL"
)


def _index_text(conn: sqlite3.Connection, kind: Kind, where: str, params: tuple) -> None:
    """Add full-text entries for new rows (updates and deletes keep them in step by trigger)."""
    conn.execute(
        f"INSERT INTO search_fts (rowid, name, author, tags, body) "
        f"SELECT {doc_key_sql(kind)}, {_FTS_SOURCE.get(kind, _REPO_FTS_SOURCE)} FROM {kind.table} WHERE {where}",
        params,
    )


# A bulk load catches up with its rows' full-text entries (and, for models, stages the lineage of
# their first base) every this many rows, inside the writer's transaction, so keyword search finds
# the kind's rows as they load instead of after the last page. SQLite does that work without the
# GIL while the crawler's event loop fetches the next pages. When the event loop also parsed them,
# this took ~4 s off a load of 1M models (45.0 -> 41.1 s, 3 runs each; 50K and 200K rows did less
# well) for no more CPU.
BULK_CATCH_UP_ROWS = 100_000


def _catch_up_bulk_rows(conn: sqlite3.Connection, kind: Kind, from_pk: int, to_pk: int | None) -> None:
    """Full-text entries and staged first-base lineage for bulk-loaded rows from `from_pk` to `to_pk` (None: all)."""
    where, params = ("pk >= ?", (from_pk,)) if to_pk is None else ("pk >= ? AND pk < ?", (from_pk, to_pk))
    with _fts_pending_bytes(conn, BULK_FTS_PENDING_BYTES):
        _index_text(conn, kind, where, params)
    if kind is Kind.MODEL:
        conn.execute(
            f"INSERT INTO lineage_pending (base_id, child_pk, relation) "
            f"SELECT base_model, pk, base_relation FROM models WHERE {where} AND base_model IS NOT NULL",
            params,
        )
    if to_pk is None:
        conn.execute("DELETE FROM fts_pending WHERE kind = ?", (kind.code,))
    else:
        conn.execute("UPDATE fts_pending SET from_pk = ? WHERE kind = ?", (to_pk, kind.code))


def _fts_pending_from(conn: sqlite3.Connection, kind: Kind) -> int | None:
    """While a kind is bulk-loaded, its rows from this pk on still wait for `_catch_up_bulk_rows`."""
    row = conn.execute("SELECT from_pk FROM fts_pending WHERE kind = ?", (kind.code,)).fetchone()
    return row[0] if row else None


def _lineage_rows(items: Iterable[StoredItem], first_base: int = 0) -> list[tuple]:
    """(base id, child pk, relation) for each model's bases, from its `first_base`-th on."""
    return [
        (base.repo_id, item.pk, base.relation)
        for item in items
        if isinstance(item.record, RepoRecord)
        for base in item.record.base_models[first_base:]
    ]


def _write_lineage(conn: sqlite3.Connection, changes: PageChanges) -> None:
    changed = [item for item in changes.updated if item.meta_changed]
    if changed:
        conn.executemany("DELETE FROM lineage WHERE child_pk = ?", [(item.pk,) for item in changed])
    rows = _lineage_rows((*changes.new, *changed))
    if rows:
        insert_rows(conn, "INSERT OR REPLACE INTO lineage (base_id, child_pk, relation)", rows)


def _write_further_bases(conn: sqlite3.Connection, changes: PageChanges) -> None:
    """A bulk load's lineage waits in lineage_pending; each model's first base is copied from its row there."""
    rows = _lineage_rows(changes.new, first_base=1)
    if rows:
        insert_rows(conn, "INSERT INTO lineage_pending (base_id, child_pk, relation)", rows)


_UNIQUE_INDEX = re.compile(r"\s*CREATE\s+UNIQUE\s", re.IGNORECASE)
# sqlite_master keeps each statement as it was written.
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?", re.IGNORECASE)


def defer_indexes(conn: sqlite3.Connection, kind: Kind) -> list[str]:
    """Drop an empty kind table's indexes for a bulk load; returns their definitions.

    Building an index once from sorted rows costs a fifth of keeping it in step
    row by row. That includes the unique id index: while the table is loaded
    with `write_page(bulk=True)` nothing looks rows up by id, and
    `restore_indexes` keeps the latest copy of any id that came twice before it
    builds the index. Full-text entries follow the load every BULK_CATCH_UP_ROWS
    rows (see migration m0012 and `_catch_up_bulk_rows`), so keyword search finds
    the kind's rows in steps; lineage waits for the end.
    The caller commits the definitions with the drop (crawl_state), so a crash
    mid-load still restores them.
    """
    conn.execute(
        f"INSERT OR REPLACE INTO fts_pending (kind, from_pk) "
        f"SELECT ?, coalesce(max(pk), 0) + 1 FROM {kind.table}", (kind.code,),
    )
    tables = (kind.table, "lineage") if kind is Kind.MODEL else (kind.table,)  # lineage is empty with models
    rows = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({','.join('?' * len(tables))}) "
        "AND sql IS NOT NULL",
        tables,
    ).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def restore_indexes(conn: sqlite3.Connection, kind: Kind, definitions: Sequence[str]) -> None:
    """End a bulk load: full-text entries and lineage are written, then the indexes built, unique ones last."""
    from_pk = _fts_pending_from(conn, kind)
    if from_pk is not None:
        _catch_up_bulk_rows(conn, kind, from_pk, None)
    with _cache_kib(conn, SORT_CACHE_KIB):
        if kind is Kind.MODEL:
            conn.execute("INSERT OR REPLACE INTO lineage (base_id, child_pk, relation) "
                         "SELECT base_id, child_pk, relation FROM lineage_pending ORDER BY base_id, child_pk")
            conn.execute("DELETE FROM lineage_pending")
        for sql in sorted(definitions, key=lambda sql: bool(_UNIQUE_INDEX.match(sql))):
            statement = _CREATE_INDEX.sub(r"CREATE \1INDEX IF NOT EXISTS ", sql, count=1)
            try:
                conn.execute(statement)
            except sqlite3.IntegrityError:
                _drop_duplicate_ids(conn, kind)
                conn.execute(statement)


# SQLite sorts rows for CREATE INDEX and ORDER BY in runs as large as the page cache, then
# merges the runs. Runs of 4 MB stay in the CPU's caches: at 1M models the index builds took
# ~25% less CPU than with the 64 MB cache every connection has (2, 8 and 16 MB: 4% better,
# 10% and 20% worse than 4), when the runs go to temporary files (the crawler's temp_store).
SORT_CACHE_KIB = 4096


@contextmanager
def _cache_kib(conn: sqlite3.Connection, kib: int) -> Iterator[None]:
    """The connection's page cache for the length of the block (a setting of the connection, not stored)."""
    before = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{kib}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {before}")


# FTS5 gathers new terms in memory up to its `hashsize` before it writes them out as a segment
# that later merges rewrite. While a bulk load's entries are built in one statement, 1M
# models fit in one segment at this size: 7.5 CPU-s against 9.3 at the 8 MB the crawler's
# pages use (m0011), and one segment for queries to read instead of seven, for ~250 MB more
# memory for the length of the statement (bench/crawl.py).
BULK_FTS_PENDING_BYTES = 256 * 1024 * 1024
FTS5_DEFAULT_PENDING_BYTES = 1024 * 1024


@contextmanager
def _fts_pending_bytes(conn: sqlite3.Connection, size: int) -> Iterator[None]:
    """The FTS `hashsize` setting for the length of the block (it is stored, so it is put back)."""
    row = conn.execute("SELECT v FROM search_fts_config WHERE k = 'hashsize'").fetchone()
    conn.execute("INSERT INTO search_fts (search_fts, rank) VALUES ('hashsize', ?)", (size,))
    try:
        yield
    finally:
        conn.execute("INSERT INTO search_fts (search_fts, rank) VALUES ('hashsize', ?)",
                     (row[0] if row else FTS5_DEFAULT_PENDING_BYTES,))


def _drop_duplicate_ids(conn: sqlite3.Connection, kind: Kind) -> None:
    """Keep the newest row of each id loaded twice (another writer stored it while the index was deferred).

    Deleting a row takes its FTS entry and embedding job with it (triggers); its lineage goes here.
    """
    older = [pk for (pk,) in conn.execute(
        f"SELECT pk FROM (SELECT pk, row_number() OVER (PARTITION BY id ORDER BY pk DESC) AS copy "
        f"FROM {kind.table}) WHERE copy > 1"
    )]
    conn.executemany(f"DELETE FROM {kind.table} WHERE pk = ?", [(pk,) for pk in older])
    if kind is Kind.MODEL:
        conn.executemany("DELETE FROM lineage WHERE child_pk = ?", [(pk,) for pk in older])


def mark_unseen_deleted(conn: sqlite3.Connection, kind: Kind, sync_started_at: str, now: str) -> int:
    """After a complete full sync: whatever it did not see is gone from the Hub."""
    cursor = conn.execute(
        f"UPDATE {kind.table} SET deleted_at = ? WHERE deleted_at IS NULL AND last_seen < ?",
        (now, sync_started_at),
    )
    return cursor.rowcount


def mark_deleted(conn: sqlite3.Connection, kind: Kind, item_id: str, now: str) -> bool:
    cursor = conn.execute(
        f"UPDATE {kind.table} SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL", (now, item_id)
    )
    return cursor.rowcount > 0
