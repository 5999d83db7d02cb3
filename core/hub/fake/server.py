"""The fake Hub: an aiohttp server speaking the real Hub API's wire format over the seeded corpus.

`FakeHub` owns the corpus, one `RepoStore` per kind, the papers, the rate
limiter and the fault injector. A single middleware counts every request,
applies the rate limit and the faults (to `/api/*` only) and stamps the Hub's
headers; `/_fake/admin/*` is exempt from limits and faults.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from core.hub.fake import cursor as cursors
from core.hub.fake.corpus import Corpus
from core.hub.fake.faults import NO_FAULT, FaultConfig, FaultInjector
from core.hub.fake.limiter import FixedWindowLimiter, Verdict
from core.hub.fake.papers import DailyQuery
from core.hub.fake.params import BadRequest, expand_fields, list_query, parse_int
from core.hub.fake.repos import Filter, ListQuery, RepoStore
from core.hub.fake.wire import DETAIL_FIELDS, KINDS, iso, parse_iso

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATIC_HEADERS = {
    "Access-Control-Allow-Origin": "https://huggingface.co",
    "Access-Control-Expose-Headers": "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,"
                                     "Link,Accept-Ranges,Content-Range,X-Xet-Access-Token,X-Xet-Token-Expiration,"
                                     "X-Xet-Refresh-Route,X-Xet-Cas-Url,X-Xet-Hash",
    "Vary": "Origin",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Powered-By": "huggingface-moon",
    "cross-origin-opener-policy": "same-origin",
}
_PAPER_LIMIT = 100


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": message}, status, headers)


def _next_url(request: web.Request, replace: str, value: str) -> str:
    """The request's own absolute URL with every parameter kept (in order) and `replace` set to value."""
    raw_path, _, raw_query = request.raw_path.partition("?")
    parts = [p for p in raw_query.split("&") if p and p.split("=", 1)[0] != replace]
    parts.append(f"{replace}={value}")
    return f"{request.scheme}://{request.host}{raw_path}?{'&'.join(parts)}"


class FakeHub:
    """A fake Hugging Face Hub on loopback. See `core/hub/fake/__init__.py` for the public surface."""

    def __init__(self, *, models: int = 2000, datasets: int = 1000, spaces: int = 1000, papers: int = 500,
                 seed: int = 0, quota: int | None = None, window: float = 300.0,
                 faults: FaultConfig | None = None) -> None:
        self.corpus = Corpus(models=models, datasets=datasets, spaces=spaces, papers=papers, seed=seed)
        self.corpus.warm()
        self.stores: dict[str, RepoStore] = {kind: RepoStore(self.corpus.table(kind), seed) for kind in KINDS}
        self.papers = self.corpus.papers
        self.limiter = FixedWindowLimiter(quota, window)
        self._faults = FaultInjector(faults or FaultConfig())
        self.request_count = 0
        self.rate_limited_count = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._request_ids = itertools.count(1)
        self._boot = int(time.time())

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site = web.SockSite(self._runner, sock)
        await site.start()
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- in-process mutation (the same operations as the admin endpoint) ------------------------

    def _store(self, kind: str) -> RepoStore:
        if kind not in self.stores:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        return self.stores[kind]

    def create_repo(self, kind: str, repo_id: str, **fields: Any) -> dict[str, Any]:
        return self._store(kind).create(repo_id, fields, int(time.time()))

    def update_repo(self, kind: str, repo_id: str, **fields: Any) -> dict[str, Any]:
        return self._store(kind).update(repo_id, fields, int(time.time()))

    def delete_repo(self, kind: str, repo_id: str) -> None:
        self._store(kind).delete(repo_id)

    def rename_repo(self, kind: str, old_id: str, new_id: str) -> None:
        self._store(kind).rename(old_id, new_id, int(time.time()))

    def add_paper(self, arxiv_id: str, *, title: str, summary: str, authors: list[str],
                  published_at: str | None = None, **fields: Any) -> dict[str, Any]:
        if self.papers.get(arxiv_id) is not None:
            raise ValueError(f"paper {arxiv_id} already exists")
        published = parse_iso(published_at) if published_at else int(time.time())
        record = self.papers.add(arxiv_id, title=title, summary=summary, authors=list(authors),
                                 published_at=published, fields=fields)
        return self._paper_detail(record)

    def set_faults(self, faults: FaultConfig) -> None:
        self._faults = FaultInjector(faults)

    @property
    def faults(self) -> FaultConfig:
        return self._faults.config

    def set_rate_limit(self, quota: int | None, window: float = 300.0) -> None:
        self.limiter.configure(quota, window)

    def ids(self, kind: str) -> set[str]:
        if kind == "papers":
            return self.papers.ids()
        return self._store(kind).ids()

    def item(self, kind: str, repo_id: str) -> dict[str, Any] | None:
        """A private deep copy of what the detail endpoint would answer (None when it would 404)."""
        if kind == "papers":
            record = self.papers.get(repo_id)
            body = self._paper_detail(record) if record is not None else None
        else:
            body = self._store(kind).detail(repo_id, DETAIL_FIELDS[kind])
        return orjson.loads(orjson.dumps(body)) if body is not None else None

    # --- HTTP plumbing --------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        router = app.router
        for kind in KINDS:
            router.add_get(f"/api/{kind}", self._list_handler(kind))
            detail = self._detail_handler(kind)
            router.add_get(f"/api/{kind}/{{author}}/{{name}}", detail)
            router.add_get(f"/api/{kind}/{{author}}/{{name}}/revision/{{rev:.+}}", detail)
            router.add_get(f"/api/{kind}/{{name}}", detail)  # legacy ids without an author: redirects only
        router.add_get("/api/daily_papers", self._daily_papers)
        router.add_get("/api/papers", self._papers)
        router.add_get("/api/papers/search", self._papers_search)
        router.add_get("/api/papers/{paper_id}", self._paper)
        router.add_post("/_fake/admin/{action}", self._admin)
        router.add_get("/_fake/admin/ids/{kind}", self._admin_ids)
        router.add_get("/_fake/admin/stats", self._admin_stats)
        router.add_route("*", "/{tail:.*}", self._not_found)

    def _base_headers(self, verdict: Verdict) -> dict[str, str]:
        n = next(self._request_ids)
        headers = dict(_STATIC_HEADERS)
        headers["X-Request-Id"] = f"Root=1-{self._boot:08x}-{n:024x};{n:08x}-fake-4000-8000-{self._boot:012x}"
        headers.update(verdict.headers())
        return headers

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            response = await handler(request)
            response.headers.update(self._base_headers(self.limiter.peek()))
            return response
        self.request_count += 1
        verdict = self.limiter.hit()
        headers = self._base_headers(verdict)
        if not verdict.allowed:
            self.rate_limited_count += 1
            return _error("You have exceeded our rate limit: too many requests to the api. Try again later.", 429,
                          headers)
        decision = self._faults.draw() if request.path.startswith("/api/") else NO_FAULT
        if decision.delay:
            await asyncio.sleep(decision.delay)
        if decision.action == "error":
            return _error("Internal Error - We're working hard to fix this as soon as possible!", decision.status,
                          headers)
        if decision.action == "drop":
            return await self._drop(request)
        try:
            response = await handler(request)
        except BadRequest as exc:
            response = _error(str(exc), 400)
        except web.HTTPException as exc:  # aiohttp's own 404/405
            response = _error(exc.reason or "Not Found", exc.status)
        response.headers.update(headers)
        if decision.action == "truncate" and isinstance(response, web.Response):
            return await self._truncate(request, response)
        return response

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        """Close the connection without answering: the client sees a disconnect, not a status."""
        transport = request.transport
        if transport is not None:
            transport.abort()
        # Nothing can reach the client any more; aiohttp discards this response quietly.
        return web.Response(status=499)

    async def _truncate(self, request: web.Request, response: web.Response) -> web.StreamResponse:
        """Send the full Content-Length but only part of the body, then close the connection."""
        body = bytes(response.body or b"")
        stream = web.StreamResponse(status=response.status, headers=response.headers)
        stream.content_length = len(body)
        await stream.prepare(request)
        await stream.write(body[: max(1, len(body) // 2)] if len(body) > 1 else b"")
        transport = request.transport
        if transport is not None:
            await asyncio.sleep(0)  # let the partial body reach the socket before closing it
            transport.close()
        return stream

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error("Not Found", 404)

    # --- repos ----------------------------------------------------------------------------------

    def _list_handler(self, kind: str) -> Handler:
        store = self.stores[kind]

        async def handle(request: web.Request) -> web.StreamResponse:
            params = request.query
            repeated = {name: params.getall(name) for name in ("filter", "expand", "expand[]") if name in params}
            query = list_query(kind, params, repeated)
            page = store.page(query)
            headers = {}
            if page.next_after is not None:
                value, oid = page.next_after
                token = cursors.encode(query.sort, query.desc, value, oid)
                headers["Link"] = f'<{_next_url(request, "cursor", quote(token, safe=""))}>; rel="next"'
            return _json(page.items, headers=headers)

        return handle

    def _detail_handler(self, kind: str) -> Handler:
        store = self.stores[kind]

        async def handle(request: web.Request) -> web.StreamResponse:
            info = request.match_info
            repo_id = f"{info['author']}/{info['name']}" if "author" in info else info["name"]
            expand = request.query.getall("expand", []) + request.query.getall("expand[]", [])
            fields = expand_fields(kind, expand) if expand else DETAIL_FIELDS[kind]
            body = store.detail(repo_id, fields) if "/" in repo_id else None
            if body is not None:
                return _json(body)
            target = store.redirect(repo_id)
            if target is not None:
                location = f"/api/{kind}/{target}"
                return web.Response(status=307, text=f"Temporary Redirect. Redirecting to {location}",
                                    headers={"Location": location}, content_type="text/plain", charset="utf-8")
            message = "Repository not found"
            return _error(message, 404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": message})

        return handle

    # --- papers ---------------------------------------------------------------------------------

    async def _daily_papers(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        page = parse_int("p", q.get("p"), 0, low=0)
        limit = parse_int("limit", q.get("limit"), 50, low=1, high=_PAPER_LIMIT)
        sort = q.get("sort") or "publishedAt"
        if sort not in ("publishedAt", "trending"):
            raise BadRequest("Invalid sort: expected publishedAt or trending")
        date = q.get("date")
        if date is not None:
            try:
                date = time.strftime("%Y-%m-%d", time.gmtime(parse_iso(date[:10])))
            except ValueError:
                raise BadRequest(f"Invalid date {date!r}: expected YYYY-MM-DD") from None
        records = self.papers.daily(DailyQuery(date=date, week=q.get("week"), month=q.get("month"),
                                               submitter=q.get("submitter"), sort=sort))
        chunk = records[page * limit:(page + 1) * limit]
        headers = {}
        if len(records) > (page + 1) * limit:
            headers["Link"] = f'<{_next_url(request, "p", str(page + 1))}>; rel="next"'
        return _json([self.papers.daily_item(r) for r in chunk], headers=headers)

    async def _papers(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        limit = parse_int("limit", q.get("limit"), 50, low=1, high=_PAPER_LIMIT)
        position = None
        if q.get("cursor"):
            try:
                value, tie = cursors.decode(q["cursor"], "publishedAt", True, tie_key="id")
                position = (parse_iso(str(value)), tie)
            except ValueError as exc:
                raise BadRequest(f"Invalid cursor: {exc}") from None
        records = self.papers.after(position, limit + 1)
        headers = {}
        if len(records) > limit:
            records = records[:limit]
            last = records[-1]
            token = cursors.encode("publishedAt", True, iso(last["publishedAt"]), last["id"], tie_key="id")
            headers["Link"] = f'<{_next_url(request, "cursor", quote(token, safe=""))}>; rel="next"'
        return _json([self.papers.list_item(r) for r in records], headers=headers)

    async def _papers_search(self, request: web.Request) -> web.StreamResponse:
        needle = (request.query.get("q") or "").lower()
        limit = parse_int("limit", request.query.get("limit"), 50, low=1, high=120)
        hits = [r for r in self.papers.ordered("published")
                if needle in r["title"].lower() or needle in r["summary"].lower()][:limit]
        return _json([self.papers.daily_item(r) for r in hits])

    async def _paper(self, request: web.Request) -> web.StreamResponse:
        record = self.papers.get(request.match_info["paper_id"])
        if record is None:
            return _error("Paper not found", 404, {"X-Error-Message": "Paper not found"})
        return _json(self._paper_detail(record))

    def _paper_detail(self, record: dict[str, Any]) -> dict[str, Any]:
        """Detail body with the repos citing the paper (their `arxiv:<id>` tag), most downloaded first."""
        tag = f"arxiv:{record['id']}"
        linked: dict[str, list[dict[str, Any]]] = {}
        for kind, repo_type in (("models", "model"), ("datasets", "dataset")):
            fields = ("_id", "id", "author", "downloads", "likes", "lastModified", "private", "gated",
                      *(("pipeline_tag", "safetensors") if kind == "models" else ()))
            query = ListQuery(sort="downloads", desc=True, limit=20, fields=fields, filter=Filter(tags=(tag,)))
            rows = []
            for item in self.stores[kind].page(query).items:
                row: dict[str, Any] = {"author": item["author"], "downloads": item["downloads"], "id": item["id"]}
                if kind == "models":
                    row["availableInferenceProviders"] = []
                row.update({"isLikedByUser": False, "lastModified": item["lastModified"], "likes": item["likes"],
                            "private": item["private"], "repoType": repo_type, "gated": item["gated"]})
                if item.get("pipeline_tag"):
                    row["pipeline_tag"] = item["pipeline_tag"]
                if item.get("safetensors"):
                    row["numParameters"] = item["safetensors"]["total"]
                rows.append(row)
            linked[kind] = rows
        return self.papers.detail(record, linked)

    # --- admin ----------------------------------------------------------------------------------

    async def _admin(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return _json(self._admin_action(request.match_info["action"], body))
        except KeyError as exc:
            return _error(str(exc.args[0]) if exc.args else "not found", 404)
        except (ValueError, TypeError) as exc:
            return _error(str(exc), 400)

    def _admin_action(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        def need(key: str) -> Any:
            if key not in body:
                raise ValueError(f"missing {key!r} in the request body")
            return body[key]

        fields = body.get("fields") or {}
        if not isinstance(fields, dict):
            raise ValueError("'fields' must be an object")
        if action == "create":
            return {"ok": True, "item": self.create_repo(need("kind"), need("repo_id"), **fields)}
        if action == "update":
            return {"ok": True, "item": self.update_repo(need("kind"), need("repo_id"), **fields)}
        if action == "delete":
            self.delete_repo(need("kind"), need("repo_id"))
            return {"ok": True}
        if action == "rename":
            self.rename_repo(need("kind"), body.get("old_id") or need("repo_id"), need("new_id"))
            return {"ok": True}
        if action == "add_paper":
            paper = self.add_paper(need("arxiv_id"), title=need("title"), summary=body.get("summary", ""),
                                   authors=body.get("authors", []), published_at=body.get("published_at"),
                                   **fields)
            return {"ok": True, "paper": paper}
        if action == "faults":
            config = FaultConfig(**{k: v for k, v in body.items() if k in FaultConfig.__dataclass_fields__})
            self.set_faults(config)
            return {"ok": True, "faults": config.to_dict()}
        if action == "rate_limit":
            self.set_rate_limit(body.get("quota"), float(body.get("window", 300.0)))
            return {"ok": True, "quota": body.get("quota"), "window": self.limiter.window}
        raise KeyError(f"unknown admin action {action!r}")

    async def _admin_ids(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in (*KINDS, "papers"):
            return _error(f"unknown kind {kind!r}", 404)
        ids = sorted(self.ids(kind))
        return _json({"kind": kind, "count": len(ids), "ids": ids})

    async def _admin_stats(self, request: web.Request) -> web.Response:
        counts = {kind: len(store) for kind, store in self.stores.items()}
        counts["papers"] = len(self.papers.records)
        return _json({"counts": counts, "request_count": self.request_count,
                      "rate_limited_count": self.rate_limited_count, "faults": self.faults.to_dict(),
                      "quota": self.limiter.quota, "window": self.limiter.window})

