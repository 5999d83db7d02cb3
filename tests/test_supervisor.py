"""The supervisor: pure restart policy and health judgement, then real processes on real SQLite."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import load_config
from core.crawl_service import Plan, plan_sync
from core.crawler import FULL, INCREMENTAL
from core.kinds import ALL_KINDS, Kind
from core.supervision.backoff import (
    ChildBackoff,
    IntensityLimit,
    RestartPolicy,
    backoff_bound,
    backoff_curve,
    backoff_delay,
)
from core.supervision.heartbeat import IDLE, RUNNING, STARTING, Beat, judge
from core.supervision.sdnotify import Notifier
from core.supervision.settings import SupervisorSettings, load_settings
from core.supervisor import api_alive
from tests.conftest import child_pids, cli_env
from tests.supervisor_helpers import (
    FAST_WATCHDOG,
    HEALTH_CHILD,
    alive,
    child_states,
    idle_child,
    kill_tree,
    query,
    running_child,
    start_daemon,
    start_driver,
    stop_process,
    wait_for,
    write_config,
)

# -- pure: the restart policy ------------------------------------------------------------


def test_backoff_doubles_from_one_second_to_the_cap() -> None:
    assert backoff_curve(RestartPolicy(), 9) == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_backoff_jitter_stays_within_bounds_and_varies() -> None:
    policy = RestartPolicy(jitter=0.2)
    rng = random.Random(7)
    for n in range(10):
        base = min(60.0, 2.0 ** n)
        delays = {backoff_delay(policy, n, rng) for _ in range(50)}
        assert all(base * 0.8 - 1e-9 <= d <= min(60.0, base * 1.2) + 1e-9 for d in delays)
        assert max(delays) <= backoff_bound(policy, n)
        assert len(delays) > 1


def test_backoff_resets_after_a_stable_run() -> None:
    backoff = ChildBackoff(RestartPolicy(jitter=0))
    assert [backoff.next_delay(uptime=1) for _ in range(4)] == [1, 2, 4, 8]
    assert backoff.next_delay(uptime=299) == 16  # not stable long enough
    assert backoff.next_delay(uptime=300) == 1  # ran 5 minutes: a new incident
    assert backoff.next_delay(uptime=0.1) == 2


def test_intensity_limit_allows_ten_restarts_in_ten_minutes() -> None:
    limit = IntensityLimit(RestartPolicy())
    assert not any(limit.record(t * 10.0) for t in range(10))  # 10 restarts in 90 s
    assert limit.record(95.0)  # the 11th within the window


def test_intensity_limit_window_slides() -> None:
    limit = IntensityLimit(RestartPolicy(max_restarts=2, window=60))
    assert not limit.record(0)
    assert not limit.record(30)
    assert not limit.record(61)  # the first has left the window
    assert limit.record(62)
    assert limit.recent(62) == 3


# -- pure: health judgement ---------------------------------------------------------------


SETTINGS = SupervisorSettings(heartbeat_interval=1, heartbeat_timeout=2, loop_stall=30, startup_timeout=60)


@pytest.mark.parametrize(("beat", "now", "expected"), [
    (None, 10, None),  # not beating yet, within start-up time
    (None, 61, "startup_timeout"),
    (Beat(999, 10, RUNNING), 10.5, None),  # its predecessor's beat: ignored
    (Beat(42, 10, RUNNING), 11.9, None),
    (Beat(42, 10, RUNNING), 12.1, "heartbeat_stale"),
    (Beat(42, 10, IDLE), 12.1, "heartbeat_stale"),
    (Beat(42, 10, STARTING, lag=100), 10.5, None),  # a model load may block the loop at start-up
    (Beat(42, 61, STARTING), 61.5, "startup_timeout"),
    (Beat(42, 10, RUNNING, lag=29), 10.5, None),
    (Beat(42, 10, RUNNING, lag=31), 10.5, "loop_stalled"),
])
def test_judge(beat: Beat | None, now: float, expected: str | None) -> None:
    assert judge(beat, pid=42, now=now, spawned_at=0.0, settings=SETTINGS) == expected


def test_settings_from_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"watchdog": {"check_interval_seconds": 2, "heartbeat_interval_seconds": 1,
                                             "max_restarts": 4, "rss_cap_mb": 512}}))
    settings = load_settings(load_config(str(tmp_path), str(path), env={}))
    assert settings.check_interval == 2
    assert settings.heartbeat_timeout == 2  # two intervals unless given
    assert settings.policy.max_restarts == 4 and settings.policy.cap == 60
    assert settings.rss_cap_mb == 512
    defaults = load_settings(load_config(str(tmp_path), None, env={}))
    assert defaults.heartbeat_interval <= 5  # the bound
    # A frozen child is restarted within 3 heartbeat intervals: timeout + one tick + SIGKILL grace + first backoff.
    worst = (defaults.heartbeat_timeout + defaults.tick + defaults.hung_grace
             + backoff_bound(defaults.policy, 0))
    assert worst <= 3 * defaults.heartbeat_interval


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    from core.config import ConfigError

    path = tmp_path / "c.json"
    for bad in ({"heartbeat_interval_seconds": 9}, {"background_nice": 20}, {"background_nice": -1}):
        path.write_text(json.dumps({"watchdog": bad}))
        with pytest.raises(ConfigError):
            load_settings(load_config(str(tmp_path), str(path), env={}))


# -- pure: the crawl schedule ----------------------------------------------------------------


NOW = datetime(2026, 1, 2, 12, tzinfo=UTC)
HOUR, DAY = 3600.0, 86400.0


def _ok(hours_ago: float, modes: tuple[str, ...] = (FULL,)) -> dict[tuple[str, str], datetime]:
    return {(k.value, m): NOW - timedelta(hours=hours_ago) for k in ALL_KINDS for m in modes}


def test_plan_first_run_syncs_everything() -> None:
    assert plan_sync(NOW, {}, set(), HOUR, DAY) == Plan(INCREMENTAL, ALL_KINDS, 0.0)


def test_plan_waits_for_the_interval() -> None:
    plan = plan_sync(NOW, _ok(0.25), set(), HOUR, DAY)
    assert plan.mode is None and plan.wait == pytest.approx(0.75 * HOUR)


def test_plan_incremental_then_full() -> None:
    last = {**_ok(2), **_ok(1.5, (INCREMENTAL,))}
    assert plan_sync(NOW, last, set(), HOUR, DAY) == Plan(INCREMENTAL, ALL_KINDS, 0.0)
    assert plan_sync(NOW, _ok(25), set(), HOUR, DAY) == Plan(FULL, ALL_KINDS, 0.0)


def test_plan_resumes_an_interrupted_full_sync_first() -> None:
    plan = plan_sync(NOW, _ok(0.1), {"dataset"}, HOUR, DAY)
    assert plan == Plan(FULL, (Kind.DATASET,), 0.0)


def test_a_503_counts_against_the_api_only_when_its_database_fails() -> None:
    assert api_alive({"status": "unhealthy", "checks": {"database": {"status": "ok"},
                                                        "crawl": {"status": "unhealthy"}}})
    assert not api_alive({"status": "unhealthy", "checks": {"database": {"status": "unhealthy"}}})
    assert not api_alive("Service Unavailable")


# -- systemd notify ----------------------------------------------------------------------


def test_notifier_speaks_the_sd_notify_protocol(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"})
        assert notifier.watchdog_seconds == 30
        assert notifier.ready("all up")
        assert server.recv(4096) == b"READY=1\nSTATUS=all up"
        assert notifier.watchdog()
        assert server.recv(4096) == b"WATCHDOG=1"
        assert notifier.status("x") and not notifier.status("x")  # unchanged status is not resent
    assert not Notifier({}).ready("nothing listens")


# -- real processes -----------------------------------------------------------------------


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.json")


def test_crash_loop_follows_the_backoff_curve_then_gives_up(data_dir: Path, config_path: Path,
                                                             tmp_path: Path) -> None:
    crash = [sys.executable, "-c", "import sys; sys.exit(3)"]
    proc = start_driver(data_dir, config_path, [("idle", idle_child(data_dir, config_path)), ("crash", crash)],
                        tmp_path / "log")
    try:
        code = proc.wait(60)
    finally:
        stop_process(proc)
    assert code == 3, (tmp_path / "log").read_text()[-3000:]
    rows = query(data_dir, "SELECT * FROM restarts ORDER BY id")
    max_restarts = FAST_WATCHDOG["max_restarts"]
    assert [r["child"] for r in rows] == ["crash"] * (max_restarts + 1)
    assert all(r["reason"] == "exited" and r["exit_code"] == 3 for r in rows)
    policy = load_settings(load_config(str(data_dir), str(config_path), env={})).policy
    for n, row in enumerate(rows[:-1]):
        base = min(policy.cap, policy.initial * 2 ** n)
        assert base * (1 - policy.jitter) - 1e-3 <= row["backoff"] <= backoff_bound(policy, n) + 1e-3
    assert rows[-1]["backoff"] is None  # gave up instead
    # The curve was followed: each start came no sooner than its backoff after the previous death.
    stamps = [datetime.fromisoformat(r["at"].replace("Z", "+00:00")) for r in rows]
    for n in range(1, len(rows)):
        assert (stamps[n] - stamps[n - 1]).total_seconds() >= rows[n - 1]["backoff"] - 0.01
    states = child_states(data_dir)
    assert states["crash"]["state"] == "gave_up"
    assert states["idle"]["state"] == "stopped"  # stopped with the rest
    assert not alive(states["idle"]["pid"])


def test_sigstopped_child_is_restarted_within_three_heartbeat_intervals(data_dir: Path, config_path: Path,
                                                                         tmp_path: Path) -> None:
    proc = start_driver(data_dir, config_path, [("idle", idle_child(data_dir, config_path))], tmp_path / "log")
    try:
        first = wait_for(lambda: running_child(data_dir, "idle", IDLE), 30, "the idle child")
        stopped_at = time.monotonic()
        os.kill(first, signal.SIGSTOP)
        second = wait_for(lambda: (pid := running_child(data_dir, "idle")) != first and pid, 30, "a new child")
        restarted_after = time.monotonic() - stopped_at
        assert not alive(first)
        rows = query(data_dir, "SELECT * FROM restarts")
        assert [(r["child"], r["pid"], r["reason"]) for r in rows] == [("idle", first, "heartbeat_stale")]
        assert rows[0]["exit_code"] == -signal.SIGKILL  # frozen: SIGTERM could not run, SIGKILL did
        # The supervisor saw it within the bound (measured by its own clock when it acted).
        age = float(rows[0]["detail"].split("last beat ")[1].split("s ago")[0])
        interval = FAST_WATCHDOG["heartbeat_interval_seconds"]
        assert age <= 3 * interval
        print(f"SIGSTOP → new child {second} after {restarted_after:.2f}s (beat age at detection {age:.2f}s)")
    finally:
        stop_process(proc)


def test_rss_over_the_cap_restarts_the_child(data_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", {"rss_cap_mb": 1, "max_restarts": 50})
    proc = start_driver(data_dir, config, [("idle", idle_child(data_dir, config))], tmp_path / "log")
    try:
        wait_for(lambda: query(data_dir, "SELECT 1 FROM restarts WHERE reason = 'rss_cap'"), 30, "an rss restart")
    finally:
        assert stop_process(proc) == 0


def test_failing_health_probe_restarts_the_child(data_dir: Path, config_path: Path, tmp_path: Path) -> None:
    port, status = _free_port(), tmp_path / "status"
    web = [sys.executable, "-c", HEALTH_CHILD, str(data_dir / "run"), str(port), str(status)]
    proc = start_driver(data_dir, config_path, [("web", web, f"http://127.0.0.1:{port}/health")], tmp_path / "log")
    try:
        first = wait_for(lambda: child_states(data_dir).get("web") and child_states(data_dir)["web"]["state"]
                         == "running" and child_states(data_dir)["web"]["pid"], 60, "a healthy web child")
        status.write_text("500")
        wait_for(lambda: query(data_dir, "SELECT 1 FROM restarts WHERE reason = 'health_failed'"), 30,
                 "a restart for failed probes")
        status.write_text("200")
        wait_for(lambda: (s := child_states(data_dir)["web"])["state"] == "running" and s["pid"] != first, 60,
                 "the new child to be healthy")
        restarts = query(data_dir, "SELECT pid, reason FROM restarts")
        assert [(r["pid"], r["reason"]) for r in restarts] == [(first, "health_failed")]
    finally:
        assert stop_process(proc) == 0


def _daemon_env(data_dir: Path, config: Path) -> dict[str, str]:
    # Nothing listens on port 9: the crawler child retries and backs off, which is all these tests need.
    return cli_env(data_dir, "http://127.0.0.1:9", PROMETHEUS_CONFIG=str(config))


def test_daemon_sigterm_shuts_down_cleanly_and_sighup_reloads(data_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json", priority_authors=["before"])
    log = tmp_path / "log"
    proc = start_daemon(_daemon_env(data_dir, config), log, "--port", str(_free_port()))
    try:
        pids = wait_for(lambda: (s := child_states(data_dir)) and len(s) == 3
                        and all(r["state"] in ("running", "idle") for r in s.values())
                        and {name: r["pid"] for name, r in s.items()}, 120, "three healthy children")
        # Bulk work yields the CPU to requests: crawler and embedder niced, the API not.
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert {name: os.getpriority(os.PRIO_PROCESS, pid) for name, pid in pids.items()} == \
            {"crawler": max(base, 10), "embedder": max(base, 10), "api": base}
        config.write_text(config.read_text().replace('"before"', '"after"'))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log.read_text().count('"config_reloaded"') >= 3, 20, "every child to reload")
        assert {name: r["pid"] for name, r in child_states(data_dir).items()} == pids  # nothing restarted
        proc.send_signal(signal.SIGTERM)
        grace = FAST_WATCHDOG["shutdown_grace_seconds"]
        assert proc.wait(grace + 10) == 0
    finally:
        stop_process(proc)
    assert not any(alive(pid) for pid in pids.values())
    assert {r["state"] for r in child_states(data_dir).values()} == {"stopped"}
    assert query(data_dir, "SELECT count(*) FROM restarts")[0][0] == 0
    assert '"child_sigkill"' not in log.read_text()  # every child finished within the grace period


def test_kill_9_of_the_supervisor_leaves_no_child(data_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.json")
    proc = start_daemon(_daemon_env(data_dir, config), tmp_path / "log", "--port", str(_free_port()))
    pids: list[int] = []
    try:
        wait_for(lambda: len(child_states(data_dir)) == 3
                 and all(running_child(data_dir, name) for name in ("crawler", "embedder", "api")),
                 120, "three beating children")
        pids = child_pids(proc.pid, recursive=True)
        assert len(pids) >= 3
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.05)
        survivors = [pid for pid in pids if alive(pid)]
        assert survivors == []
    finally:
        kill_tree(pids)
        stop_process(proc)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
