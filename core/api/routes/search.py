"""Search routes: `POST /search`, `GET /search/{query}`, `GET /similar/{kind}/{id}`.

The engine (`core.search.SearchEngine`, in `app["search"]`) is synchronous, so each call runs
in a worker thread; its latency goes into the `hubmirror_search_seconds` histogram.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from core.api import params
from core.api.auth import auth_exempt
from core.api.errors import Problem, bad_request, not_found
from core.api.openapi import operation, path_param, query, ref, response, text_schema

routes = web.RouteTableDef()
T = TypeVar("T")

MODES = ("keyword", "semantic", "hybrid")
SORTS = ("relevance", "downloads", "likes", "created", "modified")
RELATIONS = ("finetune", "adapter", "merge", "quantized")
SEARCH_LIMIT_MAX = 200
OFFSET_MAX = 10_000
TEXT_FILTERS = ("author", "tag", "pipeline_tag", "library", "license", "base_model", "quant_format")
FILTER_NAMES = (*TEXT_FILTERS, "relation", "min_downloads", "min_params", "max_params")
PARAM_COUNT_MAX = 30  # characters of a parameter count ("7B", "  1.5 b ")


async def search_thread(request: web.Request, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on the app's search threads."""
    return await asyncio.get_running_loop().run_in_executor(request.app["search_pool"], fn, *args)


def engine_of(request: web.Request) -> Any:
    engine = request.app["search"]
    if engine is None:
        raise Problem(503, "search is not available on this server (core.search failed to load)")
    return engine


def _param_count(source: params.Source, name: str) -> int | None:
    value = source.get(name)
    if value is None or value == "":
        return None
    from core.search import parse_param_count

    if isinstance(value, float) and value.is_integer() and 0 <= value <= params.INT_MAX:
        value = int(value)  # JSON allows 7000000000.0 for an integer
    # The documented pattern, checked here: parse_param_count alone also takes "1_000", "inf" or "١٢".
    malformed = isinstance(value, str) and (len(value) > PARAM_COUNT_MAX
                                            or re.search(params.PARAM_COUNT_PATTERN, value) is None)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or malformed:
        raise bad_request(f"{name} must be a parameter count like 7B, 500M or 7000000000")
    try:
        count = parse_param_count(value)
    except (ValueError, OverflowError):
        raise bad_request(f"{name} must be a parameter count like 7B, 500M or 7000000000") from None
    if count < 0:
        raise bad_request(f"{name} must not be negative")
    return min(count, params.INT_MAX)  # "at most 10^27 parameters" is a fine, if loose, filter


def read_filters(source: params.Source, kind_source: params.Source) -> Any:
    """SearchFilters from query parameters (GET) or the body's `filters` object (POST)."""
    from core.search import SearchFilters

    values: dict[str, Any] = {name: params.text(source, name, max_length=200) for name in TEXT_FILTERS}
    values["relation"] = params.choice(source, "relation", RELATIONS)
    values["min_downloads"] = params.integer(source, "min_downloads", minimum=0, maximum=params.INT_MAX)
    values["min_params"] = _param_count(source, "min_params")
    values["max_params"] = _param_count(source, "max_params")
    if values["min_params"] is not None and values["max_params"] is not None \
            and values["min_params"] > values["max_params"]:
        raise bad_request("min_params is above max_params")
    return SearchFilters(kind=params.optional_kind(kind_source), **values)


async def run_search(request: web.Request, text: str, source: params.Source, filters: Any) -> dict[str, Any]:
    engine = engine_of(request)
    mode = params.choice(source, "mode", MODES, default="keyword")
    sort = params.choice(source, "sort", SORTS, default="relevance")
    limit = params.integer(source, "limit", default=20, minimum=1, maximum=SEARCH_LIMIT_MAX) or 20
    offset = params.integer(source, "offset", default=0, minimum=0, maximum=OFFSET_MAX) or 0

    async def compute() -> tuple[list[dict[str, Any]], bool]:
        started = time.perf_counter()
        try:
            hits, missing = await search_thread(request, _search, engine, text, filters, mode, sort, limit,
                                                offset)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        request.app["metrics"].search_seconds.labels(mode).observe(time.perf_counter() - started)
        return [hit.to_json() for hit in hits], missing

    if mode == "keyword":  # the others also depend on the vector index file, which the data version misses
        key = ("search", text, mode, sort, limit, offset, tuple(vars(filters).items()))
        results, index_missing = await request.app["cache"].get(key, compute, rows=lambda value: len(value[0]))
    else:
        results, index_missing = await compute()
    result: dict[str, Any] = {"query": text, "mode": mode, "sort": sort, "limit": limit, "offset": offset,
                              "results": results}
    if index_missing:
        result["warning"] = "the semantic index is not built yet: semantic results are empty"
    return result


def _search(engine: Any, text: str, filters: Any, mode: str, sort: str, limit: int,
            offset: int) -> tuple[list[Any], bool]:
    hits = engine.search(text, filters, mode=mode, sort=sort, limit=limit, offset=offset)
    # Checked here, off the event loop: the first get() may load the index from disk.
    return hits, mode != "keyword" and engine.index.get() is None


def _paged(request: web.Request, result: dict[str, Any]) -> web.Response:
    headers = {}
    if len(result["results"]) == result["limit"] and result["offset"] + result["limit"] <= OFFSET_MAX:
        headers["Link"] = f'<{params.next_link(request, offset=result["offset"] + result["limit"])}>; rel="next"'
    return web.json_response(result, headers=headers)


@routes.get("/search/{query}")
async def search_get(request: web.Request) -> web.Response:
    params.only_known(request.query, ("mode", "sort", "type", "limit", "offset", *FILTER_NAMES))
    text = request.match_info["query"]
    if len(text) > params.TEXT_MAX:
        raise bad_request(f"the query is longer than {params.TEXT_MAX} characters")
    filters = read_filters(request.query, request.query)
    return _paged(request, await run_search(request, text, request.query, filters))


@routes.post("/search")
@auth_exempt("read-only: a search whose filters travel in a JSON body")
async def search_post(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    params.only_known(body, ("query", "mode", "sort", "type", "limit", "offset", "filters"))
    filters_body = body.get("filters")
    filters_body = {} if filters_body is None else filters_body
    if not isinstance(filters_body, dict):
        raise bad_request("filters must be an object")
    params.only_known(filters_body, FILTER_NAMES)
    text = params.text(body, "query", default="") or ""
    result = await run_search(request, text, body, read_filters(filters_body, body))
    return web.json_response(result)


@routes.get("/similar/{kind}/{id:[^/]+(?:/[^/]+)?}")
async def similar(request: web.Request) -> web.Response:
    params.only_known(request.query, ("limit", "type", *FILTER_NAMES))
    engine = engine_of(request)
    kind = params.kind(request.match_info["kind"], name="kind")
    item_id = request.match_info["id"]
    limit = params.integer(request.query, "limit", default=10, minimum=1, maximum=SEARCH_LIMIT_MAX) or 10
    filters = read_filters(request.query, request.query) if request.query else None
    started = time.perf_counter()
    try:
        hits = await search_thread(request, functools.partial(engine.similar, limit=limit, filters=filters),
                                   kind, item_id)
    except LookupError as exc:
        raise not_found(str(exc)) from None
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    request.app["metrics"].search_seconds.labels("similar").observe(time.perf_counter() - started)
    return web.json_response({"kind": kind.value, "id": item_id, "results": [hit.to_json() for hit in hits]})


def _filter_parameters() -> list[dict[str, Any]]:
    text = text_schema(200)
    count = {"type": "string", "pattern": params.PARAM_COUNT_PATTERN, "maxLength": PARAM_COUNT_MAX,
             "description": "7B, 500M, 1.5B or a number"}
    return [
        *(query(name, text) for name in TEXT_FILTERS),
        query("relation", {"type": "string", "enum": list(RELATIONS)}),
        query("min_downloads", {"type": "integer", "minimum": 0, "maximum": params.INT_MAX}),
        query("min_params", count),
        query("max_params", count),
    ]


_KIND = {"type": "string", "enum": ["all", "models", "datasets", "spaces", "papers"], "default": "all"}
_COUNT_SCHEMA = {"oneOf": [{"type": "string", "pattern": params.PARAM_COUNT_PATTERN, "maxLength": PARAM_COUNT_MAX},
                           {"type": "integer", "minimum": 0, "maximum": params.INT_MAX}, {"type": "null"}]}
_FILTERS_SCHEMA = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        **{name: {"type": ["string", "null"], "maxLength": 200} for name in TEXT_FILTERS},
        "relation": {"enum": [*RELATIONS, None]},
        "min_downloads": {"type": ["integer", "null"], "minimum": 0, "maximum": params.INT_MAX},
        "min_params": _COUNT_SCHEMA,
        "max_params": _COUNT_SCHEMA,
    },
}
_SEARCH_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "query": {"type": ["string", "null"], "maxLength": params.TEXT_MAX,
                  "description": "empty: browse by filters"},
        "mode": {"enum": [*MODES, None], "default": "keyword"},
        "sort": {"enum": [*SORTS, None], "default": "relevance"},
        "type": {"enum": [*_KIND["enum"], None], "default": "all"},
        "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": SEARCH_LIMIT_MAX, "default": 20},
        "offset": {"type": ["integer", "null"], "minimum": 0, "maximum": OFFSET_MAX, "default": 0},
        "filters": _FILTERS_SCHEMA,
    },
}
_SEARCH_PARAMS = [
    query("mode", {"type": "string", "enum": list(MODES), "default": "keyword"}),
    query("sort", {"type": "string", "enum": list(SORTS), "default": "relevance"}),
    query("type", _KIND),
    query("limit", {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX, "default": 20}),
    query("offset", {"type": "integer", "minimum": 0, "maximum": OFFSET_MAX, "default": 0}),
]
_UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}

OPENAPI = {
    "/search": {"post": operation(
        "Search (keyword, semantic or hybrid) with filters", tags=["search"], body=_SEARCH_BODY,
        responses={200: response("hits", ref("SearchResults")), 503: _UNAVAILABLE})},
    "/search/{query}": {"get": operation(
        "Search by path (keyword by default)", tags=["search"],
        parameters=[path_param("query", "the words to look for", {"type": "string", "maxLength": params.TEXT_MAX}),
                    *_SEARCH_PARAMS, *_filter_parameters()],
        responses={200: response("hits; `Link` to the next page when full", ref("SearchResults")),
                   503: _UNAVAILABLE})},
    "/similar/{kind}/{id}": {"get": operation(
        "Items nearest in meaning to one item", tags=["search"],
        parameters=[path_param("kind", "models, datasets, spaces or papers",
                               {"type": "string", "enum": ["models", "datasets", "spaces", "papers"]}),
                    path_param("id", "the item's Hub id"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX, "default": 10}),
                    query("type", _KIND), *_filter_parameters()],
        responses={200: response("nearest items", {"type": "object", "required": ["kind", "id", "results"],
                                                   "properties": {"results": {"type": "array",
                                                                              "items": ref("SearchHit")}}}),
                   503: _UNAVAILABLE})},
}
