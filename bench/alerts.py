"""Alert latency benchmark: creation on the (fake) Hub → sendMessage on the (fake) Telegram.

    .venv/bin/python bench/alerts.py [--intervals 30,1] [--repos 24] [--duration 120] [--webhook-repos 20] [--json]

For each poll interval, a real `python main.py watch run` process (the watch poll and the
sender, as the daemon runs them) watches a fake Hub on loopback and delivers to a fake
Telegram Bot API. Repos by watched authors, with a watched tag, and unwatched noise are
created at random instants; each matching repo's latency is the time from the create
call to the fake Telegram accepting its message. The webhook path runs `main.py serve`
(the API, with the Hub webhook route) beside a sender-only `watch run --no-poll`, and
posts a Hub webhook payload right after each create.

Reports p50 / p95 / max latency, misses (matching repo, no message), duplicates (more
than one message for a repo) and false alerts (a message for an unwatched repo).
Flood grouping is switched off here (it deliberately holds a flood's followers), so
the figures are pure detection + delivery latency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import HubThread  # noqa: E402
from tests.fake_telegram import FakeTelegramThread  # noqa: E402

AUTHORS = ["TheBloke", "unsloth", "Qwen", "mistralai", "bartowski"]
NOISE_AUTHORS = ["randomuser", "someone-else", "labxyz", "hobbyist42"]
INSTANT_TAG = "qwen3-benchmark-tag"
SECRET = "bench-secret"


@dataclass
class Created:
    kind: str  # models | datasets | spaces
    repo_id: str
    at: float
    matching: bool


@dataclass
class Result:
    scenario: str
    interval: float | None
    created: int
    matching: int
    latencies: list[float] = field(default_factory=list)
    misses: int = 0
    duplicates: int = 0
    false_alerts: int = 0

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, max(0, round(p * (len(lat) - 1))))], 3)

        return {"scenario": self.scenario, "interval_s": self.interval, "created": self.created,
                "matching": self.matching, "delivered": len(lat), "p50_s": pct(0.5), "p95_s": pct(0.95),
                "max_s": round(lat[-1], 3) if lat else None,
                "mean_s": round(statistics.fmean(lat), 3) if lat else None,
                "misses": self.misses, "duplicates": self.duplicates, "false_alerts": self.false_alerts}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(tmp: Path, interval: float, api_port: int) -> Path:
    path = tmp / "agent_config.json"
    path.write_text(json.dumps({
        "watch_interval_seconds": interval,
        "priority_authors": AUTHORS,
        "priority_tags": [{"tag": INSTANT_TAG, "mode": "instant"}],
        "priority_models": [],
        "saved_queries": [],
        "api": {"host": "127.0.0.1", "port": api_port},
        # Default Telegram pacing (about 1/s with bursts of 5); grouping off, see the docstring.
        "telegram": {"timeout_seconds": 5},
        "alerts": {"daily_digest_hour_utc": None, "group_threshold": 100000, "webhook_secret": SECRET,
                   "updates_every": 1000, "papers_every": 1000},
    }))
    return path


def wait_for(predicate, timeout: float, step: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def baseline_done(db: Path) -> bool:
    """The poll's first interval committed (its watermark exists): later creations are what we measure."""
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM alert_state WHERE key LIKE 'poll:%'").fetchone()[0] >= 3
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def plan(n: int, duration: float, rng: random.Random, prefix: str) -> list[tuple[float, str, str, dict, bool]]:
    """(offset, kind, repo_id, fields, matching) at uniform random instants."""
    items = []
    for i in range(n):
        offset = rng.uniform(0, duration)
        roll = rng.random()
        kind = rng.choices(["models", "datasets", "spaces"], weights=[8, 1, 1])[0]
        if roll < 0.55:
            author, tags, matching = rng.choice(AUTHORS), ["text-generation"], True
        elif roll < 0.75:
            author, tags, matching = rng.choice(NOISE_AUTHORS), [INSTANT_TAG], True
        else:
            author, tags, matching = rng.choice(NOISE_AUTHORS), ["text-generation"], False
        name = f"{author}/{prefix}-{i:03d}_Q4*K[M].v{rng.randint(1, 9)}"
        items.append((offset, kind, name, {"tags": tags}, matching))
    items.sort()
    return items


def create(hub: HubThread, kind: str, repo_id: str, fields: dict) -> None:
    hub.call("create_repo", kind, repo_id, **fields)


def post_webhook(api_url: str, kind: str, repo_id: str) -> None:
    payload = {"event": {"action": "create", "scope": "repo"},
               "repo": {"type": kind.rstrip("s"), "name": repo_id, "id": "0" * 24, "private": False,
                        "headSha": "0" * 40, "owner": {"id": "1"}},
               "webhook": {"id": "bench", "version": 3}}
    request = urllib.request.Request(f"{api_url}/webhooks/huggingface", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json", "X-Webhook-Secret": SECRET})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def score(result: Result, created: list[Created], tg: FakeTelegramThread) -> Result:
    first: dict[str, float] = {}
    counts: dict[str, int] = {}
    for message in tg.messages:
        head = message.plain.splitlines()[0]
        repo_id = head.split(": ", 1)[-1].strip()
        counts[repo_id] = counts.get(repo_id, 0) + 1
        first.setdefault(repo_id, message.at)
    for item in created:
        n = counts.get(item.repo_id, 0)
        if item.matching:
            if n == 0:
                result.misses += 1
            else:
                result.latencies.append(first[item.repo_id] - item.at)
                result.duplicates += n - 1
        elif n:
            result.false_alerts += n
    return result


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_scenario(name: str, interval: float, n: int, duration: float, seed: int, *, webhook: bool,
                 hub_kwargs: dict[str, Any]) -> Result:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp_name:
        tmp = Path(tmp_name)
        api_port = free_port()
        config = write_config(tmp, interval, api_port)
        hub = HubThread(**hub_kwargs)
        tg = FakeTelegramThread()
        env = {**os.environ, "PROMETHEUS_DATA_DIR": str(tmp / "data"), "PROMETHEUS_CONFIG": str(config),
               "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "1", "TELEGRAM_BOT_TOKEN": "1:bench",
               "TELEGRAM_CHAT_ID": "42", "TELEGRAM_API_BASE": tg.url, "PYTHONUNBUFFERED": "1"}
        procs: list[subprocess.Popen] = []
        try:
            db = tmp / "data" / "prometheus.db"
            if webhook:
                procs.append(_spawn(["serve", "--port", str(api_port)], env, tmp / "api.log"))
                procs.append(_spawn(["watch", "run", "--no-poll"], env, tmp / "sender.log"))
                api_url = f"http://127.0.0.1:{api_port}"
                if not wait_for(lambda: _up(api_url), 60):
                    raise SystemExit(f"API did not start: {(tmp / 'api.log').read_text()[-2000:]}")
                # Arm the watches (the first detection registers them) before the clock starts.
                post_webhook(api_url, "models", _existing_model(hub))
            else:
                procs.append(_spawn(["watch", "run"], env, tmp / "watch.log"))
                if not wait_for(lambda: baseline_done(db), 60 + interval):
                    raise SystemExit(f"poll never ran: {(tmp / 'watch.log').read_text()[-2000:]}")
            time.sleep(0.5)
            created: list[Created] = []
            start = time.time()
            threads = []
            for offset, kind, repo_id, fields, matching in plan(n, duration, rng, name):
                delay = start + offset - time.time()
                if delay > 0:
                    time.sleep(delay)
                at = time.time()
                create(hub, kind, repo_id, fields)
                created.append(Created(kind, repo_id, at, matching))
                if webhook:
                    # The Hub sends its webhook after the write; deliver it concurrently like the Hub does.
                    thread = threading.Thread(target=post_webhook, args=(api_url, kind, repo_id))
                    thread.start()
                    threads.append(thread)
            for thread in threads:
                thread.join(30)
            expected = sum(1 for c in created if c.matching)
            grace = (interval if not webhook else 0) + 15
            wait_for(lambda: len({m.plain.splitlines()[0] for m in tg.messages}) >= expected, grace, 0.1)
            time.sleep(2.0)  # a late duplicate would show up here
            result = Result(name, None if webhook else interval, len(created), expected)
            return score(result, created, tg)
        finally:
            for proc in procs:
                _stop(proc)
            tg.stop()
            hub.stop()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status < 600
    except OSError as exc:
        return getattr(exc, "code", None) is not None


def _existing_model(hub: HubThread) -> str:
    with urllib.request.urlopen(f"{hub.url}/api/models?limit=1", timeout=10) as response:
        return json.loads(response.read())[0]["id"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", default="30,1", help="poll intervals to measure, seconds (default 30,1)")
    parser.add_argument("--repos", type=int, default=24, help="repos created per poll scenario")
    parser.add_argument("--duration", type=float, default=120, help="seconds over which they are created")
    parser.add_argument("--webhook-repos", type=int, default=20, help="repos for the webhook scenario (0: skip)")
    parser.add_argument("--webhook-duration", type=float, default=30)
    parser.add_argument("--models", type=int, default=2000, help="fake Hub corpus size (models)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    hub_kwargs = {"models": args.models, "datasets": max(1, args.models // 10), "spaces": max(1, args.models // 10),
                  "papers": 10}
    results = []
    for i, text in enumerate(args.intervals.split(",")):
        interval = float(text)
        results.append(run_scenario(f"poll{text.strip()}s", interval, args.repos, args.duration, args.seed + i,
                                    webhook=False, hub_kwargs=hub_kwargs))
        print(json.dumps(results[-1].summary()), file=sys.stderr)
    if args.webhook_repos:
        results.append(run_scenario("webhook", 0, args.webhook_repos, args.webhook_duration, args.seed + 100,
                                    webhook=True, hub_kwargs=hub_kwargs))
        print(json.dumps(results[-1].summary()), file=sys.stderr)
    summaries = [r.summary() for r in results]
    if args.json:
        print(json.dumps(summaries, indent=2))
    else:
        cols = ["scenario", "interval_s", "created", "matching", "delivered", "p50_s", "p95_s", "max_s", "misses",
                "duplicates", "false_alerts"]
        print("  ".join(f"{c:>12}" for c in cols))
        for s in summaries:
            print("  ".join(f"{'' if s[c] is None else s[c]!s:>12}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
