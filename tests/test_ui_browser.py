"""The search page and the API docs in a real headless Chromium, driven over the DevTools protocol.

A person's path: open /ui, type a query, press the Search button, see the planted model, open
it, see its lineage. Then /docs must render Swagger UI from local assets with no request leaving
the machine. Skipped when Chromium is not installed (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.test_api import BASE, PLANT_WORD, QUANT, ApiServer, build_mirror

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1200,900")


class Page:
    """The few DevTools commands the test needs, over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._loaded = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
                if data.get("method") == "Page.loadEventFired":
                    self._loaded.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self.ws.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_load(self, action: Any) -> None:
        self._loaded.clear()
        await action
        await asyncio.wait_for(self._loaded.wait(), 60)

    async def wait_for(self, expression: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")

    async def click(self, selector: str) -> None:
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            f" return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    mirror = build_mirror(tmp_path_factory.mktemp("browser"), models=60, seed=3)
    server = ApiServer(mirror)
    yield server
    server.stop()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    browser = await asyncio.create_subprocess_exec(
        CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or browser.returncode is not None:
                pytest.fail("chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                await page.send("Network.enable")
                yield page
    finally:
        browser.terminate()
        try:
            await asyncio.wait_for(browser.wait(), 20)
        except TimeoutError:
            browser.kill()
            await browser.wait()


async def test_type_a_query_submit_and_open_the_item(page: Page, ui_server: ApiServer,
                                                     tmp_path: Path) -> None:
    await page.wait_load(page.send("Page.navigate", url=ui_server.url + "/ui"))
    assert await page.evaluate("document.title") == "Search · PROMETHEUS"
    await page.evaluate("document.querySelector('#q').focus()")
    await page.send("Input.insertText", text=PLANT_WORD)
    await page.wait_load(page.click("#go"))
    assert f"q={PLANT_WORD}" in await page.evaluate("location.href")
    link = f'a.title[href="/ui/models/{BASE}"]'
    assert await page.wait_for(f"!!document.querySelector({json.dumps(link)})")
    hub = await page.evaluate(f"document.querySelector('a.hub[href=\"https://huggingface.co/{BASE}\"]') !== null")
    assert hub
    await page.wait_load(page.click(link))
    assert await page.evaluate("location.pathname") == f"/ui/models/{BASE}"
    assert await page.evaluate("document.querySelector('h1').textContent") == BASE
    lineage = await page.evaluate("document.querySelector('#lineage').innerText")
    assert "Quantizations of it" in lineage and QUANT in lineage
    shot = await page.send("Page.captureScreenshot", format="png")
    assert len(shot["data"]) > 1000
    assert all(url.startswith((ui_server.url, "data:", "about:")) for url in page.requested_urls())


async def test_docs_render_offline(page: Page, ui_server: ApiServer) -> None:
    await page.wait_load(page.send("Page.navigate", url=ui_server.url + "/docs"))
    title = await page.wait_for("document.querySelector('.swagger-ui .info .title')?.textContent")
    assert "PROMETHEUS API" in title
    operations = await page.wait_for("document.querySelectorAll('.opblock').length")
    assert operations >= 20
    outside = [u for u in page.requested_urls() if not u.startswith((ui_server.url, "data:", "about:", "blob:"))]
    assert outside == [], outside
