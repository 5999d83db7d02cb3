"""Shared test fixtures: a fake Hub on loopback, a data directory, and the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT.parent / "shared" / "hub" / "fixtures"


class HubThread:
    """A FakeHub serving from its own thread and event loop.

    Tests that run the CLI with `subprocess.run` block their own thread, so the
    fake Hub must not live on the test's event loop. Mutations go through `call`,
    which runs them on the server's loop so they never race a request.
    """

    def __init__(self, **kwargs: Any) -> None:
        from core.hub.fake import FakeHub

        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.hub = FakeHub(**kwargs)
        self.url = ""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("fake hub did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self.url = self._loop.run_until_complete(self.hub.start("127.0.0.1", 0))
        self._ready.set()
        self._loop.run_forever()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def invoke() -> Any:
            return getattr(self.hub, method)(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.hub.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def hub_thread() -> Iterator[Callable[..., HubThread]]:
    started: list[HubThread] = []

    def start(**kwargs: Any) -> HubThread:
        hub = HubThread(**kwargs)
        started.append(hub)
        return hub

    yield start
    for hub in started:
        hub.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def cli_env(data_dir: Path, hub_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "TELEGRAM_", "HF_"))}
    env.update(PROMETHEUS_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if hub_url:
        env["HF_ENDPOINT"] = hub_url
    env.update(extra)
    return env


def child_pids(pid: int, *, recursive: bool = False) -> list[int]:
    """The processes whose parent is `pid` (and theirs, when `recursive`), from the process table.

    Not `psutil.Process.children()`: it drops a child whose start time, read off the wall
    clock, comes before its parent's, and a clock adjustment between the two readings makes
    that so for a child started within a second of its parent (psutil issue 2542). A test
    then missed an API worker it had just seen start.
    """
    by_parent: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        by_parent.setdefault(proc.info["ppid"], []).append(proc.pid)
    found: list[int] = []
    parents = [pid]
    while parents:
        for child in by_parent.get(parents.pop(), []):
            found.append(child)
            if recursive:
                parents.append(child)
    return found


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python main.py ...` for real and capture what a user would see."""
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "main.py"), *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
