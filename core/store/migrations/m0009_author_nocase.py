"""Author filters in search match case-insensitively (`author = ? COLLATE NOCASE`, core/search.py).

The `{table}_author` index of m0001 is BINARY, which such a comparison cannot use, so
every author-filtered search without query text scanned its whole table. Exact-author
lookups (API lists, trends) keep the BINARY index.
"""

from __future__ import annotations

import sqlite3

from core.kinds import REPO_KINDS


def apply(conn: sqlite3.Connection) -> None:
    for kind in REPO_KINDS:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {kind.table}_author_nocase ON {kind.table}(author COLLATE NOCASE)")
