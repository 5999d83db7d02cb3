"""Trends over HTTP: /trends, history, the Atom feed, /ui/trends and the item chart (real app, real SQLite)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from core.api.app import create_app
from core.config import load_config
from core.store import connect
from tests.test_trends import _model, crawl


def _mirror(tmp_path: Path):
    config = load_config(str(tmp_path / "data"), env={})
    conn = connect(config.db_path)
    now = int(time.time())
    crawl(conn, now - 7200, [_model("a/x", 100, 5), _model("b/y", 1000, 50, tags=["gguf"]), _model("c/z", 10, 0)])
    crawl(conn, now - 60, [_model("a/x", 900, 40), _model("b/y", 1200, 51, tags=["gguf"]), _model("c/z", 10, 0)])
    conn.close()
    return config


async def test_trends_routes(tmp_path: Path) -> None:
    config = _mirror(tmp_path)
    async with TestClient(TestServer(create_app(config))) as client:
        resp = await client.get("/trends", params={"window": "24h", "by": "downloads"})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert [r["id"] for r in body["results"]] == ["a/x", "b/y"] and body["as_of"]
        first = body["results"][0]
        assert {"id", "kind", "downloads", "likes", "downloads_per_day", "likes_per_day", "score"} <= set(first)
        assert first["downloads"] == 900 and first["downloads_per_day"] > 0
        tagged = await (await client.get("/trends", params={"tag": "gguf", "by": "likes"})).json()
        assert [r["id"] for r in tagged["results"]] == ["b/y"]
        for bad in ({"window": "2w"}, {"by": "stars"}, {"type": "papers"}, {"limit": "0"}, {"nope": "1"},
                    {"type": "model"}, {"base_model": "x" * 501}):
            assert (await client.get("/trends", params=bad)).status == 400, bad
        # A filter that does not apply to the kind matches nothing (the schema cannot tie the two together).
        unmatched = await client.get("/trends", params={"type": "datasets", "base_model": "x"})
        assert unmatched.status == 200 and (await unmatched.json())["results"] == []
        # An empty field is the same as leaving it out, as documented (allowEmptyValue).
        assert (await client.get("/trends", params={"by": "", "window": "", "type": ""})).status == 200

        hist = await client.get("/models/a/x/history")
        assert hist.status == 200
        points = (await hist.json())["points"]
        assert [p["downloads"] for p in points] == [100, 900]
        assert (await client.get("/models/no/such/history")).status == 404
        assert (await client.get("/datasets/a/x/history")).status == 404
        # The item route still answers (no clash with /history).
        assert (await client.get("/models/a/x")).status == 200

        feed = await client.get("/feeds/trending.atom")
        assert feed.status == 200 and "atom" in feed.headers["Content-Type"]
        root = ET.fromstring(await feed.text())
        titles = [e.findtext("{http://www.w3.org/2005/Atom}title") for e in root.iter("{http://www.w3.org/2005/Atom}entry")]
        assert titles[0] == "a/x"

        page = await client.get("/ui/trends", params={"window": "24h", "by": "rising"})
        html = await page.text()
        assert page.status == 200 and "a/x" in html and "<svg" in html and "<script" not in html
        item = await client.get("/ui/models/a/x")
        assert item.status == 200 and 'id="trend-chart"' in await item.text()
