"""Keyword search walks each kind's popularity order for queries with very many matches.

Models and datasets have `downloads` and Spaces `likes` indexed already (m0001); papers
need `upvotes`.
"""

from __future__ import annotations

import sqlite3


def apply(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE INDEX IF NOT EXISTS papers_upvotes ON papers(upvotes)")
