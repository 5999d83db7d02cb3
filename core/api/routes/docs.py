"""`/openapi.json` (assembled from every route module) and `/docs` (Swagger UI from packaged assets, no CDN)."""

from __future__ import annotations

import importlib.util
from functools import cache
from importlib import resources
from pathlib import Path

from aiohttp import web

from core.api.errors import not_found
from core.api.openapi import operation, path_param, response

routes = web.RouteTableDef()

# Swagger UI 5 (OpenAPI 3.1 support) ships inside the `swagger-ui-py` wheel; we only read its files.
_SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")
_OWN_FILES = ("docs-init.js",)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>PROMETHEUS API</title>
<link rel="icon" href="/docs/static/favicon-32x32.png">
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<noscript>The interactive reference needs JavaScript; the document itself is at
<a href="/openapi.json">/openapi.json</a>, and the search page <a href="/ui">/ui</a> works without it.</noscript>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/docs-init.js"></script>
</body>
</html>
"""


@cache
def swagger_dir() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui")  # find_spec does not import it (its __init__ needs jinja2)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _asset(name: str) -> Path | None:
    if name in _OWN_FILES:
        return Path(str(resources.files("core.api").joinpath("static", name)))
    directory = swagger_dir()
    if name in _SWAGGER_FILES and directory is not None and (directory / name).is_file():
        return directory / name
    return None


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app["openapi"])


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    if swagger_dir() is None:
        raise not_found("Swagger UI assets are not installed (pip package swagger-ui-py); see /openapi.json")
    return web.Response(text=_PAGE, content_type="text/html")


@routes.get("/docs/static/{name}")
async def docs_asset(request: web.Request) -> web.StreamResponse:
    path = _asset(request.match_info["name"])
    if path is None:
        raise not_found(f"no asset {request.match_info['name']!r}")
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


OPENAPI = {
    "/openapi.json": {"get": operation("This document (OpenAPI 3.1)", tags=["docs"],
                                       responses={200: response("the OpenAPI document", {"type": "object"})})},
    "/docs": {"get": operation("Interactive API reference (Swagger UI, served locally)", tags=["docs"],
                               responses={200: response("HTML page", {"type": "string"}, media_type="text/html")})},
    "/docs/static/{name}": {"get": operation(
        "Swagger UI assets", tags=["docs"], parameters=[path_param("name", "asset file name")],
        responses={200: {"description": "the asset",
                         "content": {"*/*": {"schema": {"type": "string"}}}}})},
}
