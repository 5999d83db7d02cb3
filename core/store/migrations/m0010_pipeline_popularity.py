"""Keyword search filtered by pipeline tag finds the most downloaded matches that carry it by walking
`{table}_pipeline_downloads` (core/search.py, `_fts_walk`).

The downloads index alone lists every item: when a pipeline tag is on few of a word's matches, the
walk read ~100 entries for each one that passed and gave up for a join reading every match (100-450 ms
at 1M). Partial: most datasets and Spaces have no pipeline tag. ~25 bytes an item that has one.

NOCASE, so that only a walk asking for it (`pipeline_tag = ? COLLATE NOCASE`) uses it: for a plain
`pipeline_tag = ?` the planner would pick it over the sort's own index and sort every item carrying the
tag (a list of text-generation models by likes: 300 ms instead of 0.1 at 1M).
"""

from __future__ import annotations

import sqlite3

from core.kinds import REPO_KINDS


def apply(conn: sqlite3.Connection) -> None:
    for kind in REPO_KINDS:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {kind.table}_pipeline_downloads "
                     f"ON {kind.table}(pipeline_tag COLLATE NOCASE, downloads) WHERE pipeline_tag IS NOT NULL")
