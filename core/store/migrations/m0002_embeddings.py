"""Embeddings: the vectors the worker computed, and a change log the FAISS index catches up from.

SQLite is the source of truth; the FAISS files in `data/embeddings/` are a cache
rebuilt from `embeddings`. `index_log` records every doc_key whose vector or
liveness changed, in commit order, so an index written at log position N is
brought up to date by replaying the entries after N (instead of a rebuild).
"""

from __future__ import annotations

import sqlite3

from core.kinds import ALL_KINDS
from core.store.migrations import execute_script

_SCRIPT = """
CREATE TABLE embeddings (
    doc_key INTEGER PRIMARY KEY,
    text_hash TEXT NOT NULL,      -- hash of the text the vector was computed from
    model TEXT NOT NULL,          -- a different model makes the vector stale
    vector BLOB NOT NULL,         -- float32, L2-normalised, little-endian
    updated_at TEXT NOT NULL
);

CREATE TABLE index_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_key INTEGER NOT NULL
);

CREATE TRIGGER embeddings_log_insert AFTER INSERT ON embeddings BEGIN
    INSERT INTO index_log (doc_key) VALUES (NEW.doc_key);
END;
CREATE TRIGGER embeddings_log_update AFTER UPDATE OF vector ON embeddings BEGIN
    INSERT INTO index_log (doc_key) VALUES (NEW.doc_key);
END;
CREATE TRIGGER embeddings_log_delete AFTER DELETE ON embeddings BEGIN
    INSERT INTO index_log (doc_key) VALUES (OLD.doc_key);
END;
"""

# A deleted item keeps its row (deleted_at) and its vector; the index must drop it,
# and take it back if the item reappears with the same text (no new embedding then).
_KIND_TRIGGERS = """
CREATE TRIGGER {table}_index_liveness AFTER UPDATE OF deleted_at ON {table}
WHEN OLD.deleted_at IS NOT NEW.deleted_at
BEGIN
    INSERT INTO index_log (doc_key) VALUES (({code} << 40) | NEW.pk);
END;
CREATE TRIGGER {table}_embedding_purge AFTER DELETE ON {table} BEGIN
    DELETE FROM embeddings WHERE doc_key = ({code} << 40) | OLD.pk;
    DELETE FROM embed_jobs WHERE doc_key = ({code} << 40) | OLD.pk;
END;
"""


def apply(conn: sqlite3.Connection) -> None:
    execute_script(conn, _SCRIPT)
    for kind in ALL_KINDS:
        execute_script(conn, _KIND_TRIGGERS.format(table=kind.table, code=kind.code))
    # Column weights for `ORDER BY rank`: name > author > tags > body.
    conn.execute("INSERT INTO search_fts(search_fts, rank) VALUES ('rank', 'bm25(10.0, 5.0, 3.0, 1.0)')")
