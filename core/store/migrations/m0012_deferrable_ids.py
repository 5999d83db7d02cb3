"""Each kind's `id` is unique through a named index, which a first mirror can build at the end.

The inline `UNIQUE` of m0001 is an index SQLite never drops, and ids arrive in
random order: at 1M models, keeping it in step was the largest single cost of a
first mirror. As `CREATE UNIQUE INDEX {table}_id` it is deferred with the
others (core.store.items.defer_indexes) while every row is new.

SQLite cannot drop a column constraint, so each table is rebuilt. With foreign
keys on (they cannot be turned off inside this step's transaction), dropping
`models` would cascade into lineage: lineage is set aside and put back.

Lineage loses its foreign key: checking it looked up a random models row for
every lineage row (6 s of a first mirror of 1M models), and the one place that
deletes models rows (core.store.items) deletes their lineage itself.
`lineage_pending` takes a first mirror's lineage rows in arrival order; they move
into lineage, sorted, when the mirror's indexes are built.

The full-text entries of a first mirror are written at its end too, by one
statement: FTS5 writes out its pending terms at every statement that may roll
back, so one INSERT ... SELECT a page left a small segment a page, which
automerge then rewrote again and again (at 100K models ~11 µs an item against
~6.5). `fts_pending` says which rows wait: those of a kind from `from_pk` on.
The FTS triggers leave such rows alone, since their entries do not exist yet.
(Later, `core.store.items._catch_up_bulk_rows` moved `from_pk` on every 100,000 rows.)
"""

from __future__ import annotations

import sqlite3

from core.kinds import ALL_KINDS, Kind
from core.store.migrations import execute_script

_INLINE_UNIQUE = "id TEXT NOT NULL UNIQUE,"


def _schema_of(conn: sqlite3.Connection, table: str) -> tuple[str, list[str]]:
    """The table's CREATE statement, and those of its indexes and triggers."""
    (create,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    attached = [sql for (sql,) in conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL "
        "ORDER BY type, rowid", (table,),
    )]
    return create, attached


def _rebuild_with_id_index(conn: sqlite3.Connection, table: str) -> None:
    create, attached = _schema_of(conn, table)
    if _INLINE_UNIQUE not in create:
        raise RuntimeError(f"{table}: expected `{_INLINE_UNIQUE}` in {create!r}")
    rebuilt = create.replace(_INLINE_UNIQUE, "id TEXT NOT NULL,", 1).replace(
        f"CREATE TABLE {table} (", f"CREATE TABLE {table}_rebuilt (", 1)
    conn.execute(rebuilt)
    conn.execute(f"INSERT INTO {table}_rebuilt SELECT * FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
    for sql in attached:
        conn.execute(sql)
    conn.execute(f"CREATE UNIQUE INDEX {table}_id ON {table}(id)")


_LINEAGE = """
CREATE TABLE lineage (
    base_id TEXT NOT NULL,
    child_pk INTEGER NOT NULL,  -- models.pk
    relation TEXT,
    PRIMARY KEY (base_id, child_pk)
) WITHOUT ROWID;
CREATE INDEX lineage_child ON lineage(child_pk);
INSERT INTO lineage (base_id, child_pk, relation) SELECT base_id, child_pk, relation FROM temp.lineage_saved;
DROP TABLE temp.lineage_saved;
CREATE TABLE lineage_pending (base_id TEXT NOT NULL, child_pk INTEGER NOT NULL, relation TEXT);
"""


# What each kind puts in search_fts(name, author, tags, body), as in m0001.
_FTS_SOURCES = {
    Kind.MODEL: ("id", "author", "tags", "description"),
    Kind.DATASET: ("id", "author", "tags", "description"),
    Kind.SPACE: ("id", "author", "tags", "description"),
    Kind.PAPER: ("title", "authors", "ai_keywords", "summary"),
}

_FTS_TRIGGERS = """
DROP TRIGGER {table}_fts_update;
DROP TRIGGER {table}_fts_delete;
CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {columns} ON {table}
WHEN ({changed}) AND OLD.pk < coalesce((SELECT from_pk FROM fts_pending WHERE kind = {code}), 1 << 62)
BEGIN
    INSERT INTO search_fts(search_fts, rowid, name, author, tags, body)
    VALUES ('delete', ({code} << 40) | OLD.pk, {old});
    INSERT INTO search_fts(rowid, name, author, tags, body)
    VALUES (({code} << 40) | NEW.pk, {new});
END;
CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table}
WHEN OLD.pk < coalesce((SELECT from_pk FROM fts_pending WHERE kind = {code}), 1 << 62)
BEGIN
    INSERT INTO search_fts(search_fts, rowid, name, author, tags, body)
    VALUES ('delete', ({code} << 40) | OLD.pk, {old});
END;
"""


def _fts_triggers(kind: Kind) -> str:
    columns = _FTS_SOURCES[kind]
    return _FTS_TRIGGERS.format(
        table=kind.table, code=kind.code, columns=", ".join(columns),
        changed=" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns),
        old=", ".join(f"OLD.{c}" for c in columns), new=", ".join(f"NEW.{c}" for c in columns),
    )


def apply(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TEMP TABLE lineage_saved AS SELECT base_id, child_pk, relation FROM lineage")
    conn.execute("DROP TABLE lineage")
    for kind in ALL_KINDS:
        _rebuild_with_id_index(conn, kind.table)
    execute_script(conn, _LINEAGE)
    conn.execute("CREATE TABLE fts_pending (kind INTEGER PRIMARY KEY, from_pk INTEGER NOT NULL)")
    for kind in ALL_KINDS:
        execute_script(conn, _fts_triggers(kind))
