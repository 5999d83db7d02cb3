"""Soak: the whole daemon against a changing, faulty fake Hub; what drifts, leaks or is lost.

    .venv/bin/python bench/soak.py [--minutes 30] [--settle-minutes 7] [--models 20000] [--json]

`main.py daemon` (supervisor, crawler, embedding worker, API) runs against `main.py fakehub` with
a rate limit and injected faults (5xx, dropped connections, truncated bodies, slow answers) and
delivers alerts to a fake Telegram. Every second the Hub changes: a create (one in ten by a
priority author), an update, a delete or a rename. Every 30 s the script samples each process's
RSS, open files and CPU, the database and WAL sizes, and the latency of `GET /search/llama`.

When the changes stop it waits for a full sync and an incremental one, then reports:
- whether the mirror's live ids equal the Hub's, kind by kind (exact convergence);
- priority-author creations with no Telegram alert;
- supervisor restarts per child, and why;
- the first and last samples of each process (a leak shows as a steady climb);
- the daemon's exit code after SIGTERM, and log lines at error level.

Exits 1 when the mirror did not converge, an alert was missed or the daemon did not exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, start_fakehub  # noqa: E402
from tests.conftest import child_pids  # noqa: E402
from tests.fake_telegram import FakeTelegramThread  # noqa: E402

PRIORITY_AUTHOR = "soak-priority-lab"
REPO_KINDS = ("models", "datasets", "spaces")
SAMPLE_SECONDS = 30


@dataclass
class Sample:
    at: float
    processes: dict[str, dict[str, float]]  # child name -> rss_mb, fds, cpu_s
    db_mb: float
    wal_mb: float
    search_ms: float | None


@dataclass
class Soak:
    hub_url: str
    api_url: str
    data_dir: Path
    rng: random.Random
    live: dict[str, set[str]] = field(default_factory=dict)  # the ids this script created and did not delete
    priority_created: list[str] = field(default_factory=list)
    changes: dict[str, int] = field(default_factory=lambda: {"create": 0, "update": 0, "delete": 0, "rename": 0})
    change_errors: int = 0
    serial: int = 0

    def admin(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.hub_url}/_fake/admin/{action}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def hub_ids(self, kind: str) -> set[str]:
        with urllib.request.urlopen(f"{self.hub_url}/_fake/admin/ids/{kind}", timeout=60) as response:
            return set(json.loads(response.read())["ids"])

    def change(self) -> None:
        """One change on the Hub: creates outnumber deletes, so the corpus grows a little."""
        kind = self.rng.choices(REPO_KINDS, weights=[6, 2, 2])[0]
        ours = self.live.setdefault(kind, set())
        action = self.rng.choices(["create", "update", "delete", "rename"], weights=[4, 3, 2, 1])[0]
        if action != "create" and not ours:
            action = "create"
        self.serial += 1
        try:
            if action == "create":
                priority = self.rng.random() < 0.1
                author = PRIORITY_AUTHOR if priority else f"soak-user-{self.rng.randrange(50)}"
                repo_id = f"{author}/soak-{self.serial:06d}"
                self.admin("create", {"kind": kind, "repo_id": repo_id, "fields": {"tags": ["soak"]}})
                ours.add(repo_id)
                if priority:
                    self.priority_created.append(repo_id)
            elif action == "update":
                repo_id = self.rng.choice(sorted(ours))
                self.admin("update", {"kind": kind, "repo_id": repo_id,
                                      "fields": {"likes": self.rng.randrange(1000), "tags": ["soak", "updated"]}})
            elif action == "delete":
                repo_id = self.rng.choice(sorted(ours))
                self.admin("delete", {"kind": kind, "repo_id": repo_id})
                ours.discard(repo_id)
            else:
                old_id = self.rng.choice(sorted(ours))
                new_id = f"{old_id}-renamed-{self.serial}"
                self.admin("rename", {"kind": kind, "old_id": old_id, "new_id": new_id})
                ours.discard(old_id)
                ours.add(new_id)
            self.changes[action] += 1
        except (urllib.error.URLError, OSError, ValueError):
            self.change_errors += 1

    def mirror_ids(self, kind: str) -> set[str]:
        conn = sqlite3.connect(f"file:{self.data_dir / 'prometheus.db'}?mode=ro", uri=True, timeout=30)
        try:
            return {row[0] for row in conn.execute(f"SELECT id FROM {kind} WHERE deleted_at IS NULL")}
        finally:
            conn.close()

    def search_ms(self) -> float | None:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{self.api_url}/search/llama?limit=10", timeout=30) as response:
                response.read()
        except (urllib.error.URLError, OSError):
            return None
        return round((time.perf_counter() - started) * 1000, 1)


def child_names(daemon_pid: int) -> dict[int, str]:
    """The daemon's processes by pid: the supervisor, its children by what they run, and theirs."""
    names = {daemon_pid: "supervisor"}
    for pid in child_pids(daemon_pid, recursive=True):  # each parent comes before its children
        try:
            proc = psutil.Process(pid)
            line, parent = " ".join(proc.cmdline()), proc.ppid()
        except psutil.Error:
            continue
        if "resource_tracker" in line:
            continue
        name = next((n for n in ("crawler", "embedder", "api") if n in line), f"{names.get(parent, '?')}-child")
        names[pid] = name if name not in names.values() else f"{name}-{pid}"
    return names


def _size_mb(path: Path) -> float:
    return round(path.stat().st_size / 2**20, 1) if path.exists() else 0.0


def sample(soak: Soak, daemon_pid: int) -> Sample:
    processes: dict[str, dict[str, float]] = {}
    for pid, name in child_names(daemon_pid).items():
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                cpu = proc.cpu_times()
                processes[name] = {"rss_mb": round(proc.memory_info().rss / 2**20, 1), "fds": proc.num_fds(),
                                   "cpu_s": round(cpu.user + cpu.system, 1)}
        except psutil.Error:
            continue
    return Sample(time.monotonic(), processes, _size_mb(soak.data_dir / "prometheus.db"),
                  _size_mb(soak.data_dir / "prometheus.db-wal"), soak.search_ms())


def write_config(tmp: Path, api_port: int) -> Path:
    path = tmp / "agent_config.json"
    path.write_text(json.dumps({
        "crawl_interval_hours": 72 / 3600,  # an incremental sync every 72 s
        "full_sync_interval_hours": 0.1,  # a full sync every 6 minutes
        "watch_interval_seconds": 10,
        "priority_authors": [PRIORITY_AUTHOR],
        "priority_tags": [],
        "priority_models": [],
        "saved_queries": [],
        "api": {"host": "127.0.0.1", "port": api_port},
    }))
    return path


def alerted(tg: FakeTelegramThread, repo_ids: list[str]) -> set[str]:
    texts = [message.plain for message in tg.messages]
    return {repo_id for repo_id in repo_ids if any(repo_id in text for text in texts)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    hub, hub_url = start_fakehub(
        models=args.models, datasets=args.datasets, spaces=args.spaces, papers=args.papers,
        extra=("--quota", str(args.quota), "--window", "60", "--error-rate", "0.02", "--drop-rate", "0.01",
               "--truncate-rate", "0.01", "--slow-rate", "0.01", "--slow-seconds", "3"))
    tg = FakeTelegramThread()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_name:
        tmp = Path(tmp_name)
        api_port = free_port()
        data_dir = tmp / "data"
        env = {**os.environ, "PROMETHEUS_DATA_DIR": str(data_dir),
               "PROMETHEUS_CONFIG": str(write_config(tmp, api_port)), "HF_ENDPOINT": hub_url,
               "TELEGRAM_BOT_TOKEN": "123:soak", "TELEGRAM_CHAT_ID": "42", "TELEGRAM_API_BASE": tg.url}
        env.pop("PROMETHEUS_API_KEY", None)
        log_path = tmp / "daemon.log"
        daemon = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "daemon"], cwd=ROOT, env=env,
                                  stdout=log_path.open("w"), stderr=subprocess.STDOUT)
        soak = Soak(hub_url, f"http://127.0.0.1:{api_port}", data_dir, random.Random(args.seed))
        samples: list[Sample] = []
        try:
            started = time.monotonic()
            changes_end = started + args.minutes * 60
            settle_end = changes_end + args.settle_minutes * 60
            next_sample = started + SAMPLE_SECONDS
            while time.monotonic() < settle_end and daemon.poll() is None:
                if time.monotonic() < changes_end:
                    soak.change()
                if time.monotonic() >= next_sample:
                    samples.append(sample(soak, daemon.pid))
                    next_sample += SAMPLE_SECONDS
                    if not args.json:
                        last = samples[-1]
                        rss = ", ".join(f"{n} {p['rss_mb']:.0f}" for n, p in sorted(last.processes.items()))
                        print(f"{(last.at - started) / 60:5.1f} min  rss MB: {rss}  db {last.db_mb} MB  "
                              f"wal {last.wal_mb} MB  search {last.search_ms} ms", flush=True)
                time.sleep(1)
            convergence = {}
            for kind in (*REPO_KINDS, "papers"):
                hub_ids, mirror_ids = soak.hub_ids(kind), soak.mirror_ids(kind)
                convergence[kind] = {"hub": len(hub_ids), "mirror": len(mirror_ids),
                                     "missing": sorted(hub_ids - mirror_ids)[:5],
                                     "extra": sorted(mirror_ids - hub_ids)[:5],
                                     "equal": hub_ids == mirror_ids}
            missed = sorted(set(soak.priority_created) - alerted(tg, soak.priority_created))
            conn = sqlite3.connect(f"file:{data_dir / 'prometheus.db'}?mode=ro", uri=True)
            restarts = {row[0]: {"restarts": row[1], "last_reason": row[2]}
                        for row in conn.execute("SELECT child, restarts, last_reason FROM supervisor_children")}
            conn.close()
        finally:
            exit_code = daemon.poll()
            if exit_code is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    exit_code = daemon.wait(60)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    exit_code = "killed after 60 s"
            hub.terminate()
            hub.wait(30)
            tg.stop()
        errors = [line for line in log_path.read_text(errors="replace").splitlines() if '"level": "error"' in line]
    return {
        "minutes": args.minutes, "settle_minutes": args.settle_minutes, "changes": soak.changes,
        "change_errors": soak.change_errors, "convergence": convergence,
        "priority_creations": len(soak.priority_created), "priority_missed": missed,
        "restarts": restarts, "daemon_exit_code": exit_code, "error_lines": len(errors),
        "first_errors": errors[:5],
        "first_sample": samples[0].__dict__ if samples else None,
        "last_sample": samples[-1].__dict__ if samples else None,
        "peak_rss_mb": {name: max(s.processes[name]["rss_mb"] for s in samples if name in s.processes)
                        for name in {n for s in samples for n in s.processes}},
        "search_ms_max": max((s.search_ms for s in samples if s.search_ms is not None), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="how long the Hub keeps changing (default 30)")
    parser.add_argument("--settle-minutes", type=float, default=7,
                        help="then how long to wait: a full sync (6 min) and an incremental one (default 7)")
    parser.add_argument("--models", type=int, default=20000)
    parser.add_argument("--datasets", type=int, default=5000)
    parser.add_argument("--spaces", type=int, default=5000)
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--quota", type=int, default=3000, help="Hub calls per 60 s (default 3000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2, default=str))
    converged = all(kind["equal"] for kind in report["convergence"].values())
    if not converged or report["priority_missed"] or report["daemon_exit_code"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
