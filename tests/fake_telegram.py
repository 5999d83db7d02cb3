"""A fake Telegram Bot API on loopback: records sendMessage, and can fail on demand.

    tg = FakeTelegram()                      # or FakeTelegramThread() for tests that block their loop
    url = await tg.start()                   # http://127.0.0.1:PORT  → TELEGRAM_API_BASE
    ...                                      # python-telegram-bot: Bot(token, base_url=url + "/bot")
    tg.messages                              # [SentMessage(chat_id, text, parse_mode, plain, at, ...)]
    tg.fail_next(2, status=502)              # the next 2 sendMessage calls answer 502
    tg.rate_limit_next(1, retry_after=3)     # answer 429 with parameters.retry_after = 3
    tg.hang_next(1)                          # accept the request and never answer (client times out)
    tg.set_down(True)                        # every call answers 503 until set_down(False)
    tg.set_hang(True)                        # every call hangs until set_hang(False)
    tg.delay_seconds = 0.05                  # answer accepted messages this late (recorded first, like a
                                             # real server that delivered before the client got the answer)
    await tg.close()

Every sendMessage is validated like Telegram does for its parse mode (`HTML`,
`MarkdownV2`): text that Telegram would reject gets 400 "can't parse entities",
so formatting bugs fail tests instead of passing silently. `SentMessage.plain`
is the text a user would read (markup removed, escapes resolved).

`attempts` counts every sendMessage request, failed or not; `messages` holds only
accepted ones. `record_to` (a path) appends each accepted message as a JSON line,
for processes that need to read them from outside.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import web

_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler",
              "span", "blockquote", "tg-emoji"}
_MD_RESERVED = set("_*[]()~`>#+-=|{}.!")


class ParseEntitiesError(ValueError):
    pass


@dataclass
class SentMessage:
    chat_id: str
    text: str
    parse_mode: str | None
    plain: str
    at: float  # time.time() when accepted
    message_id: int
    links: list[str] = field(default_factory=list)


class _HTMLCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HTML_TAGS:
            raise ParseEntitiesError(f"Unsupported start tag \"{tag}\"")
        if tag == "a":
            href = dict(attrs).get("href")
            if not href:
                raise ParseEntitiesError("<a> without href")
            self.links.append(href)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise ParseEntitiesError(f"Can't find end tag corresponding to start tag \"{tag}\"")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> tuple[str, list[str]]:
    """Telegram accepts only &lt; &gt; &amp; &quot; and numeric entities, and a bare `<` or `&` is an error."""
    for match in re.finditer(r"&([^;\s]*);?", text):
        entity = match.group(0)
        if not re.fullmatch(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);", entity):
            raise ParseEntitiesError(f"Unsupported entity or bare '&' at {match.start()}")
    if re.search(r"<(?![a-zA-Z/])", text):
        raise ParseEntitiesError("Unexpected '<'")
    checker = _HTMLCheck()
    checker.feed(text)
    checker.close()
    if checker.stack:
        raise ParseEntitiesError(f"Unclosed tag \"{checker.stack[-1]}\"")
    return html.unescape("".join(checker.text)), checker.links


def parse_markdown_v2(text: str) -> tuple[str, list[str]]:
    """A strict reading of MarkdownV2: every reserved character outside an entity must be escaped."""
    out: list[str] = []
    links: list[str] = []
    open_marks: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                raise ParseEntitiesError("Escape at end of text")
            out.append(text[i + 1])
            i += 2
            continue
        if c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise ParseEntitiesError("Unclosed code entity")
            out.append(re.sub(r"\\(.)", r"\1", text[i + 1:end]))
            i = end + 1
            continue
        if c == "[":
            open_marks.append("[")
            i += 1
            continue
        if c == "]":
            if not open_marks or open_marks[-1] != "[":
                raise ParseEntitiesError(f"Character ']' is reserved and must be escaped (at {i})")
            open_marks.pop()
            if i + 1 >= n or text[i + 1] != "(":
                raise ParseEntitiesError("Link text must be followed by (url)")
            j = i + 2
            url: list[str] = []
            while j < n and text[j] != ")":
                if text[j] == "\\" and j + 1 < n:
                    url.append(text[j + 1])
                    j += 2
                    continue
                url.append(text[j])
                j += 1
            if j >= n:
                raise ParseEntitiesError("Unclosed link url")
            links.append("".join(url))
            i = j + 1
            continue
        if c in "*_~|":
            mark = "||" if c == "|" and text.startswith("||", i) else ("__" if text.startswith("__", i) else c)
            if c == "|" and mark != "||":
                raise ParseEntitiesError(f"Character '|' is reserved and must be escaped (at {i})")
            if open_marks and open_marks[-1] == mark:
                open_marks.pop()
            else:
                open_marks.append(mark)
            i += len(mark)
            continue
        if c in _MD_RESERVED:
            raise ParseEntitiesError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        out.append(c)
        i += 1
    if open_marks:
        raise ParseEntitiesError(f"Can't find end of {open_marks[-1]} entity")
    return "".join(out), links


class FakeTelegram:
    """The fake Bot API. Methods: sendMessage, getMe (anything else answers 404 like Telegram)."""

    def __init__(self, *, record_to: Path | str | None = None, hang_seconds: float = 3600.0,
                 delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds
        self.messages: list[SentMessage] = []
        self.attempts = 0
        self.failures: list[tuple[str, Any]] = []  # queued one-shot behaviours
        self.down = False
        self.hang = False
        self.hang_seconds = hang_seconds
        self.record_to = Path(record_to) if record_to else None
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()
        self._next_id = 1

    # -- control (thread-safe) ---------------------------------------------------
    def fail_next(self, count: int = 1, status: int = 502) -> None:
        with self._lock:
            self.failures += [("status", status)] * count

    def rate_limit_next(self, count: int = 1, retry_after: int = 1) -> None:
        with self._lock:
            self.failures += [("429", retry_after)] * count

    def hang_next(self, count: int = 1) -> None:
        with self._lock:
            self.failures += [("hang", None)] * count

    def set_down(self, down: bool) -> None:
        self.down = down

    def set_hang(self, hang: bool) -> None:
        self.hang = hang

    def texts(self) -> list[str]:
        return [m.plain for m in self.messages]

    # -- server --------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        params: dict[str, Any] = {}
        for key, value in form.items():
            params[key] = value if isinstance(value, str) else str(value)
        params.update(request.query)
        return params

    @staticmethod
    def _error(status: int, description: str, parameters: dict | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        if method.lower() == "getme":
            return web.json_response({"ok": True, "result": {
                "id": 1, "is_bot": True, "first_name": "Fake", "username": "fake_bot"}})
        if method.lower() != "sendmessage":
            return self._error(404, "Not Found")
        with self._lock:
            self.attempts += 1
            behaviour = self.failures.pop(0) if self.failures else None
        if self.hang or (behaviour and behaviour[0] == "hang"):
            await asyncio.sleep(self.hang_seconds)
            return self._error(504, "Gateway Timeout")
        if self.down:
            return self._error(503, "Service Unavailable")
        if behaviour and behaviour[0] == "status":
            return self._error(behaviour[1], "Bad Gateway" if behaviour[1] == 502 else "Internal Server Error")
        if behaviour and behaviour[0] == "429":
            return self._error(429, f"Too Many Requests: retry after {behaviour[1]}",
                               {"retry_after": behaviour[1]})
        text = str(params.get("text") or "")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        mode = params.get("parse_mode") or None
        try:
            if mode == "HTML":
                plain, links = parse_html(text)
            elif mode == "MarkdownV2":
                plain, links = parse_markdown_v2(text)
            elif mode is None:
                plain, links = text, []
            else:
                return self._error(400, f"Bad Request: unsupported parse_mode {mode}")
        except ParseEntitiesError as exc:
            return self._error(400, f"Bad Request: can't parse entities: {exc}")
        chat_id = str(params.get("chat_id"))
        with self._lock:
            message_id = self._next_id
            self._next_id += 1
            sent = SentMessage(chat_id, text, mode, plain, time.time(), message_id, links)
            self.messages.append(sent)
            if self.record_to:
                with self.record_to.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(asdict(sent)) + "\n")
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        chat = {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else 1, "type": "private"}
        return web.json_response({"ok": True, "result": {
            "message_id": message_id, "date": int(sent.at), "chat": chat, "text": plain}})


class FakeTelegramThread:
    """FakeTelegram on its own thread and loop, for tests that block (subprocesses, sync code).

    Same control methods; `.url`, `.messages`, `.attempts` read through to the server.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.fake = FakeTelegram(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("fake telegram did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.fake.start())
        self._ready.set()
        self._loop.run_forever()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake, name)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
