"""The Hub mirror: one table per kind, lineage, papers, FTS, crawl bookkeeping, embedding jobs."""

from __future__ import annotations

import sqlite3

from core.kinds import REPO_KINDS, Kind
from core.store.migrations import execute_script

_REPO_TABLE = """
CREATE TABLE {table} (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    hub_oid TEXT,
    name TEXT NOT NULL,
    author TEXT,
    description TEXT,
    downloads INTEGER NOT NULL DEFAULT 0,
    downloads_all_time INTEGER,
    likes INTEGER NOT NULL DEFAULT 0,
    trending_score REAL,
    tags TEXT NOT NULL DEFAULT '[]',
    pipeline_tag TEXT,
    library_name TEXT,
    sdk TEXT,
    sha TEXT,
    created_at TEXT,
    last_modified TEXT,
    private INTEGER NOT NULL DEFAULT 0,
    gated TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    license TEXT,
    base_model TEXT,
    base_relation TEXT,
    arxiv_ids TEXT,
    num_parameters INTEGER,
    quant_format TEXT,
    raw BLOB NOT NULL,  -- core.store.rawjson: compressed JSON as the Hub sent it
    meta_hash TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX {table}_author ON {table}(author);
CREATE INDEX {table}_created ON {table}(created_at);
CREATE INDEX {table}_modified ON {table}(last_modified);
CREATE INDEX {table}_downloads ON {table}(downloads);
CREATE INDEX {table}_likes ON {table}(likes);
CREATE TRIGGER {table}_fts_update AFTER UPDATE OF id, author, tags, description ON {table}
WHEN OLD.id IS NOT NEW.id OR OLD.author IS NOT NEW.author OR OLD.tags IS NOT NEW.tags
     OR OLD.description IS NOT NEW.description
BEGIN
    INSERT INTO search_fts(search_fts, rowid, name, author, tags, body)
    VALUES ('delete', ({code} << 40) | OLD.pk, OLD.id, OLD.author, OLD.tags, OLD.description);
    INSERT INTO search_fts(rowid, name, author, tags, body)
    VALUES (({code} << 40) | NEW.pk, NEW.id, NEW.author, NEW.tags, NEW.description);
END;
CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
    INSERT INTO search_fts(search_fts, rowid, name, author, tags, body)
    VALUES ('delete', ({code} << 40) | OLD.pk, OLD.id, OLD.author, OLD.tags, OLD.description);
END;
"""

_SCRIPT = """
-- One full-text index over every kind; rowid is the doc_key (kind code << 40 | pk).
-- Contentless: the text lives in the kind tables. Triggers keep it in step on update
-- and delete; new rows are indexed by `core.store.items.write_page` with one
-- INSERT ... SELECT per page, which costs a fifth of a per-row trigger.
CREATE VIRTUAL TABLE search_fts USING fts5(
    name, author, tags, body,
    content = '',
    tokenize = "unicode61 remove_diacritics 2",
    prefix = '3'
);

-- Model lineage: one row per (child, base); a merge has several bases.
CREATE TABLE lineage (
    base_id TEXT NOT NULL,
    child_pk INTEGER NOT NULL REFERENCES models(pk) ON DELETE CASCADE,
    relation TEXT,
    PRIMARY KEY (base_id, child_pk)
) WITHOUT ROWID;
CREATE INDEX lineage_child ON lineage(child_pk);

CREATE TABLE papers (
    pk INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    summary TEXT,
    authors TEXT NOT NULL DEFAULT '[]',
    published_at TEXT,
    upvotes INTEGER NOT NULL DEFAULT 0,
    num_comments INTEGER,
    submitted_by TEXT,
    ai_keywords TEXT NOT NULL DEFAULT '[]',
    github_repo TEXT,
    raw BLOB NOT NULL,  -- core.store.rawjson: compressed JSON as the Hub sent it
    meta_hash TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    deleted_at TEXT
);
CREATE INDEX papers_published ON papers(published_at);
CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, authors, ai_keywords, summary ON papers
WHEN OLD.title IS NOT NEW.title OR OLD.authors IS NOT NEW.authors
     OR OLD.ai_keywords IS NOT NEW.ai_keywords OR OLD.summary IS NOT NEW.summary
BEGIN
    INSERT INTO search_fts(search_fts, rowid, name, author, tags, body)
    VALUES ('delete', (4 << 40) | OLD.pk, OLD.title, OLD.authors, OLD.ai_keywords, OLD.summary);
    INSERT INTO search_fts(rowid, name, author, tags, body)
    VALUES ((4 << 40) | NEW.pk, NEW.title, NEW.authors, NEW.ai_keywords, NEW.summary);
END;
CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
    INSERT INTO search_fts(search_fts, rowid, name, author, tags, body)
    VALUES ('delete', (4 << 40) | OLD.pk, OLD.title, OLD.authors, OLD.ai_keywords, OLD.summary);
END;

-- A sync in progress. The next page's URL is written in the same transaction as
-- the page's rows, so a crash resumes exactly after the last committed page.
CREATE TABLE crawl_state (
    kind TEXT NOT NULL,
    mode TEXT NOT NULL,
    started_at TEXT NOT NULL,
    next_url TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    newest_seen TEXT,
    PRIMARY KEY (kind, mode)
);

CREATE TABLE crawl_history (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    mode TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    requests INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    error TEXT
);
CREATE INDEX crawl_history_kind ON crawl_history(kind, finished_at);

-- Where the last incremental sync stopped, per kind and sort field.
CREATE TABLE sync_watermarks (
    kind TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (kind, field)
) WITHOUT ROWID;

-- Work for the embedding worker: one row per item whose text changed.
CREATE TABLE embed_jobs (
    doc_key INTEGER PRIMARY KEY,
    text_hash TEXT NOT NULL,
    enqueued_at TEXT NOT NULL,
    lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    parked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX embed_jobs_claimable ON embed_jobs(parked, lease_until);
"""


def apply(conn: sqlite3.Connection) -> None:
    # search_fts must exist before the triggers that write to it.
    first, _, rest = _SCRIPT.partition("-- Model lineage")
    execute_script(conn, first)
    for kind in REPO_KINDS:
        execute_script(conn, _REPO_TABLE.format(table=kind.table, code=kind.code))
    execute_script(conn, "-- Model lineage" + rest)
    assert Kind.PAPER.code == 4  # the papers triggers above hard-code it
