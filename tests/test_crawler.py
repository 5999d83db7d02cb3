"""The crawler against the fake Hub over real loopback HTTP, through the real CLI."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from core.hub.fake import FaultConfig
from core.hub.records import parse_repo
from core.kinds import ALL_KINDS, Kind, doc_key
from core.store import connect
from core.store.rawjson import decode_raw
from tests.conftest import PROJECT_ROOT, cli_env, run_cli


def _ids(data_dir: Path, table: str, live: bool = True) -> set[str]:
    conn = sqlite3.connect(data_dir / "prometheus.db")
    where = " WHERE deleted_at IS NULL" if live else ""
    ids = {row[0] for row in conn.execute(f"SELECT id FROM {table}{where}")}
    conn.close()
    return ids


def _config(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values))
    return path


def _crawl(env: dict[str, str], *args: str) -> dict:
    result = run_cli("crawl", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_full_sync_mirrors_exact_id_sets(hub_thread, data_dir: Path) -> None:
    hub = hub_thread(models=6000, datasets=2500, spaces=2000, papers=300, seed=7)
    env = cli_env(data_dir, hub.url)
    summary = _crawl(env, "--mode", "full")
    assert set(summary) == {"models", "datasets", "spaces", "papers"}
    for kind in ALL_KINDS:
        expected = hub.call("ids", kind.plural)
        assert _ids(data_dir, kind.table) == expected, kind
        assert summary[kind.plural]["new"] == len(expected)
        assert set(summary[kind.plural]) == {"new", "updated", "deleted", "unchanged", "requests", "seconds"}
    assert sum(len(hub.call("ids", k.plural)) for k in ALL_KINDS) >= 10_000

    stats = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert stats["counts"] == {k.plural: len(hub.call("ids", k.plural)) for k in ALL_KINDS}
    assert all(stats["last_crawl"][k.plural]["status"] == "ok" for k in ALL_KINDS)

    # A second full sync changes nothing.
    again = _crawl(env, "--mode", "full", "--type", "models")
    assert again["models"]["new"] == 0 and again["models"]["updated"] == 0
    assert again["models"]["unchanged"] == len(hub.call("ids", "models"))


def test_incremental_sync_and_deletions(hub_thread, data_dir: Path) -> None:
    hub = hub_thread(models=3000, datasets=300, spaces=300, papers=50, seed=3)
    env = cli_env(data_dir, hub.url)
    _crawl(env, "--mode", "full")
    existing = sorted(hub.call("ids", "models"))
    hub.call("create_repo", "models", "acme/brand-new-model", tags=["text-generation"])
    hub.call("create_repo", "datasets", "acme/brand-new-data", description="A fresh corpus")
    hub.call("update_repo", "models", existing[10], tags=["retagged"])
    hub.call("delete_repo", "models", existing[20])

    summary = _crawl(env)  # incremental by default
    assert summary["models"]["new"] == 1 and summary["datasets"]["new"] == 1
    assert summary["models"]["updated"] >= 1
    # Incremental syncs read only what changed: far fewer requests than pages in the listing.
    assert summary["models"]["requests"] <= 2
    assert "acme/brand-new-model" in _ids(data_dir, "models")
    conn = sqlite3.connect(data_dir / "prometheus.db")
    tags = conn.execute("SELECT tags FROM models WHERE id = ?", (existing[10],)).fetchone()[0]
    assert "retagged" in tags

    # Deletions are only visible to a full sync, which marks them.
    full = _crawl(env, "--mode", "full", "--type", "models")
    assert full["models"]["deleted"] == 1
    assert existing[20] not in _ids(data_dir, "models")
    assert existing[20] in _ids(data_dir, "models", live=False)
    assert _ids(data_dir, "models") == hub.call("ids", "models")


def _crawl_state(db: Path) -> tuple[int, str | None] | None:
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(db, timeout=5)
        row = conn.execute("SELECT pages, next_url FROM crawl_state WHERE kind = 'model'").fetchone()
        conn.close()
        return row
    except sqlite3.OperationalError:
        return None


def test_kill_9_mid_sync_resumes_after_last_committed_page(hub_thread, data_dir: Path, tmp_path: Path) -> None:
    hub = hub_thread(models=4000, datasets=0, spaces=0, papers=0, seed=11,
                     faults=FaultConfig(slow_rate=1.0, slow_seconds=0.15))
    env = cli_env(data_dir, hub.url, PROMETHEUS_CONFIG=str(_config(tmp_path, page_size=100)))
    db = data_dir / "prometheus.db"
    killed_at_pages = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py"), "crawl", "--type", "models",
                                 "--mode", "full", "--json"], cwd=PROJECT_ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        before = (_crawl_state(db) or (0, None))[0]
        while time.monotonic() < deadline:
            state = _crawl_state(db)
            if state and state[0] >= before + 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        state = _crawl_state(db)
        assert state is not None and state[1], "the next page URL must be committed"
        killed_at_pages.append(state[0])
    assert killed_at_pages == sorted(killed_at_pages) and killed_at_pages[-1] >= 9

    requests_before = hub.hub.request_count
    summary = _crawl(env, "--type", "models", "--mode", "full")
    requests_after = hub.hub.request_count
    pages_total = 4000 // 100
    # Resumed: it fetched only the pages after the last committed one (+1 for the prefetch in flight).
    assert requests_after - requests_before <= pages_total - killed_at_pages[-1] + 1
    # The summary of a resumed sync counts the whole sync, the killed runs' pages included.
    assert summary["models"]["new"] == 4000
    assert _ids(data_dir, "models") == hub.call("ids", "models")
    assert _crawl_state(db) is None
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 4000
    # The first mirror was a bulk load with its indexes deferred across the kills; they are back.
    assert _index_names(conn, "models") == _index_names(connect(tmp_path / "fresh.db"), "models")
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT pk FROM models WHERE author = 'x' COLLATE NOCASE").fetchone()[3]
    assert "models_author_nocase" in plan
    # Full-text entries and lineage, written at the end of the load, cover every row once.
    fts_keys = [row[0] for row in conn.execute("SELECT rowid FROM search_fts WHERE rowid < (2 << 40)")]
    assert fts_keys == [doc_key(Kind.MODEL, pk) for (pk,) in conn.execute("SELECT pk FROM models ORDER BY pk")]
    lineage = conn.execute("SELECT count(*) FROM lineage").fetchone()[0]
    assert lineage > 0 and conn.execute("SELECT count(*) FROM lineage_pending").fetchone()[0] == 0
    assert lineage == sum(len(parse_repo(Kind.MODEL, decode_raw(raw)).base_models)
                          for (raw,) in connect(db).execute("SELECT raw FROM models"))  # finds the dictionaries


def _index_names(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
                                           (table,))}


async def _exhaust(url: str, calls: int) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(calls):
            async with session.get(f"{url}/api/models?limit=1") as response:
                await response.read()


@pytest.mark.timeout(180)
def test_survives_429_5xx_truncation_and_drops(hub_thread, data_dir: Path, tmp_path: Path) -> None:
    hub = hub_thread(models=2500, datasets=500, spaces=300, papers=100, seed=5, quota=60, window=2.0)
    config = _config(tmp_path, page_size=250, hub_retry_base_seconds=0.05, hub_max_attempts=12)
    env = cli_env(data_dir, hub.url, PROMETHEUS_CONFIG=str(config))
    asyncio.run(_exhaust(hub.url, 60))  # the crawl starts with the quota spent: its first answer is a 429
    hub.call("set_faults", FaultConfig(error_rate=0.15, truncate_rate=0.1, drop_rate=0.05, seed=1))
    limited_before = hub.hub.rate_limited_count
    _crawl(env, "--mode", "full")
    for kind in ALL_KINDS:
        assert _ids(data_dir, kind.table) == hub.call("ids", kind.plural), kind
    assert hub.hub.rate_limited_count > limited_before  # the 429 path really ran


def test_the_write_lock_is_free_whenever_the_event_loop_runs(hub_thread, data_dir: Path) -> None:
    """Work on the crawler's own event loop (hot sweep, watch poll) may block on the write lock.

    So a crawl must hold it only inside a write on its writer thread, never while it waits for
    pages: a transaction left open across pages would make such work wait for a commit that
    only the blocked loop could make (the sweep times out; with no timeout, the process hangs).
    """
    from core.crawler import FULL, Crawler
    from core.hub.client import HubClient

    hub = hub_thread(models=3000, datasets=0, spaces=0, papers=0, seed=5,
                     faults=FaultConfig(slow_rate=0.5, slow_seconds=0.05))
    db = data_dir / "prometheus.db"
    other = connect(db)
    other.execute("PRAGMA busy_timeout = 2000")
    other.execute("CREATE TABLE IF NOT EXISTS probe (at REAL)")
    progress: list[int] = []
    collecting: list[bool] = []

    async def main() -> int:
        client = HubClient(hub.url)
        crawler = Crawler(db, client, page_size=100, progress=lambda r: progress.append(r.pages))
        sync = asyncio.create_task(crawler.sync(Kind.MODEL, FULL))
        writes = 0
        while not sync.done():
            collecting.append(gc.isenabled())
            other.execute("BEGIN IMMEDIATE")  # blocks the loop, as a sweep's write would
            other.execute("INSERT INTO probe VALUES (?)", (time.time(),))
            other.execute("COMMIT")
            writes += 1
            await asyncio.sleep(0.01)
        result = await sync
        await client.close()
        crawler.close()
        assert result.new == 3000 and result.pages == 30
        return writes

    writes = asyncio.run(main())
    assert writes >= 10
    assert progress[-1] == 30 and progress == sorted(progress)
    assert _ids(data_dir, "models") == hub.call("ids", "models")
    # The cycle collector is off while pages are parsed, and back once the walk is over.
    assert not all(collecting) and gc.isenabled()


def test_items_of_unexpected_shapes_are_kept_as_far_as_they_go(hub_thread, data_dir: Path) -> None:
    """A page the fast parser rejects is parsed item by item, keeping what has the right type.

    Both places a page is prepared are covered: the writer thread (a full sync) and the
    event loop (an incremental sync, which must know where its walk ends).
    """
    hub = hub_thread(models=1500, datasets=0, spaces=0, papers=0, seed=5)
    hub.call("create_repo", "models", "odd/shapes", tags=["gguf", 7, None, "license:mit"], pipeline_tag=5,
             safetensors={"total": "big"})
    env = cli_env(data_dir, hub.url)

    def stored(repo_id: str) -> tuple:
        with sqlite3.connect(data_dir / "prometheus.db") as conn:
            return conn.execute("SELECT tags, pipeline_tag, num_parameters, quant_format, license FROM models "
                                "WHERE id = ?", (repo_id,)).fetchone()

    full = _crawl(env, "--mode", "full", "--type", "models")
    assert full["models"]["new"] == 1501
    assert _ids(data_dir, "models") == hub.call("ids", "models")
    assert stored("odd/shapes") == ('["gguf","license:mit"]', None, None, "gguf", "mit")

    hub.call("update_repo", "models", "odd/shapes", tags=["awq", {"not": "a tag"}])
    hub.call("create_repo", "models", "odd/newer", tags=[1.5, "mlx"])
    incremental = _crawl(env, "--mode", "incremental", "--type", "models")
    assert incremental["models"]["new"] == 1 and incremental["models"]["updated"] == 1
    assert stored("odd/shapes") == ('["awq"]', None, None, "awq", None)
    assert stored("odd/newer") == ('["mlx"]', None, None, "mlx", None)


def test_a_failing_hub_ends_the_crawl_with_one_line(hub_thread, data_dir: Path, tmp_path: Path) -> None:
    """Once the retries are spent the crawl says why in one line (no traceback) and exits 1; the next one works."""
    hub = hub_thread(models=50, datasets=0, spaces=0, papers=0)
    config = _config(tmp_path, hub_max_attempts=2, hub_retry_base_seconds=0.01)
    env = cli_env(data_dir, hub.url, PROMETHEUS_CONFIG=str(config))
    hub.call("set_faults", FaultConfig(error_rate=1.0, seed=1))  # every request answered 500, 502 or 503
    result = run_cli("crawl", "--json", "--type", "models", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("main.py crawl: error: models: GET ")
    assert json.loads(result.stdout) == {}
    hub.call("set_faults", FaultConfig())
    assert _crawl(env, "--type", "models")["models"]["new"] == 50
    with sqlite3.connect(data_dir / "prometheus.db") as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM crawl_history ORDER BY rowid")]
    assert statuses == ["failed", "ok"]


@pytest.mark.parametrize("command", [("stats",), ("search", "llama"), ("crawl", "--limit", "1")], ids=lambda c: c[0])
def test_a_data_dir_that_is_not_usable_gives_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    stranger = tmp_path / "prometheus.db"
    stranger.write_bytes(b"not a database, and it stays as it is")
    result = run_cli(*command, env=cli_env(tmp_path, "http://127.0.0.1:9"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"main.py {command[0]}: error: the database {stranger}: file is not a database"]
    assert stranger.read_bytes() == b"not a database, and it stays as it is"
    # A data directory that is a file cannot hold a database.
    result = run_cli(*command, env=cli_env(stranger))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"main.py {command[0]}: error: [Errno 17] File exists: '{stranger}'"]
