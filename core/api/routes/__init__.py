"""Route modules, discovered automatically: add a file here and its routes are served and documented.

The contract for a module `core/api/routes/<name>.py` (files starting with `_` are skipped):

    from aiohttp import web
    from core.api import params
    from core.api.auth import require_api_key
    from core.api.errors import Problem, not_found
    from core.api.openapi import operation, query, path_param, response, ref

    routes = web.RouteTableDef()

    @routes.get("/things/{id}")
    async def get_thing(request: web.Request) -> web.Response:
        limit = params.limit(request.query)                 # 400 problem on bad input
        row = await request.app["db"].read(load_thing, request.match_info["id"], limit)
        if row is None:
            raise not_found("no such thing")                # -> application/problem+json 404
        return web.json_response(row)

    @routes.post("/things")
    @require_api_key                                        # write / trigger routes: Bearer key when configured
    async def add_thing(request: web.Request) -> web.Response:
        body = await params.json_object(request)
        await request.app["db"].write(insert_thing, body)   # fn(conn, ...) using core.store.write_tx
        ...

    OPENAPI = {                                             # every route must be documented (a test checks)
        "/things/{id}": {"get": operation("One thing", tags=["things"], parameters=[path_param("id")],
                                          responses={200: response("the thing", {"type": "object"})})},
        "/things": {"post": operation("Add a thing", tags=["things"], write=True,
                                      responses={201: response("created", {"type": "object"})})},
    }
    COMPONENTS = {"schemas": {...}}                         # optional: schemas for ref("Name")
    def setup(app: web.Application) -> None: ...            # optional: startup/cleanup hooks, app state

Shared helpers:
- `core.api.errors`: `Problem(status, detail)`, `bad_request`, `not_found`; the error middleware turns them
  (and any aiohttp 4xx) into problem+json. Never let user input reach SQL text.
- `core.api.params`: typed readers with bounds and whitelists (`text`, `integer`, `choice`, `kind`, `limit`,
  `only_known`, `json_object`, cursors and `next_link` for `Link` pagination).
- `core.api.auth`: `require_api_key`; `auth_exempt("why")` for a write route authenticated another way (the
  Hub webhook secret). A test fails on any non-GET route with neither.
- `request.app["db"]`: `await db.read(fn, *args)` runs `fn(conn, *args)` on a read-only connection in a thread;
  `await db.write(fn, *args)` on the single writer connection.
- `request.app["search"]` (may be None), `request.app["config"]`, `request.app["metrics"]`.
- `core.api.html`: `render(template, **values)` (escapes everything), `Safe`, `tag`, `link` for `/ui` pages;
  `core.api.routes.ui.page(request, title, body, status=200)` wraps a body in the site layout (nav, CSS).
- Rate limiting, CORS and security headers are applied to every route by the app; nothing to do per route.

Paths: repo ids contain a slash, so item routes use `core.api.routes.items.ID_PATTERN` (`[^/]+(?:/[^/]+)?`, one
or two segments): `/models/{id:<ID_PATTERN>}/history` does not collide with `/models/{id}`. Document the path
as `/models/{id}/history` (aiohttp's canonical form; the coverage test compares against it).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def route_modules() -> list[ModuleType]:
    """Every route module, in name order. A module that fails to import fails the app loudly."""
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if not hasattr(module, "routes"):
            continue
        if not hasattr(module, "OPENAPI"):
            raise RuntimeError(f"{module.__name__} has routes but no OPENAPI")
        modules.append(module)
    return modules
