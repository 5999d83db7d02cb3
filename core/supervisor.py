"""The daemon's supervisor: runs the crawler, the embedding worker and the API as child processes.

One-for-one: a child that dies, freezes (stale heartbeat), stalls its event loop,
fails its health probe or grows past the RSS cap is stopped (SIGTERM, then
SIGKILL) and started again after its own exponential backoff. Past the intensity
limit the supervisor stops every child in reverse order and exits non-zero, so
systemd (Restart=on-failure, start limits) takes over. Every restart is a row in
`restarts`.

The event loop runs in the main thread and spawns every child from it: the
children's PR_SET_PDEATHSIG is tied to the thread that forked them, so a
worker thread must never spawn. SQLite writes go to one worker thread, so a
busy database never delays a heartbeat check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
import psutil
import structlog

from core.config import PROJECT_ROOT, Config
from core.store import connect
from core.store.db import utcnow
from core.supervision import records
from core.supervision.backoff import ChildBackoff, IntensityLimit
from core.supervision.child import SUPERVISOR_PID_ENV, run_dir
from core.supervision.heartbeat import IDLE, RUNNING, heartbeat_path, judge, read_beat
from core.supervision.sdnotify import Notifier
from core.supervision.settings import SupervisorSettings

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_GAVE_UP = 3  # systemd's Restart=on-failure restarts on any non-zero status
CHILD_ORDER = ("crawler", "embedder", "api")  # start order; stopped in reverse


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    health_url: str | None = None  # probed every check interval once the child beats


@dataclass
class Child:
    spec: ChildSpec
    backoff: ChildBackoff
    proc: subprocess.Popen[bytes] | None = None
    exited: asyncio.Future[None] | None = None
    spawned_at: float = 0.0
    started_at: str | None = None
    state: str = "stopped"
    restarts: int = 0
    last_reason: str | None = None
    next_slow_check: float = 0.0
    health_ok_once: bool = False
    health_failures: int = 0
    healthy: bool = False
    next_start: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def child_specs(args_for_child: Sequence[str], *, host: str, port: int,
                python: str = sys.executable) -> list[ChildSpec]:
    """The three production children, as fresh interpreters of this project."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "", "*") else "::1" if host == "::" else host
    if ":" in probe_host:
        probe_host = f"[{probe_host}]"
    base = [python, "-m", "core.supervision.child"]
    return [
        ChildSpec("crawler", [*base, "crawler", *args_for_child]),
        ChildSpec("embedder", [*base, "embedder", *args_for_child]),
        ChildSpec("api", [*base, "api", *args_for_child, "--host", host, "--port", str(port)],
                  health_url=f"http://{probe_host}:{port}/health"),
    ]


def describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def process_tree_rss(pid: int) -> int:
    """Resident bytes of a child and whatever it started."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for sub in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sub.memory_info().rss
        return total
    except psutil.Error:
        return 0


async def send_telegram(config: Config, text: str) -> bool:
    """One message to the configured chat; False when Telegram is not configured or unreachable."""
    if not (config.telegram_bot_token and config.telegram_chat_id):
        return False
    # TELEGRAM_API_BASE may be the server root or already end in /bot (as core.alerts.telegram reads it).
    base = (config.telegram_api_base or "https://api.telegram.org").rstrip("/")
    base = base if base.endswith("/bot") else base + "/bot"
    url = f"{base}{config.telegram_bot_token}/sendMessage"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.post(url, json={"chat_id": config.telegram_chat_id, "text": text}) as response:
            if response.status != 200:
                log.error("telegram_failed", status=response.status)
                return False
            return True
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.error("telegram_failed", error=str(exc))
        return False


def api_alive(report: Any) -> bool:
    """Whether a 503 from /health still shows a working API process.

    /health judges the whole mirror: it answers 503 when, say, the Hub has been
    down for hours and the crawl is stale. Restarting the API cannot fix that,
    and doing it on every probe would reach the intensity limit and stop the
    whole daemon because of a Hub outage. So a 503 counts against the API only
    when its own database check fails (or the body is not a health report).
    """
    if not isinstance(report, dict) or not isinstance(report.get("checks"), dict):
        return False
    database = report["checks"].get("database")
    return not (isinstance(database, dict) and database.get("status") == "unhealthy")


class Supervisor:
    def __init__(self, config: Config, settings: SupervisorSettings, specs: Sequence[ChildSpec], *,
                 notifier: Notifier | None = None, rng: random.Random | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.config = config
        self.settings = settings
        self.children = [Child(spec, ChildBackoff(settings.policy)) for spec in specs]
        self.notifier = notifier or Notifier()
        self.rng = rng or random.Random()
        self.intensity = IntensityLimit(settings.policy)
        self.run_dir = run_dir(config)
        self.exit_code = EXIT_OK
        self.gave_up: str | None = None
        self._env = dict(os.environ if env is None else env)
        self._stopping = asyncio.Event()
        self._ready_sent = False
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="supervisor-db")
        self._conn: sqlite3.Connection | None = None
        self._db_pending: set[asyncio.Future[Any]] = set()
        self._http: aiohttp.ClientSession | None = None

    # -- the database, off the event loop -----------------------------------------

    def _db(self, fn: Callable[..., None], **kwargs: Any) -> None:
        def call() -> None:
            try:
                if self._conn is None:
                    self._conn = connect(self.config.db_path)
                fn(self._conn, **kwargs)
            except sqlite3.Error as exc:  # bookkeeping must never take supervision down
                log.error("supervisor_db_failed", error=str(exc))

        future = asyncio.get_running_loop().run_in_executor(self._db_pool, call)
        self._db_pending.add(future)
        future.add_done_callback(self._db_pending.discard)

    def _record_state(self, child: Child) -> None:
        self._db(records.record_state, child=child.name, pid=child.pid, state=child.state,
                 started_at=child.started_at, restarts=child.restarts, last_reason=child.last_reason,
                 supervisor_pid=os.getpid())

    def _set_state(self, child: Child, state: str) -> None:
        if child.state != state:
            child.state = state
            self._record_state(child)

    # -- spawning and stopping -------------------------------------------------------

    def _spawn(self, child: Child) -> None:
        env = dict(self._env)
        env[SUPERVISOR_PID_ENV] = str(os.getpid())
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        # stdout to our stderr too: the children's logs reach journald through the fd we hold,
        # never through a pipe someone must read.
        child.proc = subprocess.Popen(child.spec.argv, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
                                      env=env, start_new_session=True, close_fds=True)
        child.spawned_at = time.monotonic()
        child.started_at = utcnow()
        child.next_slow_check = child.spawned_at + self.settings.check_interval
        child.health_ok_once = child.spec.health_url is None  # otherwise: once /health answers 200
        child.health_failures = 0
        child.healthy = False
        child.next_start = None
        child.exited = self._exit_future(child.proc)
        log.info("child_spawned", child=child.name, pid=child.proc.pid)
        child.state = "starting"
        self._record_state(child)  # always: the pid changed even if the state did not

    def _exit_future(self, proc: subprocess.Popen[bytes]) -> asyncio.Future[None] | None:
        """Resolves the moment the process exits (pidfd), so a crash is seen at once, not at the next tick."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            return None  # old kernel: exits are noticed by polling every tick
        future: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            proc.poll()  # reap it
            if not future.done():
                future.set_result(None)

        loop.add_reader(fd, on_exit)
        return future

    async def _wait_exit(self, child: Child, timeout: float) -> bool:
        proc = child.proc
        if proc is None or proc.poll() is not None:
            return True
        if child.exited is None:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
            return proc.poll() is not None
        try:
            await asyncio.wait_for(asyncio.shield(child.exited), timeout)
        except TimeoutError:
            pass
        return proc.poll() is not None

    def _signal(self, child: Child, sig: signal.Signals) -> None:
        if child.proc is None:
            return
        # The child leads its own process group: signal the group, so nothing it started survives it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.proc.pid, sig)

    async def _terminate(self, child: Child, grace: float) -> None:
        if child.proc is None:
            return
        if child.proc.poll() is None:
            self._signal(child, signal.SIGTERM)
            if not await self._wait_exit(child, grace):
                log.warning("child_sigkill", child=child.name, pid=child.proc.pid, grace=grace)
                self._signal(child, signal.SIGKILL)
                await self._wait_exit(child, 5.0)
        self._signal(child, signal.SIGKILL)  # stragglers in its group

    # -- watching ------------------------------------------------------------------

    async def _probe(self, child: Child) -> bool:
        assert child.spec.health_url
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=max(1.0, min(5.0, self.settings.check_interval))))
        try:
            async with self._http.get(child.spec.health_url) as response:
                if response.status == 200:
                    return True
                if response.status != 503:
                    return False
                report = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
            return False
        return api_alive(report)

    async def _slow_checks(self, child: Child, now: float, phase: str) -> str | None:
        """RSS and the HTTP health probe, every check interval."""
        assert child.proc is not None
        cap = self.settings.rss_cap_mb * 1024 * 1024
        if cap > 0:
            rss = await asyncio.to_thread(process_tree_rss, child.proc.pid)
            if rss > cap:
                log.warning("child_rss_over_cap", child=child.name, rss_mb=round(rss / 2**20),
                            cap_mb=self.settings.rss_cap_mb)
                return "rss_cap"
        if child.spec.health_url is None or phase == IDLE:
            child.health_ok_once = True  # nothing to probe: the beat is the health
            return None
        if phase != RUNNING:
            return None
        if await self._probe(child):
            child.health_ok_once = True
            child.health_failures = 0
            return None
        if not child.health_ok_once:
            return "health_startup_timeout" if now - child.spawned_at > self.settings.startup_timeout else None
        child.health_failures += 1
        log.warning("child_health_failed", child=child.name, failures=child.health_failures)
        return "health_failed" if child.health_failures >= self.settings.health_failures else None

    async def _watch(self, child: Child) -> tuple[str, int | None, str | None]:
        """Until the child must be restarted: (reason, exit code, detail)."""
        assert child.proc is not None
        path = heartbeat_path(self.run_dir, child.name)
        while True:
            if await self._wait_exit(child, self.settings.tick):
                code = child.proc.returncode
                return "exited", code, describe_exit(code)
            now = time.monotonic()
            beat = read_beat(path)
            reason = judge(beat, pid=child.proc.pid, now=now, spawned_at=child.spawned_at, settings=self.settings)
            detail = None
            if reason is None and beat is not None and beat.pid == child.proc.pid and now >= child.next_slow_check:
                child.next_slow_check = now + self.settings.check_interval
                reason = await self._slow_checks(child, now, beat.phase)
            if reason is None:
                healthy = (beat is not None and beat.pid == child.proc.pid and beat.phase in (RUNNING, IDLE)
                           and child.health_ok_once and child.health_failures == 0)
                child.healthy = healthy
                if healthy:
                    self._set_state(child, "idle" if beat and beat.phase == IDLE else "running")
                continue
            child.healthy = False
            if beat is not None and beat.pid == child.proc.pid:
                detail = f"last beat {now - beat.mono:.2f}s ago, phase {beat.phase}, loop lag {beat.lag:.2f}s"
            log.error("child_unhealthy", child=child.name, pid=child.proc.pid, reason=reason, detail=detail)
            frozen = reason in ("heartbeat_stale", "loop_stalled")
            await self._terminate(child, self.settings.hung_grace if frozen else self.settings.shutdown_grace)
            return reason, child.proc.returncode, detail

    async def _supervise(self, child: Child) -> None:
        while not self._stopping.is_set():
            try:
                self._spawn(child)
            except OSError as exc:  # out of processes or memory: a failed start, with backoff like any other
                child.proc, child.spawned_at = None, time.monotonic()
                reason, code, detail = "spawn_failed", None, str(exc)
            else:
                reason, code, detail = await self._watch(child)
            if self._stopping.is_set():
                break
            now, ended_at = time.monotonic(), utcnow()
            uptime = now - child.spawned_at
            delay = child.backoff.next_delay(uptime, self.rng)
            child.restarts += 1
            child.last_reason = reason
            over = self.intensity.record(now)
            log.warning("child_restart", child=child.name, pid=child.pid, reason=reason, exit=describe_exit(code),
                        uptime=round(uptime, 3), backoff=None if over else round(delay, 3),
                        recent_restarts=self.intensity.recent(now))
            self._db(records.record_restart, child=child.name, pid=child.pid, reason=reason, exit_code=code,
                     at=ended_at, uptime=uptime, backoff=None if over else delay, detail=detail,
                     keep_days=self.settings.restarts_keep_days)
            if over:
                self.gave_up = (f"{child.name} failed ({reason}, {describe_exit(code)}): more than "
                                f"{self.settings.policy.max_restarts} restarts in "
                                f"{self.settings.policy.window:g}s")
                self.exit_code = EXIT_GAVE_UP
                self._set_state(child, "gave_up")
                self._stopping.set()
                return
            child.next_start = now + delay
            self._set_state(child, "backoff")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    # -- systemd and status ---------------------------------------------------------

    def status_line(self) -> str:
        now = time.monotonic()
        parts = []
        for child in self.children:
            if child.state == "backoff" and child.next_start is not None:
                parts.append(f"{child.name} restarting in {max(0.0, child.next_start - now):.0f}s")
            else:
                parts.append(f"{child.name} {child.state}" + (f" pid {child.pid}" if child.state != "stopped" else ""))
            if child.restarts:
                parts[-1] += f" ({child.restarts} restarts)"
        return "; ".join(parts)

    async def _monitor(self) -> None:
        """systemd: READY=1 once every child is healthy, then WATCHDOG=1 and STATUS= each check."""
        interval = self.settings.check_interval
        if self.notifier.watchdog_seconds:
            interval = min(interval, self.notifier.watchdog_seconds / 3)
        interval = min(interval, self.settings.tick * 5)
        while not self._stopping.is_set():
            status = self.status_line()
            if not self._ready_sent and all(child.healthy for child in self.children):
                self._ready_sent = True
                log.info("supervisor_ready", status=status)
                self.notifier.ready(status)
            else:
                self.notifier.status(status)
            # Reaching here proves the loop turns and supervision runs (children in backoff included):
            # systemd restarts the service only when the supervisor itself is stuck.
            self.notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    # -- the whole run --------------------------------------------------------------

    def request_stop(self, signame: str) -> None:
        if not self._stopping.is_set():
            log.info("supervisor_stopping", signal=signame)
        self._stopping.set()

    def _supervise_ended(self, task: asyncio.Task[None]) -> None:
        # A bug in supervision must not leave a child unsupervised while the rest runs on.
        if not task.cancelled() and task.exception() is not None:
            log.error("supervise_task_failed", child=task.get_name(), error=repr(task.exception()))
            self.exit_code = self.exit_code or 1
            self._stopping.set()

    def reload(self) -> None:
        """SIGHUP: the children re-read the config (watch lists) in place; nothing restarts."""
        log.info("supervisor_reload")
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.proc.pid, signal.SIGHUP)

    async def stop_children(self) -> None:
        """Reverse start order, one shared grace period, then SIGKILL whatever is left."""
        deadline = time.monotonic() + self.settings.shutdown_grace
        for child in reversed(self.children):
            if child.proc is None:
                continue
            if child.proc.poll() is None:
                self._signal(child, signal.SIGTERM)
                if not await self._wait_exit(child, max(0.0, deadline - time.monotonic())):
                    log.warning("child_sigkill", child=child.name, pid=child.proc.pid)
                    self._signal(child, signal.SIGKILL)
                    await self._wait_exit(child, 5.0)
            self._signal(child, signal.SIGKILL)
            log.info("child_stopped", child=child.name, exit=describe_exit(child.proc.returncode))
            if child.state != "gave_up":
                self._set_state(child, "stopped")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log.info("supervisor_started", pid=os.getpid(), children=[c.name for c in self.children])
        tasks = [asyncio.create_task(self._supervise(child), name=child.name) for child in self.children]
        for task in tasks:
            task.add_done_callback(self._supervise_ended)
        monitor = asyncio.create_task(self._monitor())
        try:
            await self._stopping.wait()
        finally:
            self.notifier.stopping("giving up: " + self.gave_up if self.gave_up else "stopping")
            for task in (*tasks, monitor):
                task.cancel()
            await asyncio.gather(*tasks, monitor, return_exceptions=True)
            await self.stop_children()
            if self.gave_up:
                log.error("supervisor_gave_up", reason=self.gave_up)
                await send_telegram(self.config, f"PROMETHEUS daemon gave up on {os.uname().nodename}: "
                                                 f"{self.gave_up}. systemd will restart it.")
            if self._http is not None:
                await self._http.close()
            if self._db_pending:
                await asyncio.wait(set(self._db_pending), timeout=10)
            await loop.run_in_executor(self._db_pool, self._close_db)
            self._db_pool.shutdown(wait=True)
        log.info("supervisor_stopped", exit_code=self.exit_code)
        return self.exit_code

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
