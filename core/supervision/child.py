"""A supervised child: `python -m core.supervision.child crawler|embedder|api|idle [options]`.

Started by the supervisor as a fresh interpreter (no inherited SQLite handle,
no inherited event loop). It makes sure it never outlives the supervisor:
PR_SET_PDEATHSIG (SIGKILL when the parent dies), a parent-pid check right after
setting it (the parent may have died before), and a thread that keeps checking
(the death signal is tied to the parent *thread* that forked us, and is lost if
we are re-parented in a way prctl does not see). It beats, turns SIGTERM/SIGINT
into a stop event (finish the current unit, then exit), and SIGHUP into a
config reload applied in place, so running tasks see new watch lists.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from core.config import Config, load_config
from core.logs import configure_logging
from core.supervision.heartbeat import IDLE, RUNNING, Heartbeat, heartbeat_path
from core.supervision.settings import load_settings

log = structlog.get_logger("core.supervision.child")

SUPERVISOR_PID_ENV = "PROMETHEUS_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 0.5

# child name → (module, function it runs, adapter to a (config, args, stop) call).
Target = Callable[[Config, argparse.Namespace, asyncio.Event], Awaitable[Any]]


def _crawler(module: Any) -> Target:
    return lambda config, args, stop: module.run_crawl_service(config, stop)


def _embedder(module: Any) -> Target:
    return lambda config, args, stop: module.run_worker(config, stop)


def _api(module: Any) -> Target:
    def target(config: Config, args: argparse.Namespace, stop: asyncio.Event) -> Awaitable[Any]:
        host = args.host or config.api_host
        port = args.port if args.port is not None else config.api_port
        return module.run_api(config, host, port, stop, insecure=args.insecure)
    return target


CHILDREN: dict[str, tuple[str, str, Callable[[Any], Target]]] = {
    "crawler": ("core.crawl_service", "run_crawl_service", _crawler),
    "embedder": ("core.embedder", "run_worker", _embedder),
    "api": ("core.api.server", "run_api", _api),
}
BACKGROUND_CHILDREN = ("crawler", "embedder")
TEST_CHILDREN = ("idle",)  # beats and waits: for supervisor tests and the restart bench


def lower_priority(nice: int) -> int:
    """Raise this process's niceness to `nice` (never lower it: that needs privileges); the result.
    Threads started afterwards (torch's, SQLite's) inherit it."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


def run_dir(config: Config) -> Any:
    return config.data_dir / "run"


def die_with_parent(parent_pid: int) -> bool:
    """Arrange to be killed when the supervisor dies. False: it is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watcher thread below still applies
    if os.getppid() != parent_pid:
        return False

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_SECONDS)
        # Orphaned: take anything we started with us (we lead our own process group).
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return True


def _resolve(name: str) -> Target | None:
    """The child's work; None for the test child, which only beats."""
    if name not in CHILDREN:
        return None
    module_name, _function, adapt = CHILDREN[name]
    return adapt(importlib.import_module(module_name))


def reload_into(config: Config, args: argparse.Namespace) -> None:
    """Re-read the config into the same object, so every task holding it sees the new values."""
    try:
        fresh = load_config(args.data_dir, args.config)
    except Exception as exc:  # a bad edit must not kill a running child
        log.error("config_reload_failed", error=str(exc))
        return
    for f in dataclasses.fields(Config):
        if f.name in ("data_dir", "database_path", "config_path"):
            continue  # moving the database under a running child is a restart, not a reload
        setattr(config, f.name, getattr(fresh, f.name))
    alerts = sys.modules.get("core.alerts")  # loaded in this child: re-read its watches now, not at its next poll
    if alerts is not None and hasattr(alerts, "reload_watches"):
        try:
            alerts.reload_watches(config)
        except Exception as exc:
            log.error("watch_reload_failed", error=str(exc))
    log.info("config_reloaded")


async def serve(name: str, target: Target | None, config: Config, args: argparse.Namespace,
                heartbeat: Heartbeat, grace: float) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_into, config, args)
    ticker = asyncio.create_task(heartbeat.tick_loop())
    try:
        if target is None:
            heartbeat.phase = IDLE
            await stop.wait()
            return 0
        heartbeat.phase = RUNNING
        work = asyncio.ensure_future(target(config, args, stop))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            # Stop requested: the work finishes its unit (page, batch, request) and returns.
            try:
                await asyncio.wait_for(asyncio.shield(work), max(0.5, grace - 1.0))
            except TimeoutError:
                log.warning("child_stop_slow", child=name)
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            return 0
        stopped.cancel()
        work.result()  # raises what the work raised: the supervisor sees a non-zero exit
        if stop.is_set():
            return 0
        log.warning("child_work_returned", child=name)
        return 0
    finally:
        ticker.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="core.supervision.child")
    parser.add_argument("child", choices=[*CHILDREN, *TEST_CHILDREN])
    parser.add_argument("--data-dir")
    parser.add_argument("--config")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--insecure", action="store_true")
    args = parser.parse_args(argv)

    parent = os.environ.get(SUPERVISOR_PID_ENV)
    if parent and not die_with_parent(int(parent)):
        return 0  # the supervisor died while we started: nobody to work for
    configure_logging(component=args.child)
    config = load_config(args.data_dir, args.config)
    settings = load_settings(config)
    heartbeat = Heartbeat(heartbeat_path(run_dir(config), args.child), settings.heartbeat_interval)
    heartbeat.start()
    nice = lower_priority(settings.background_nice) if args.child in BACKGROUND_CHILDREN else None
    log.info("child_started", child=args.child, pid=os.getpid(), nice=nice)
    # Import before the loop starts (torch, FAISS): slow, and judged against the start-up timeout.
    target = _resolve(args.child)
    try:
        code = asyncio.run(serve(args.child, target, config, args, heartbeat, settings.shutdown_grace))
    except Exception:
        log.exception("child_failed", child=args.child)
        return 1
    finally:
        heartbeat.stop()
    log.info("child_stopped", child=args.child, code=code)
    return code


if __name__ == "__main__":
    sys.exit(main())
