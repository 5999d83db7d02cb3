"""/health's embedding-queue check: counts capped (a lower bound past the cap), parked jobs still degrade."""

from __future__ import annotations

from pathlib import Path

import pytest

import core.api.health as health
from core.api.health import DEGRADED, OK, check_embedding
from core.store import connect, write_tx
from core.store.db import utcnow
from tests.search_helpers import make_config


def _enqueue(conn, keys: range, parked: int) -> None:
    with write_tx(conn):
        conn.executemany("INSERT INTO embed_jobs (doc_key, text_hash, enqueued_at, parked) VALUES (?, 'h', ?, ?)",
                         [(key, utcnow(), parked) for key in keys])


def test_queue_counts_are_exact_below_the_cap_and_a_flagged_bound_above(data_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(data_dir)
    conn = connect(config.db_path)
    check = check_embedding(conn, config)
    assert (check.status, check.detail) == (OK, {"queue_pending": 0, "queue_parked": 0,
                                                 "queue_counts_capped": False})
    _enqueue(conn, range(1, 8), parked=0)
    monkeypatch.setattr(health, "QUEUE_COUNT_CAP", 10)
    assert check_embedding(conn, config).detail["queue_pending"] == 7
    monkeypatch.setattr(health, "QUEUE_COUNT_CAP", 5)
    check = check_embedding(conn, config)
    assert check.status == OK
    assert check.detail == {"queue_pending": 5, "queue_parked": 0, "queue_counts_capped": True}
    _enqueue(conn, range(100, 107), parked=1)
    check = check_embedding(conn, config)
    assert check.status == DEGRADED
    assert check.detail["queue_parked"] == 5 and check.problems == ["5+ embedding jobs parked after repeated failures"]
    report = health.health(conn, config)
    assert report["checks"]["embedding_queue"]["queue_counts_capped"] is True
    assert report["status"] in (DEGRADED, "unhealthy")
    conn.close()
