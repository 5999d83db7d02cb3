"""Counter history for trends: change-only snapshots, and the per-window trend cache.

`at` is unix seconds (INTEGER), not the Hub's text format used elsewhere: this
table grows by every counter change of every item, and an integer costs 4-5
bytes against 24 for the text, in the table and again in its time index. The
velocity arithmetic wants numbers anyway. `kind` is the kind's code (1-3), which
SQLite stores in the record header at zero bytes for 1.
"""

from __future__ import annotations

import sqlite3

from core.kinds import REPO_KINDS
from core.store.migrations import execute_script

_SCRIPT = """
-- One row per item each time its counters were seen to change (and when first seen).
-- The value holds until the next row: a step function with the change attributed
-- to the crawl that saw it.
CREATE TABLE snapshots (
    kind INTEGER NOT NULL,
    pk INTEGER NOT NULL,
    at INTEGER NOT NULL,
    downloads INTEGER NOT NULL,
    likes INTEGER NOT NULL,
    trending_score REAL,
    PRIMARY KEY (kind, pk, at)
) WITHOUT ROWID;
-- The rows inside a window (the secondary index carries pk too).
CREATE INDEX snapshots_at ON snapshots(kind, at);

-- Small bookkeeping: last snapshot write, compaction watermarks.
CREATE TABLE trend_state (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- Velocity per item for the standard windows, recomputed after crawls so that a
-- `trends` query is an index walk rather than a scan of the window's history.
CREATE TABLE trend_cache (
    kind INTEGER NOT NULL,
    win INTEGER NOT NULL,
    pk INTEGER NOT NULL,
    downloads_per_day REAL NOT NULL,
    likes_per_day REAL NOT NULL,
    rising REAL NOT NULL,
    start_downloads INTEGER NOT NULL,
    start_likes INTEGER NOT NULL,
    end_downloads INTEGER NOT NULL,
    end_likes INTEGER NOT NULL,
    span_days REAL NOT NULL,
    partial INTEGER NOT NULL,
    PRIMARY KEY (kind, win, pk)
) WITHOUT ROWID;
CREATE INDEX trend_cache_downloads ON trend_cache(kind, win, downloads_per_day);
CREATE INDEX trend_cache_likes ON trend_cache(kind, win, likes_per_day);
CREATE INDEX trend_cache_rising ON trend_cache(kind, win, rising);

CREATE TABLE trend_cache_runs (
    kind INTEGER NOT NULL,
    win INTEGER NOT NULL,
    computed_at INTEGER NOT NULL,
    through INTEGER NOT NULL,
    PRIMARY KEY (kind, win)
) WITHOUT ROWID;
"""


def apply(conn: sqlite3.Connection) -> None:
    execute_script(conn, _SCRIPT)
    # A mirror that predates this step gets a baseline: at `last_seen` each item
    # held its current counters. Without it the first change after the upgrade
    # would have nothing to be measured from.
    for kind in REPO_KINDS:
        conn.execute(
            f"INSERT OR IGNORE INTO snapshots (kind, pk, at, downloads, likes, trending_score) "
            f"SELECT {kind.code}, pk, CAST(strftime('%s', last_seen) AS INTEGER), downloads, likes, trending_score "
            f"FROM {kind.table} WHERE deleted_at IS NULL"
        )
