"""One author index per kind: the case-insensitive one of m0009 serves every author filter.

Hub user and organisation names are unique regardless of case, so the API's `author`
filter, trends and the priority list now compare with `COLLATE NOCASE` like search does,
and the BINARY `{table}_author` of m0001 goes. Each index of a kind table costs every
insert a B-tree insert, and a first mirror of 1M models ~1.8 s to build it.
"""

from __future__ import annotations

import sqlite3

from core.kinds import REPO_KINDS


def apply(conn: sqlite3.Connection) -> None:
    for kind in REPO_KINDS:
        conn.execute(f"DROP INDEX IF EXISTS {kind.table}_author")
