"""The API's result cache: repeated searches and lists are served from it, and a crawl's new items
still show up (on a real SQLite file, a real server and a real crawl of the fake Hub)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import pytest

from core.api.cache import REFRESH_BELOW, CachePolicy, ResultCache
from core.store import connect, write_tx
from tests.conftest import HubThread, child_pids, cli_env, run_cli
from tests.test_api import ApiServer, Mirror

NEW_WORD = "wombatglint"


def _lookups(server: ApiServer) -> dict[str, float]:
    text = server.get("/metrics").text
    return {m[0]: float(m[1]) for m in re.findall(r'hubmirror_api_cache_lookups_total\{result="(\w+)"\} (\S+)', text)}


@pytest.mark.parametrize("max_stale", [0, 1.0])
def test_new_item_appears_after_a_crawl(tmp_path: Path, max_stale: float) -> None:
    """max_stale 0 (and no revalidation window): strict, the first request after the crawl sees the
    new item. Otherwise the defaults' stale-while-revalidate: it shows up a request or so later."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    hub = HubThread(models=30, datasets=5, spaces=5, papers=5, seed=3)
    server = None
    try:
        env = cli_env(data_dir, hub.url)
        assert run_cli("crawl", "--mode", "full", env=env).returncode == 0
        cache = {"max_stale_seconds": max_stale} if max_stale else {"max_stale_seconds": 0, "revalidate_seconds": 0}
        server = ApiServer(Mirror(data_dir, cli_env(data_dir), ""),
                           config={"api": {"rate_limit": {"requests": 0}, "cache": cache}})
        list_path = "/models?sort=created&limit=5"
        for _ in range(3):
            assert server.get(f"/search/{NEW_WORD}").json()["results"] == []
            first_page = server.get(list_path).json()["items"]
        assert _lookups(server).get("hit", 0) >= 4  # the repeats were answered from the cache

        hub.call("create_repo", "models", f"zoo/{NEW_WORD}-1b", tags=[NEW_WORD])
        assert run_cli("crawl", "--type", "models", env=env).returncode == 0

        deadline = time.monotonic() + 60
        while True:
            found = [h["id"] for h in server.get(f"/search/{NEW_WORD}").json()["results"]]
            listed = server.get(list_path).json()["items"]
            # Each path is revalidated on its own: the search may turn fresh a request before the list.
            fresh = found and listed and listed[0]["id"] == f"zoo/{NEW_WORD}-1b"
            if fresh or time.monotonic() > deadline or max_stale == 0:
                break
            time.sleep(0.2)
        assert found == [f"zoo/{NEW_WORD}-1b"]
        assert listed[0]["id"] == f"zoo/{NEW_WORD}-1b" and listed != first_page
    finally:
        if server is not None:
            assert server.stop() == 0, "".join(server.stderr_lines)[-3000:]
        hub.stop()


def _db(tmp_path: Path) -> Path:
    path = tmp_path / "cache.db"
    conn = connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    conn.close()
    return path


def _write(path: Path, value: int) -> None:
    conn = connect(path)
    with write_tx(conn):
        conn.execute("INSERT INTO t VALUES (?)", (value,))
    conn.close()


def test_single_flight_errors_and_invalidation(tmp_path: Path) -> None:
    path = _db(tmp_path)

    async def scenario() -> None:
        cache = ResultCache(path, CachePolicy(max_entries=2, max_stale_seconds=0, revalidate_seconds=0))
        cache.open()
        calls: list[str] = []

        async def compute(name: str) -> str:
            calls.append(name)
            await asyncio.sleep(0.05)
            return f"value-{len(calls)}"

        # Four identical requests at once: one computation.
        values = await asyncio.gather(*(cache.get("a", lambda: compute("a")) for _ in range(4)))
        assert values == ["value-1"] * 4 and calls == ["a"]
        assert await cache.get("a", lambda: compute("a")) == "value-1"

        async def failing() -> str:
            raise ValueError("bad input")

        for _ in range(2):  # errors are not kept
            with pytest.raises(ValueError):
                await cache.get("bad", failing)
        assert len(cache) == 1

        await asyncio.to_thread(_write, path, 1)  # another connection commits
        assert await cache.get("a", lambda: compute("a")) == "value-2"
        await cache.get("b", lambda: compute("b"))
        await cache.get("c", lambda: compute("c"))  # over max_entries: the oldest ("a") goes
        assert len(cache) == 2
        assert await cache.get("a", lambda: compute("a")) == "value-5"
        cache.close()

    asyncio.run(scenario())


def test_stale_entries_are_served_only_within_max_stale(tmp_path: Path) -> None:
    path = _db(tmp_path)

    async def scenario() -> None:
        cache = ResultCache(path, CachePolicy(max_entries=10, max_stale_seconds=3600, revalidate_seconds=3600))
        cache.open()
        count = 0

        async def compute() -> int:
            nonlocal count
            count += 1
            return count

        assert await cache.get("k", compute) == 1
        await asyncio.to_thread(_write, path, 1)
        assert await cache.get("k", compute) == 1  # changed, but younger than max_stale
        assert count == 1

        # Past max_stale, within revalidate: the old answer at once, the new one computed meanwhile.
        cache.policy = CachePolicy(max_entries=10, max_stale_seconds=0, revalidate_seconds=3600)
        assert await cache.get("k", compute) == 1
        await asyncio.sleep(0.05)
        assert count == 2
        assert await cache.get("k", compute) == 2  # fresh again: the refresh saw the current version

        # Busy (other computations running): the stale answer, and no refresh competing with them.
        await asyncio.to_thread(_write, path, 2)
        gate = asyncio.Event()

        async def slow() -> int:
            await gate.wait()
            return -1

        busy = [asyncio.ensure_future(cache.get(f"busy-{i}", slow)) for i in range(REFRESH_BELOW)]
        await asyncio.sleep(0)
        assert await cache.get("k", compute) == 2
        await asyncio.sleep(0.05)
        assert count == 2
        gate.set()
        await asyncio.gather(*busy)

        await asyncio.to_thread(_write, path, 3)
        cache.policy = CachePolicy(max_entries=10, max_stale_seconds=0, revalidate_seconds=0)
        assert await cache.get("k", compute) == 3  # past both: computed before answering
        cache.close()

    asyncio.run(scenario())


def test_rows_bound_evicts_the_oldest(tmp_path: Path) -> None:
    path = _db(tmp_path)

    async def scenario() -> None:
        cache = ResultCache(path, CachePolicy(max_entries=100, max_rows=10))
        cache.open()

        async def page(n: int) -> list[int]:
            return list(range(n))

        await cache.get("a", lambda: page(4), rows=len)
        await cache.get("b", lambda: page(4), rows=len)
        assert len(cache) == 2
        await cache.get("c", lambda: page(4), rows=len)  # 12 rows > 10: "a" goes
        assert len(cache) == 2
        await cache.get("huge", lambda: page(50), rows=len)  # larger than the bound: not kept, nor the rest
        assert len(cache) == 0
        cache.close()

    asyncio.run(scenario())


def test_disabled_and_bad_config() -> None:
    assert not CachePolicy.from_config({"api": {"cache": {"entries": 0}}}).enabled
    assert CachePolicy.from_config({"api": {"cache": {"entries": "many"}}}) == CachePolicy()
    assert CachePolicy.from_config({"api": {"cache": {"max_stale_seconds": -1}}}) == CachePolicy()
    assert CachePolicy.from_config({"api": {"cache": {"max_stale_seconds": 9, "revalidate_seconds": 1}}}) \
        == CachePolicy()
    assert CachePolicy.from_config({"api": {"cache": {"max_stale_seconds": 60}}}).revalidate_seconds == 60
    assert CachePolicy.from_config({"api": {"cache": 5}}) == CachePolicy()
    assert CachePolicy.from_config({"api": {"cache": {"max_rows": -5}}}) == CachePolicy()
    assert CachePolicy.from_config({"api": {"cache": {"max_rows": 7}}}).max_rows == 7
    assert CachePolicy.from_config({}) == CachePolicy()


def test_unreadable_database_bypasses_the_cache(tmp_path: Path) -> None:
    async def scenario() -> None:
        cache = ResultCache(tmp_path / "missing" / "x.db")
        with pytest.raises(sqlite3.OperationalError):
            cache.open()
        assert await cache.get("k", _one) == 1  # no version: computed, never stored
        assert len(cache) == 0

    asyncio.run(scenario())


async def _one() -> int:
    return 1


def _children(pid: int) -> list[int]:
    import psutil

    alive = []
    for child_pid in child_pids(pid):
        try:  # a killed worker stays a zombie until the server reaps it; the resource tracker is not a worker
            child = psutil.Process(child_pid)
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                alive.append(child_pid)
        except psutil.Error:
            pass
    return alive


def test_workers_share_the_port_and_go_with_the_server(tmp_path: Path) -> None:
    import os
    import signal

    import psutil

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = ApiServer(Mirror(data_dir, cli_env(data_dir), ""), extra_args=("--workers", "3"),
                       config={"api": {"rate_limit": {"requests": 0}}})
    try:
        # Ready only once every process listens: the first clients' connections are spread too.
        workers = _children(server.process.pid)
        assert len(workers) == 2
        port = int(server.url.rsplit(":", 1)[1])

        def listening(pid: int) -> bool:
            return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
                       for c in psutil.Process(pid).net_connections("tcp"))

        assert all(map(listening, (server.process.pid, *workers)))  # all three on the one port
        for _ in range(12):  # fresh connections, spread by the kernel: every one is answered
            assert server.get("/health", headers={"Connection": "close"}).status_code in (200, 503)
        os.kill(workers[0], signal.SIGKILL)  # a crashed worker is replaced
        deadline = time.monotonic() + 60
        # One reading per turn: two could see the killed worker alive, then see it gone.
        while (len(alive := _children(server.process.pid)) < 2 or workers[0] in alive) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_children(server.process.pid)) == 2, "".join(server.stderr_lines)[-3000:]
        assert server.get("/health").status_code in (200, 503)
        workers = _children(server.process.pid)
    finally:
        assert server.stop() == 0, "".join(server.stderr_lines)[-3000:]
    for pid in workers:
        with pytest.raises(psutil.NoSuchProcess):
            psutil.Process(pid).wait(30)  # stopped with the server


def test_workers_flag_is_checked(tmp_path: Path) -> None:
    result = run_cli("serve", "--workers", "0", env=cli_env(tmp_path))
    assert result.returncode != 0 and "--workers" in result.stderr and "Traceback" not in result.stderr
