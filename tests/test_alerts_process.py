"""Alerts across real processes: kill -9 of the sender mid-delivery, the `watch` CLI, Hub webhook payloads."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from core.alerts.feeds import atom_feed
from core.alerts.hubhook import PayloadError, parse_event, secret_ok
from core.alerts.outbox import alerts_for_watch
from core.alerts.rules import author_watch
from core.alerts.watches import register_watches, use_watches
from core.kinds import Kind
from core.store import connect, write_tx
from core.store.db import utcnow
from tests.conftest import FIXTURES, PROJECT_ROOT, cli_env, run_cli
from tests.fake_telegram import FakeTelegramThread
from tests.test_alerts import OLD, _write, model

WEBHOOKS = FIXTURES / "webhooks"


@pytest.fixture(autouse=True)
def _pinned_watches():
    yield
    use_watches(None)


def _config(tmp_path: Path, **extra) -> Path:
    path = tmp_path / "agent_config.json"
    data = {"priority_authors": ["TheBloke"], "priority_tags": [], "watch_interval_seconds": 1,
            "telegram": {"min_interval_seconds": 0, "timeout_seconds": 2},
            "alerts": {"daily_digest_hour_utc": None, "backoff_cap_seconds": 0.5, "group_threshold": 1000}}
    data.update(extra)
    path.write_text(json.dumps(data))
    return path


def test_kill_9_loop_loses_nothing_and_repeats_at_most_one_per_kill(tmp_path: Path, data_dir: Path) -> None:
    config = _config(tmp_path)
    watch = author_watch("TheBloke")
    use_watches([watch])
    conn = connect(data_dir / "prometheus.db")
    with write_tx(conn):
        register_watches(conn, [watch], OLD)
    ids = [f"TheBloke/model-{i:02d}_x*[q].gguf" for i in range(24)]
    _write(conn, [model(i) for i in ids])
    fake = FakeTelegramThread(delay_seconds=0.08)  # a slow answer widens the send→mark window
    env = cli_env(data_dir, PROMETHEUS_CONFIG=str(config), TELEGRAM_BOT_TOKEN="1:x", TELEGRAM_CHAT_ID="7",
                  TELEGRAM_API_BASE=fake.url)
    rng = random.Random(5)
    kills = 0
    try:
        for _ in range(30):
            left = conn.execute("SELECT count(*) FROM alert_outbox WHERE status = 'pending'").fetchone()[0]
            if not left:
                break
            proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py"), "watch", "run", "--no-poll"],
                                    cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            # Kill once it is delivering (a message arrived since it started), at a random moment.
            seen = len(fake.messages)
            deadline = time.monotonic() + 20
            while len(fake.messages) == seen and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            kills += 1
        else:
            pytest.fail("the outbox never drained")
        sent = Counter(m.plain.splitlines()[0].removeprefix("🆕 New model: ") for m in fake.messages)
    finally:
        fake.stop()
    assert set(sent) == set(ids), "every alert was delivered"
    repeats = sum(n - 1 for n in sent.values())
    assert repeats <= kills, f"{repeats} repeats for {kills} kills"
    assert kills >= 3
    print(f"kill -9 loop: {kills} kills, {repeats} repeats, {len(ids)} alerts")
    assert conn.execute("SELECT count(*) FROM alert_outbox WHERE status != 'sent'").fetchone()[0] == 0


def test_watch_cli_add_list_remove(tmp_path: Path, data_dir: Path) -> None:
    config = tmp_path / "agent_config.json"
    config.write_text(json.dumps({"api": {"port": 8123}, "priority_authors": [], "priority_tags": []}))
    env = cli_env(data_dir, PROMETHEUS_CONFIG=str(config))
    added = run_cli("watch", "add", "query", "qwen-quants", "--base-model", "Qwen/Qwen3-8B", "--relation",
                    "quantized", "--max-params", "9B", "--json", env=env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "query:qwen-quants"
    assert run_cli("watch", "add", "tag", "text-generation", env=env).returncode == 0
    again = run_cli("watch", "add", "tag", "text-generation", env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    listed = json.loads(run_cli("watch", "list", "--json", env=env).stdout)["watches"]
    assert {w["name"]: w["mode"] for w in listed} == {"query:qwen-quants": "instant", "tag:text-generation": "digest"}
    assert all(w["added_at"] for w in listed)  # armed at add time
    assert run_cli("watch", "remove", "qwen-quants", env=env).returncode == 0
    saved = json.loads(config.read_text())
    assert saved["saved_queries"] == [] and saved["priority_tags"] == ["text-generation"]
    assert saved["api"] == {"port": 8123}
    bad = run_cli("watch", "add", "query", "nothing", env=env)
    assert bad.returncode == 2 and "criterion" in bad.stderr
    no_rows = run_cli("watch", "alerts", "--limit", "0", env=env)
    assert no_rows.returncode == 2 and no_rows.stderr.strip() == "main.py watch: error: --limit must be ≥ 1"


def test_hub_webhook_payload_fixtures() -> None:
    content = parse_event(json.loads((WEBHOOKS / "repo_content_update.json").read_text()))
    assert (content.scope, content.action, content.kind, content.repo_id) == (
        "repo.content", "update", Kind.SPACE, "Wauplin/gradio-user-history")
    assert content.head_sha == "5e7f29fffcc579cb52539fddb14a1a4f85f39e44" and content.refresh
    for name in ("discussion_create.json", "discussion_update.json", "pr_opened.json"):
        event = parse_event(json.loads((WEBHOOKS / name).read_text()))
        assert event.scope == "discussion" and not event.refresh
    moved = parse_event({"event": {"scope": "repo", "action": "move"}, "repo": {"type": "model", "name": "a/old"},
                         "movedTo": {"name": "a/new", "owner": {"id": "1"}}})
    assert moved.target == "a/new"
    assert not parse_event({"event": {"scope": "repo", "action": "create"},
                            "repo": {"type": "model", "name": "a/b", "private": True}}).refresh
    with pytest.raises(PayloadError):
        parse_event({"event": "nope"})
    assert secret_ok("s3cret", "s3cret")
    assert not secret_ok("s3cre", "s3cret") and not secret_ok(None, "s3cret") and not secret_ok("x", None)


def test_atom_feed(tmp_path: Path) -> None:
    watch = author_watch("TheBloke")
    use_watches([watch])
    conn = connect(tmp_path / "db.sqlite")
    with write_tx(conn):
        register_watches(conn, [watch], OLD)
    _write(conn, [model("TheBloke/a_b<c>&d-GGUF"), model("TheBloke/second")])
    body = atom_feed(watch, alerts_for_watch(conn, watch.name), "http://x/feeds/author-TheBloke.atom", utcnow())
    from xml.etree import ElementTree as ET

    root = ET.fromstring(body)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in root.findall("a:entry", ns)]
    assert titles == ["New model: TheBloke/second", "New model: TheBloke/a_b<c>&d-GGUF"]
    links = [e.find("a:link", ns).get("href") for e in root.findall("a:entry", ns)]
    assert links[1] == "https://huggingface.co/TheBloke/a_b<c>&d-GGUF"


def _start_watch(env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(PROJECT_ROOT / "main.py"), "watch", "run", *extra],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("watch run did not stop within 15 s of SIGTERM")


def _wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _polled(db: Path) -> bool:
    try:
        conn = connect(db)
        try:
            return conn.execute("SELECT count(*) FROM alert_state WHERE key LIKE 'poll:%'").fetchone()[0] >= 3
        finally:
            conn.close()
    except Exception:
        return False


def test_end_to_end_poll_to_telegram_exactly_once(tmp_path: Path, data_dir: Path, hub_thread) -> None:
    hub = hub_thread(models=300, datasets=30, spaces=30, papers=10)
    assert any(i.startswith("TheBloke/") for i in hub.hub.ids("models"))  # the back catalogue has watched repos
    config = _config(tmp_path, priority_models=["datasets/org/watched-data"],
                     saved_queries=[{"name": "kalai", "author": "Adam Kalai", "kinds": ["papers"]}],
                     alerts={"daily_digest_hour_utc": None, "papers_every": 1, "updates_every": 1})
    hub.call("create_repo", "datasets", "org/watched-data", createdAt="2020-01-01T00:00:00.000Z")
    fake = FakeTelegramThread()
    env = cli_env(data_dir, hub.url, PROMETHEUS_CONFIG=str(config), TELEGRAM_BOT_TOKEN="1:x",
                  TELEGRAM_CHAT_ID="7", TELEGRAM_API_BASE=fake.url)
    db = data_dir / "prometheus.db"
    proc = _start_watch(env)
    try:
        assert _wait(lambda: _polled(db), 30), proc.stderr.read() if proc.poll() is not None else "no poll"
        time.sleep(1.5)
        assert fake.messages == []  # no flood on the first run
        name = "TheBloke/Llama-3_1-8B*Instruct[v2].5-GGUF"
        created = time.time()
        hub.call("create_repo", "models", name, pipeline_tag="text-generation", library_name="gguf",
                 tags=["gguf", "text-generation", "base_model:quantized:meta-llama/Llama-3.1-8B-Instruct"])
        hub.call("create_repo", "models", "nobody/unwatched-model")
        assert _wait(lambda: len(fake.messages) >= 1, 15)
        message = fake.messages[0]
        assert message.at - created < 1 + 4  # interval 1 s (+ slack for a loaded test machine)
        assert message.plain.splitlines()[0] == f"🆕 New model: {name}"
        assert "GGUF quantization of meta-llama/Llama-3.1-8B-Instruct" in message.plain
        assert f"https://huggingface.co/{name}" in message.links
        assert "matched: author TheBloke" in message.plain
        # A commit on a watched repo.
        hub.call("update_repo", "datasets", "org/watched-data", description="new data")
        assert _wait(lambda: len(fake.messages) >= 2, 15)
        assert fake.messages[1].plain.startswith("🔄 New commit on dataset org/watched-data")
        # A new daily paper by a watched author.
        hub.call("add_paper", "2611.99999", title="Watching_the *Hub* [fast].", summary="s",
                 authors=["Adam Kalai", "B"])
        assert _wait(lambda: len(fake.messages) >= 3, 15)
        assert fake.messages[2].plain.startswith("📄 New paper: Watching_the *Hub* [fast].")
        assert "https://huggingface.co/papers/2611.99999" in fake.messages[2].links
        _stop(proc)
        # Restart: nothing is sent again; a Telegram outage queues the next release until it ends.
        fake.set_down(True)
        proc = _start_watch(env)
        hub.call("create_repo", "models", "TheBloke/after-restart")
        assert _wait(lambda: connect(db).execute(
            "SELECT count(*) FROM alert_outbox WHERE item_id = 'TheBloke/after-restart'").fetchone()[0] == 1, 15)
        time.sleep(1.0)
        assert len(fake.messages) == 3 and fake.attempts > 3
        fake.set_down(False)
        assert _wait(lambda: len(fake.messages) >= 4, 15)
        time.sleep(1.5)
        heads = [m.plain.splitlines()[0] for m in fake.messages]
        assert heads[3] == "🆕 New model: TheBloke/after-restart"
        assert len(heads) == len(set(heads)) == 4  # exactly one message per release
    finally:
        if proc.poll() is None:
            _stop(proc)
        fake.stop()


async def test_hub_webhook_refreshes_and_alerts_within_seconds(tmp_path: Path, hub_thread) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from core.alerts.sender import TelegramSender
    from core.alerts.settings import settings_from_config
    from core.api.app import create_app
    from core.config import load_config
    from tests.fake_telegram import FakeTelegram

    hub = hub_thread(models=200, datasets=20, spaces=20, papers=5)
    path = _config(tmp_path, alerts={"webhook_secret": "hook", "daily_digest_hour_utc": None})
    config = load_config(str(tmp_path / "data"), str(path), env={"HF_ENDPOINT": hub.url, "TELEGRAM_BOT_TOKEN": "1:x",
                                                                 "TELEGRAM_CHAT_ID": "9"})
    fixture = json.loads((WEBHOOKS / "repo_content_update.json").read_text())["payload"]
    async with TestClient(TestServer(create_app(config))) as client, FakeTelegram() as fake:
        config.telegram_api_base = fake.url
        headers = {"X-Webhook-Secret": "hook"}
        # Arm the watches with a first event on an existing repo (nothing to alert).
        existing = next(iter(sorted(hub.hub.ids("spaces"))))
        first = await client.post("/webhooks/huggingface", headers=headers,
                                  json={**fixture, "repo": {**fixture["repo"], "name": existing}})
        assert (await first.json())["alerts"] == 0
        created = time.time()
        hub.call("create_repo", "spaces", "TheBloke/demo_space*1", sdk="gradio")
        answer = await client.post("/webhooks/huggingface", headers=headers, json={
            **fixture, "event": {"scope": "repo", "action": "create"},
            "repo": {**fixture["repo"], "name": "TheBloke/demo_space*1"}})
        body = await answer.json()
        assert answer.status == 200 and body["result"] == "new" and body["alerts"] == 1
        again = await client.post("/webhooks/huggingface", headers=headers, json={
            **fixture, "repo": {**fixture["repo"], "name": "TheBloke/demo_space*1"}})
        assert (await again.json())["alerts"] == 0  # the same release never alerts twice
        stop = asyncio.Event()
        settings = settings_from_config(config)
        settings.idle_poll_seconds = 0.05
        task = asyncio.create_task(TelegramSender(config.db_path, settings).run(stop))
        while not fake.messages and time.time() - created < 10:
            await asyncio.sleep(0.02)
        stop.set()
        await task
        assert len(fake.messages) == 1 and fake.messages[0].at - created < 3.0
        assert "https://huggingface.co/spaces/TheBloke/demo_space*1" in fake.messages[0].links


async def test_full_crawl_first_run_queues_nothing_then_incremental_alerts(tmp_path: Path, hub_thread) -> None:
    from core.crawler import FULL, INCREMENTAL, Crawler, standard_hooks
    from core.hub.client import HubClient

    hub = hub_thread(models=400, datasets=40, spaces=40, papers=20)
    use_watches([author_watch("TheBloke")])
    db = tmp_path / "db.sqlite"
    async with HubClient(hub.url) as client:
        crawler = Crawler(db, client, hooks=standard_hooks(), page_size=100)
        await crawler.sync_all(mode=FULL)
        conn = connect(db)
        assert conn.execute("SELECT count(*) FROM models WHERE author = 'TheBloke'").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM alert_outbox").fetchone()[0] == 0  # no flood
        await asyncio.sleep(0.01)
        hub.call("create_repo", "models", "TheBloke/fresh-GGUF", tags=["gguf"])
        await crawler.sync_all(mode=INCREMENTAL)
        await crawler.sync_all(mode=INCREMENTAL)  # seen again: still one
        crawler.close()
    rows = [tuple(r) for r in conn.execute("SELECT watch, item_id FROM alert_outbox")]
    assert rows == [("author:TheBloke", "TheBloke/fresh-GGUF")]
