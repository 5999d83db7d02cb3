"""Alert routes on the real API app over loopback: watches CRUD, the Atom feed, and the Hub webhook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from core.alerts.watches import use_watches
from core.api.app import create_app
from core.config import load_config
from core.store import connect
from tests.conftest import FIXTURES

SECRET = "s3cret-xyz"


@pytest.fixture(autouse=True)
def _fresh_watches():
    use_watches(None)
    yield
    use_watches(None)


def _app_config(tmp_path: Path, **extra):
    path = tmp_path / "agent_config.json"
    data = {"priority_authors": ["TheBloke"], "priority_tags": [], "alerts": {"webhook_secret": SECRET}}
    data.update(extra)
    path.write_text(json.dumps(data))
    return load_config(str(tmp_path / "data"), str(path), env={})


async def test_watch_routes_and_feed(tmp_path: Path) -> None:
    config = _app_config(tmp_path, api={"key": "k"})
    async with TestClient(TestServer(create_app(config))) as client:
        auth = {"Authorization": "Bearer k"}
        assert (await client.post("/watches", json={"type": "tag", "value": "qwen3"})).status == 401
        created = await client.post("/watches", json={"type": "tag", "value": "qwen3"}, headers=auth)
        assert created.status == 201
        body = await created.json()
        assert body["name"] == "tag:qwen3" and body["mode"] == "instant" and body["added_at"]
        dup = await client.post("/watches", json={"type": "tag", "value": "qwen3"}, headers=auth)
        assert dup.status == 409
        query = await client.post("/watches", headers=auth, json={
            "type": "query", "value": "big", "min_params": "70B", "pipeline": "text-generation"})
        assert query.status == 201
        bad = await client.post("/watches", headers=auth, json={"type": "query", "value": "x", "min_params": "lots"})
        assert bad.status == 400
        # The body is checked against the documented schema: what it refuses is a 400 problem, nothing is saved.
        for body in ({"type": "tag", "value": "  "}, {"type": "tag", "value": "x", "author": "y"},
                     {"type": "repo", "value": "datasets/only-a-name"}, {"type": "repo", "value": "noslash"},
                     {"type": "query", "value": "nothing"}, {"type": "query", "value": "q", "min_params": "10000T"},
                     {"type": "query", "value": "q", "text": "x", "kinds": ["model"]},
                     {"type": "author", "value": "x", "mode": None}, {"type": "author"}):
            refused = await client.post("/watches", headers=auth, json=body)
            assert refused.status == 400 and refused.content_type == "application/problem+json", body
        repo = await client.post("/watches", headers=auth, json={"type": "repo", "value": "datasets/org/name"})
        assert repo.status == 201 and (await repo.json())["name"] == "repo:datasets/org/name"
        assert (await client.delete("/watches/repo:datasets/org/name", headers=auth)).status == 200
        for alerts_query in ("status=", "status=lost", "watch=", "limit=", "limit=1001"):
            refused = await client.get(f"/alerts?{alerts_query}")
            assert refused.status == 400 and refused.content_type == "application/problem+json", alerts_query
        assert (await client.get("/alerts?status=sent&limit=5")).status == 200
        listed = await (await client.get("/watches")).json()
        assert [w["name"] for w in listed["watches"]] == ["author:TheBloke", "tag:qwen3", "query:big"]
        feed = await client.get("/feeds/tag-qwen3.atom")
        assert feed.status == 200 and feed.headers["Content-Type"].startswith("application/atom+xml")
        assert (await client.get("/feeds/nope.atom")).status == 404
        assert (await client.delete("/watches/tag:qwen3", headers=auth)).status == 200
        assert (await client.delete("/watches/tag:qwen3", headers=auth)).status == 404
    saved = json.loads(await asyncio.to_thread(Path(config.config_path).read_text))
    assert saved["priority_tags"] == [] and saved["saved_queries"][0]["name"] == "big"
    armed = dict(connect(config.db_path).execute("SELECT name, added_at FROM alert_watches").fetchall())
    assert "query:big" in armed and "tag:qwen3" not in armed


async def test_webhook_secret_and_ignored_events(tmp_path: Path) -> None:
    config = _app_config(tmp_path)
    async with TestClient(TestServer(create_app(config))) as client:
        payload = json.loads((FIXTURES / "webhooks" / "discussion_create.json").read_text())["payload"]
        assert (await client.post("/webhooks/huggingface", json=payload)).status == 401
        wrong = await client.post("/webhooks/huggingface", json=payload, headers={"X-Webhook-Secret": "s3cret"})
        assert wrong.status == 401
        ok = await client.post("/webhooks/huggingface", json=payload,
                               headers={"X-Webhook-Secret": SECRET})
        assert ok.status == 200 and (await ok.json())["status"] == "ignored"
        garbage = await client.post("/webhooks/huggingface", data=b"not json",
                                    headers={"X-Webhook-Secret": SECRET})
        assert garbage.status == 400


async def test_webhook_without_configured_secret_refuses(tmp_path: Path) -> None:
    config = _app_config(tmp_path, alerts={})
    async with TestClient(TestServer(create_app(config))) as client:
        answer = await client.post("/webhooks/huggingface", json={}, headers={"X-Webhook-Secret": ""})
        assert answer.status == 503 and answer.content_type == "application/problem+json"
        documented = (await (await client.get("/openapi.json")).json())["paths"]["/webhooks/huggingface"]["post"]
        assert "application/problem+json" in documented["responses"]["503"]["content"]
