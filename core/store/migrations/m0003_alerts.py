"""Alerts: the outbox of detections, when each watch was first armed, and sender state."""

from __future__ import annotations

import sqlite3

from core.store.migrations import execute_script

_SCRIPT = """
-- One row per detection, written in the same transaction as the repo that caused it.
-- dedup_key = watch | kind | item id [| sha]: the UNIQUE constraint is what makes
-- "one message per release" hold across restarts and across the poll, the crawler
-- and the webhook path all seeing the same repo.
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    watch TEXT NOT NULL,
    mode TEXT NOT NULL,                       -- instant | digest
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    sha TEXT,
    event TEXT NOT NULL,                      -- new | commit
    group_key TEXT,                           -- base model or author, for flood grouping
    reason TEXT NOT NULL,                     -- the rule that matched, in words
    payload TEXT NOT NULL,                    -- what the message needs, as JSON
    hub_time TEXT,                            -- createdAt / lastModified on the Hub
    created_at TEXT NOT NULL,                 -- when we detected it
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | grouped | digested | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT,
    message_id INTEGER
);
CREATE INDEX alert_outbox_pending ON alert_outbox(status, mode, id);
CREATE INDEX alert_outbox_watch ON alert_outbox(watch, id);
CREATE INDEX alert_outbox_group ON alert_outbox(group_key, sent_at);

-- When each watch was first seen: repos created before it never alert.
CREATE TABLE alert_watches (
    name TEXT PRIMARY KEY,
    added_at TEXT NOT NULL
) WITHOUT ROWID;

-- Small key/value state: poll watermarks, digest times, sink cursors.
CREATE TABLE alert_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


def apply(conn: sqlite3.Connection) -> None:
    execute_script(conn, _SCRIPT)
