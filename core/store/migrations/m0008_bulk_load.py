"""Faster first mirror: trained zstd dictionaries for raw JSON, indexes deferred during a bulk load.

`meta_hash` goes: a re-synced row is compared by its compressed bytes, and only
when those differ by its decoded JSON, so no hash has to be computed per item.
"""

from __future__ import annotations

import sqlite3

from core.kinds import ALL_KINDS
from core.store.migrations import execute_script

_SCRIPT = """
-- core.store.rawjson: one zstd dictionary per kind, trained on the mirror's first items.
-- id is a hash of data; every compressed blob names the dictionary it needs.
CREATE TABLE raw_dictionaries (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    samples INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- A full sync into an empty table drops the table's secondary indexes and builds them
-- once at the end (a sort instead of a million B-tree inserts). Their definitions wait
-- here, committed with the drop, so a crash mid-load still restores them.
ALTER TABLE crawl_state ADD COLUMN deferred_indexes TEXT;
"""


def apply(conn: sqlite3.Connection) -> None:
    execute_script(conn, _SCRIPT)
    for kind in ALL_KINDS:
        conn.execute(f"ALTER TABLE {kind.table} DROP COLUMN meta_hash")
