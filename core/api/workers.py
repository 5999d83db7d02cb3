"""Several API processes on one port, so searches use more than one core.

One asyncio process holds the GIL for everything but the SQLite calls themselves: under load, the
Python half of each search (building hits, JSON, HTML) queues behind the others. With `workers` > 1
the process that `run_api` runs in binds the port with SO_REUSEPORT and starts `workers - 1` more
processes (fresh interpreters: multiprocessing's spawn) that bind the same address; the kernel
spreads new connections across them. The first process stays the one the supervisor (or the shell)
knows: it restarts a worker that dies, and on stop it stops them all and waits for them.

Each process has its own reader pool, search engine, result cache and rate-limit counters (a client
spread over several connections can get up to `workers` times its limit), and its own request
histograms in /metrics; everything /metrics reads from the database is the same in all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

from core.config import Config

log = structlog.get_logger(__name__)

MAX_WORKERS = 64
PARENT_CHECK_SECONDS = 0.5
RESTART_DELAY_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 60.0
_SPAWN = multiprocessing.get_context("spawn")  # fresh interpreters: no event loop or threads inherited
_PR_SET_PDEATHSIG = 1


def auto_workers(cpus: int | None = None) -> int:
    """One process per core, at most 4: 4 on the 4-core reference VM.

    The SQLite half of a search runs without the GIL, but the Python half (planning, building hits,
    JSON, HTML) of every request in a process queues for that process's one GIL: at ~90 req/s one
    process used 0.8 of a core, and its p99 was mostly waiting. Measured on 2 cores (bench/api.py,
    1M items, crawler writing, 100 clients at 1 s think time): p99 104-139 ms with 1 process, 80-100
    ms with 2; with no think time, 195 -> 346 req/s. Each process has its own result cache and query
    encoder (a worker's RSS was 156 MiB there); the vector index is mapped, its pages shared.
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(4, cpus))


def worker_count(raw: dict[str, Any]) -> int:
    """`api.workers` in the config file: a number of processes, or "auto" (the default)."""
    value = (raw.get("api") or {}).get("workers", "auto")
    if value == "auto" or value is None:
        return auto_workers()
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        log.warning("api_workers_invalid", value=value, using="auto")
        return auto_workers()
    return value


@dataclass
class WorkerPool:
    config: Config
    host: str
    port: int
    insecure: bool
    count: int  # extra processes, besides the one running the pool
    _workers: list[tuple[BaseProcess, Any]] = field(default_factory=list)  # each with its "listening" Event
    _stopping: bool = False

    def start(self) -> None:
        # Started from the event-loop thread: a worker's death signal follows the thread that made it.
        for _ in range(self.count):
            self._workers.append(self._spawn())

    def wait_listening(self, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """Block until every worker listens (or `timeout`); whether they all do.

        The kernel spreads a connection over the processes listening when it is opened, and a
        keep-alive connection stays where it landed: clients that connect while only the first
        process listens would all stay on it.
        """
        deadline = time.monotonic() + timeout
        for proc, listening in self._workers:
            while not listening.wait(0.1):
                if not proc.is_alive() or time.monotonic() > deadline:
                    return False
        return True

    def _spawn(self) -> tuple[BaseProcess, Any]:
        listening = _SPAWN.Event()
        proc = _SPAWN.Process(target=worker_main, name="api-worker", daemon=True,
                              args=(self.config, self.host, self.port, self.insecure, os.getpid(), listening))
        proc.start()
        log.info("api_worker_started", pid=proc.pid)
        return proc, listening

    async def keep_running(self) -> None:
        """Replace workers that die (a crash, the OOM killer) until `stop`."""
        while not self._stopping:
            await asyncio.sleep(RESTART_DELAY_SECONDS)
            for i, (proc, _) in enumerate(self._workers):
                if not self._stopping and not proc.is_alive():
                    log.warning("api_worker_died", pid=proc.pid, exitcode=proc.exitcode)
                    self._workers[i] = self._spawn()

    def stop(self, grace: float) -> None:
        """SIGTERM every worker (each drains its in-flight requests), then wait; blocking."""
        self._stopping = True
        procs = [proc for proc, _ in self._workers]
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace + 2
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("api_worker_stop_slow", pid=proc.pid)
                proc.kill()
                proc.join(5)


def _die_with_parent(parent_pid: int) -> None:
    """Stop (gracefully) when the first API process goes, however it goes."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def worker_main(config: Config, host: str, port: int, insecure: bool, parent_pid: int, listening: Any) -> None:
    """A worker process: serve the same app on the same port until SIGTERM."""
    from core.api.server import run_api
    from core.logs import configure_logging

    configure_logging("INFO", component="api")
    _die_with_parent(parent_pid)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if os.getppid() != parent_pid:
            return
        await run_api(config, host, port, stop, insecure=insecure, workers=1, reuse_port=True,
                      ready=lambda _url: listening.set())

    asyncio.run(serve())
