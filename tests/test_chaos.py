"""Chaos: `kill -9` the daemon's children at random instants while it crawls the fake Hub and embeds.

Over ≥ 30 cycles each killed child must come back within its backoff bound; at the
end nothing is lost or duplicated (rows, FTS, embeddings, FAISS, crawl tasks,
alerts) and SQLite's integrity check passes. About two to three minutes on 2 cores;
a longer soak: `CHAOS_CYCLES=200 .venv/bin/python -m pytest tests/test_chaos.py -s`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.config import load_config
from core.kinds import ALL_KINDS
from core.supervision.backoff import backoff_bound
from core.supervision.settings import load_settings
from tests.conftest import PROJECT_ROOT, cli_env
from tests.supervisor_helpers import (
    alive,
    db,
    query,
    running_child,
    start_daemon,
    stop_process,
    wait_for,
    write_config,
)

CYCLES = int(os.environ.get("CHAOS_CYCLES", "30"))
CHILDREN = ("crawler", "embedder", "api")
CORPUS = {"models": 400, "datasets": 120, "spaces": 120, "papers": 60}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_kill_9_children_at_random_instants(hub_thread, data_dir: Path, tmp_path: Path) -> None:
    from tests.fake_telegram import FakeTelegramThread

    hub = hub_thread(**CORPUS, seed=7)
    telegram = FakeTelegramThread()
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "1")))
    config_path = write_config(
        tmp_path / "config.json",
        {"max_restarts": 10_000, "stable_seconds": 2, "backoff_cap_seconds": 1.0},
        page_size=50, crawl_interval_hours=5 / 3600, full_sync_interval_hours=20 / 3600,
        embedding_batch_size=32, priority_authors=["chaos-lab"], priority_tags=[],
        telegram={"bot_token": "123:abc", "chat_id": "42", "api_base": telegram.url},
    )
    settings = load_settings(load_config(str(data_dir), str(config_path), env={}))
    env = cli_env(data_dir, hub.url, PROMETHEUS_CONFIG=str(config_path))
    log = tmp_path / "daemon.log"
    port = _free_port()
    daemon = start_daemon(env, log, "--port", str(port))
    latencies: dict[str, list[float]] = {name: [] for name in CHILDREN}
    try:
        wait_for(lambda: all(running_child(data_dir, name) for name in CHILDREN), 120, "three beating children")
        # Crawl tasks through the task table, as the API queues them: each must end done, exactly once.
        from core.store import connect
        from core.tasks import create_task

        conn = connect(data_dir / "prometheus.db")
        task_ids = [create_task(conn, "crawl", {"kind": kind.plural, "mode": "incremental"}).id
                    for kind in ALL_KINDS]
        conn.close()

        created: list[str] = []
        for cycle in range(CYCLES):
            if cycle % 6 == 5:  # a watched author publishes: an alert must go out once, whatever gets killed
                created.append(f"chaos-lab/model-{cycle}")
                hub.call("create_repo", "models", created[-1], tags=["text-generation"])
            name = rng.choice(CHILDREN)
            pid = wait_for(lambda n=name: running_child(data_dir, n), 120, f"{name} beating")
            time.sleep(rng.uniform(0.0, 1.5))  # a random instant: mid-page, mid-batch, mid-request
            if not alive(pid):
                continue
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            new = wait_for(lambda n=name, old=pid: (p := running_child(data_dir, n)) != old and p, 120,
                           f"{name} back after cycle {cycle}")
            latencies[name].append(time.monotonic() - killed)
            row = wait_for(lambda old=pid: query(data_dir, "SELECT * FROM restarts WHERE pid = ?", old), 10,
                           "the restart row")
            assert len(row) == 1 and row[0]["child"] == name and row[0]["reason"] == "exited"
            assert row[0]["exit_code"] == -signal.SIGKILL
            # Within its backoff bound (the policy's largest possible delay at the cap).
            assert row[0]["backoff"] <= backoff_bound(settings.policy, 100) + 1e-6
            assert new != pid

        # Let it settle: tasks done, a full sync completed since the last kill, the queue drained.
        last_kill = query(data_dir, "SELECT max(at) FROM restarts")[0][0]
        wait_for(lambda: all(r["status"] in ("done", "failed") for r in query(
            data_dir, f"SELECT status FROM tasks WHERE id IN ({','.join(map(str, task_ids))})")), 120, "crawl tasks")
        wait_for(lambda: len(query(data_dir, "SELECT DISTINCT kind FROM crawl_history WHERE mode = 'full' "
                                   "AND status = 'ok' AND finished_at > ?", last_kill)) == len(ALL_KINDS),
                 150, "a full sync after the chaos")
        wait_for(lambda: query(data_dir, "SELECT count(*) FROM embed_jobs WHERE parked = 0")[0][0] == 0, 150,
                 "the embedding queue to drain")
        wait_for(lambda: not query(data_dir, "SELECT 1 FROM alert_outbox WHERE status = 'pending'"), 60,
                 "the alerts to be sent")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(settings.shutdown_grace + 15) == 0
    finally:
        stop_process(daemon)
        telegram.stop()
    print("restart latency (kill → new child beating): " + ", ".join(
        f"{name} n={len(v)} max={max(v):.2f}s" for name, v in latencies.items() if v))
    assert sum(len(v) for v in latencies.values()) >= CYCLES * 0.9

    conn = db(data_dir)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
        # Tasks: every one done once.
        tasks = conn.execute(f"SELECT status, finished_at FROM tasks WHERE id IN "
                             f"({','.join(map(str, task_ids))})").fetchall()
        assert [t["status"] for t in tasks] == ["done"] * len(task_ids)
        # Rows: exactly the Hub's items, once each; FTS holds each row once.
        keys: set[int] = set()
        for kind in ALL_KINDS:
            live = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {kind.table} "
                                "WHERE deleted_at IS NULL").fetchone()
            expected = CORPUS[kind.plural] + (len(created) if kind.plural == "models" else 0)
            assert live[0] == live[1] == expected, kind
            keys |= {r[0] for r in conn.execute(f"SELECT ({kind.code} << 40) | pk FROM {kind.table}")}
        fts = {r[0] for r in conn.execute("SELECT rowid FROM search_fts")}
        assert fts == keys
        assert conn.execute("SELECT count(*) FROM search_fts").fetchone()[0] == len(keys)
        # Embeddings: one per live item, nothing left to do.
        assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == len(keys)
        assert conn.execute("SELECT count(*) FROM embed_jobs").fetchone()[0] == 0
        # Alerts: every new repo of the watched author detected once and sent once.
        outbox = conn.execute("SELECT item_id, status, message_id FROM alert_outbox WHERE item_id LIKE 'chaos-lab/%'")
        rows = outbox.fetchall()
        assert sorted(r["item_id"] for r in rows) == sorted(created)
        assert all(r["status"] != "pending" for r in rows), [dict(r) for r in rows]
        sent_ids = {r[0] for r in conn.execute("SELECT message_id FROM alert_outbox WHERE message_id IS NOT NULL")}
        assert sent_ids and len(telegram.messages) == len(sent_ids)
        for repo_id in created:
            assert sum(repo_id in m.plain for m in telegram.messages) == 1, repo_id
        print(f"rows {len(keys)}, embeddings {len(keys)}, alerts sent {len(sent_ids)}, "
              f"restarts {conn.execute('SELECT count(*) FROM restarts').fetchone()[0]}")
    finally:
        conn.close()
    # FAISS: the published index holds exactly the live vectors (checked in a fresh process: faiss is heavy).
    check = subprocess.run(
        [sys.executable, "-c", _FAISS_CHECK, str(data_dir), str(config_path)], cwd=PROJECT_ROOT,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    assert json.loads(check.stdout.strip().splitlines()[-1])["ok"], check.stdout


_FAISS_CHECK = """
import json, sys
from core.config import load_config
from core.embedder import index_dir
from core.store import connect
from core.vectorindex import IndexStore, count_live_vectors
config = load_config(sys.argv[1], sys.argv[2])
conn = connect(config.db_path)
loaded = IndexStore(index_dir(config)).load()
live = count_live_vectors(conn, config.embedding_model)
last = conn.execute("SELECT coalesce(max(seq), 0) FROM index_log").fetchone()[0]
ok = loaded is not None and loaded.index.ntotal == live and loaded.meta.log_seq >= last
print(json.dumps({"ok": ok, "ntotal": loaded and loaded.index.ntotal, "live": live,
                  "log_seq": loaded and loaded.meta.log_seq, "last": last}))
"""
