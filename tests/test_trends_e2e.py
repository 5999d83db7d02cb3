"""End to end over loopback HTTP: crawl the fake Hub, move a few counters, sweep, and see exactly those on top."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

import core.hub.fake
from core import trends as tr
from core.hub.client import HubClient
from core.kinds import Kind
from core.store import connect
from tests.conftest import cli_env, run_cli
from tests.test_trends import _model, crawl

needs_fake_hub = pytest.mark.skipif(not hasattr(core.hub.fake, "FakeHub"), reason="fake Hub not built yet")

CORPUS = {"models": 120, "datasets": 20, "spaces": 20, "papers": 0, "seed": 5}


def _ids(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM models ORDER BY downloads, id")]
    finally:
        conn.close()


@needs_fake_hub
async def test_crawl_move_sweep_trends(hub_thread, data_dir: Path) -> None:
    hub = hub_thread(**CORPUS)
    env = cli_env(data_dir, hub.url)
    first = run_cli("crawl", "--json", env=env)
    assert first.returncode == 0, first.stderr
    db = data_dir / "prometheus.db"
    ids = _ids(db)
    movers = {ids[0]: (50_000, 300), ids[1]: (20_000, 900), ids[2]: (9_000, 40)}
    conn = connect(db)
    before = {i: tuple(conn.execute("SELECT downloads, likes FROM models WHERE id = ?", (i,)).fetchone())
              for i in movers}
    conn.close()
    for repo_id, (downloads, likes) in movers.items():
        hub.call("update_repo", "models", repo_id, downloads=before[repo_id][0] + downloads,
                 likes=before[repo_id][1] + likes)

    await asyncio.sleep(1.05)  # snapshots have one-second resolution
    # Counter changes do not bump lastModified: an incremental sync misses them, the hot sweep does not.
    async with HubClient(hub.url) as client:
        result = await tr.hot_sweep(client, db, pages=1)
    assert result["requests"] == 8 and result["updated"] >= 3

    out = run_cli("trends", "--json", "--window", "24h", env=env)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert [r["id"] for r in results] == list(movers)  # by downloads/day: exactly those, in order
    assert results[0]["downloads"] == before[ids[0]][0] + 50_000
    likes = json.loads(run_cli("trends", "--json", "--by", "likes", env=env).stdout)["results"]
    assert [r["id"] for r in likes] == [ids[1], ids[0], ids[2]]
    table = run_cli("trends", "--by", "rising", env=env)
    assert table.returncode == 0 and ids[0] in table.stdout

    hist = json.loads(run_cli("history", ids[0], "--json", env=env).stdout)
    assert [p["downloads"] for p in hist["points"]][-1] == before[ids[0]][0] + 50_000 and len(hist["points"]) == 2
    missing = run_cli("history", "no/such-repo", env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "main.py history: error: no item 'no/such-repo' in the mirror"
    assert run_cli("trends", "--window", "2w", env=env).returncode == 2


def test_no_second_snapshot_no_velocity(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    crawl(conn, tr.epoch("2025-06-01T00:00:00.000Z"), [_model("only/once", 10, 1)])
    pk = conn.execute("SELECT pk FROM models").fetchone()[0]
    at = tr.epoch("2025-06-01T00:00:00.000Z")
    assert tr.velocity(tr.item_series(conn, Kind.MODEL, pk), at - tr.DAY, at + 60, last_seen=at) is None
    assert tr.trends(conn, tr.TrendQuery.parse(by="rising"), now=at + 60) == []


def test_cli_on_recorded_history(data_dir: Path) -> None:
    conn = connect(data_dir / "prometheus.db")
    now = int(time.time())
    crawl(conn, now - 3 * 3600, [_model("q/base"), _model("x/ft", 5, 1, tags=["base_model:q/base"]), _model("y/z")])
    crawl(conn, now - 60, [_model("q/base", 3), _model("x/ft", 500, 9, tags=["base_model:q/base"]), _model("y/z")])
    conn.close()
    env = cli_env(data_dir)
    out = run_cli("trends", "--json", "--base-model", "q/base", env=env)
    assert out.returncode == 0, out.stderr
    assert [r["id"] for r in json.loads(out.stdout)["results"]] == ["x/ft"]
    table = run_cli("trends", env=env)
    assert table.stdout.splitlines()[2].split()[1] == "x/ft"
    assert "q/base" in run_cli("history", "q/base", env=env).stdout
    bad = run_cli("trends", "--type", "datasets", "--base-model", "q/base", env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
