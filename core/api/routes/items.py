"""Item routes: `/{kind}` lists (whitelisted filters and sorts, cursor pages, `Link` headers),
`/{kind}/{id}` details (lineage, cited papers, citing repos) and `/priority`."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core.api import params, queries
from core.api.errors import bad_request, not_found
from core.api.openapi import nullable, operation, path_param, query, ref, response, text_schema
from core.kinds import ALL_KINDS, Kind

routes = web.RouteTableDef()

ID_PATTERN = r"[^/]+(?:/[^/]+)?"  # `name` or `author/name` (and old arXiv ids like hep-th/9901001)
LIST_DEFAULT_LIMIT = 50
_PAGING = ("limit", "cursor", "sort", "order")


def filter_values(kind: Kind, source: params.Source) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in queries.filters_for(kind).items():
        if spec.value_type is int:
            value: Any = params.integer(source, name, minimum=0, maximum=params.INT_MAX)
        else:
            value = params.text(source, name, max_length=200)
        if value is not None:
            values[name] = value
    return values


def read_list_query(kind: Kind, source: params.Source) -> queries.ListQuery:
    params.only_known(source, (*_PAGING, *queries.filters_for(kind)))
    sort = params.choice(source, "sort", list(queries.sorts_for(kind)), default=queries.default_sort(kind))
    order = params.choice(source, "order", ("desc", "asc"), default="desc")
    assert sort is not None and order is not None
    query = queries.ListQuery(kind, sort, descending=order == "desc", filters=filter_values(kind, source),
                              limit=params.limit(source, default=LIST_DEFAULT_LIMIT))
    state = params.decode_cursor(params.text(source, "cursor", max_length=2000))
    if state is not None:
        valid = (len(state) == 5 and state[2] in ("value", "null") and isinstance(state[4], int)
                 and not isinstance(state[4], bool) and (state[3] is None or isinstance(state[3], (str, int, float))))
        if not valid:
            raise bad_request("cursor is not valid (pass back the `next` link unchanged)")
        if state[:2] != [sort, order]:
            raise bad_request("cursor was made for another sort or order")
        query.cursor = state[2:]
    return query


def _list_handler(kind: Kind) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def list_items(request: web.Request) -> web.Response:
        query = read_list_query(kind, request.query)

        async def compute() -> tuple[list[dict[str, Any]], list[Any] | None]:
            page = await request.app["db"].read(queries.list_items, query)
            return [queries.item_json(kind, row) for row in page.rows], page.next_cursor

        key = ("list", kind, query.sort, query.descending, tuple(sorted(query.filters.items())), query.limit,
               None if query.cursor is None else tuple(query.cursor))
        items, next_cursor = await request.app["cache"].get(key, compute, rows=lambda value: len(value[0]))
        token = None
        headers = {}
        if next_cursor is not None:
            token = params.encode_cursor([query.sort, "desc" if query.descending else "asc", *next_cursor])
            headers["Link"] = f'<{params.next_link(request, cursor=token)}>; rel="next"'
        return web.json_response({"items": items, "next_cursor": token}, headers=headers)

    list_items.__name__ = f"list_{kind.plural}"
    return list_items


def item_detail(conn: sqlite3.Connection, kind: Kind, item_id: str, raw: bool) -> dict[str, Any] | None:
    row = queries.get_item(conn, kind, item_id)
    if row is None:
        return None
    item = queries.item_json(kind, row, raw=raw)
    if kind is Kind.MODEL:
        item["lineage"] = queries.lineage(conn, row["pk"], row["id"])
    if kind is Kind.PAPER:
        item["cited_by"] = queries.citing_items(conn, row["id"])
    else:
        item["papers"] = queries.cited_papers(conn, item.get("arxiv_ids") or [])
    return item


def _detail_handler(kind: Kind) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def get_item(request: web.Request) -> web.Response:
        params.only_known(request.query, ("raw",))
        raw = params.boolean(request.query, "raw")
        item_id = request.match_info["id"]
        if len(item_id) > 300:
            raise bad_request("id is too long")
        item = await request.app["db"].read(item_detail, kind, item_id, raw)
        if item is None:
            raise not_found(f"no {kind.value} {item_id!r} in the mirror")
        return web.json_response(item)

    get_item.__name__ = f"get_{kind.value}"
    return get_item


for _kind in ALL_KINDS:
    routes.get(f"/{_kind.plural}")(_list_handler(_kind))
    routes.get(f"/{_kind.plural}/{{id:{ID_PATTERN}}}")(_detail_handler(_kind))


@routes.get("/priority")
async def priority(request: web.Request) -> web.Response:
    params.only_known(request.query, ("limit",))
    limit = params.limit(request.query, default=LIST_DEFAULT_LIMIT)
    config = request.app["config"]
    rows = await request.app["db"].read(
        lambda conn: list(queries.priority_items(conn, config.priority_authors, config.priority_models, limit=limit)))
    return web.json_response({
        "authors": config.priority_authors,
        "tags": config.priority_tags,
        "models": config.priority_models,
        "items": [queries.item_json(Kind.MODEL, row) for row in rows],
    })


def list_parameters(kind: Kind) -> list[dict[str, Any]]:
    parameters = [
        query("limit", {"type": "integer", "minimum": 1, "maximum": params.LIMIT_MAX, "default": LIST_DEFAULT_LIMIT},
              "items per page (at most 1000)"),
        query("cursor", text_schema(2000),
              "from the previous page's `next_cursor` or `Link` header"),
        query("sort", {"type": "string", "enum": list(queries.sorts_for(kind)),
                       "default": queries.default_sort(kind)}, "sort key"),
        query("order", {"type": "string", "enum": ["desc", "asc"], "default": "desc"}),
    ]
    for name, spec in queries.filters_for(kind).items():
        schema = {"type": "integer", "minimum": 0, "maximum": params.INT_MAX} if spec.value_type is int \
            else text_schema(200)
        parameters.append(query(name, schema, spec.description))
    return parameters


_LINK = {"Link": {"schema": {"type": "string"}, "description": '`<next page URL>; rel="next"` when there is more'}}
_DETAIL_EXTRA = {
    "lineage": {"type": "object", "description": "models: bases, and children by relation"},
    "papers": {"type": "array", "description": "repos: the papers it cites (`arxiv:` tags)"},
    "cited_by": {"type": "object", "description": "papers: models, datasets and spaces citing it"},
    "raw": {"type": ["object", "array"]},
}

OPENAPI: dict[str, Any] = {
    "/priority": {"get": operation(
        "Recent models from the configured priority authors and models", tags=["items"],
        parameters=[query("limit", {"type": "integer", "minimum": 1, "maximum": params.LIMIT_MAX})],
        responses={200: response("priority configuration and items", {
            "type": "object", "required": ["authors", "tags", "models", "items"],
            "properties": {"authors": {"type": "array"}, "tags": {"type": "array"}, "models": {"type": "array"},
                           "items": {"type": "array", "items": ref("RepoItem")}}})})},
}
for _kind in ALL_KINDS:
    _item_schema = ref("Paper") if _kind is Kind.PAPER else ref("RepoItem")
    OPENAPI[f"/{_kind.plural}"] = {"get": operation(
        f"List {_kind.plural}", tags=["items"], parameters=list_parameters(_kind),
        operation_id=f"list_{_kind.plural}",
        responses={200: response(f"one page of {_kind.plural}", {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": _item_schema}, "next_cursor": nullable("string")},
        }, headers=_LINK)})}
    OPENAPI[f"/{_kind.plural}/{{id}}"] = {"get": operation(
        f"One {_kind.value}", tags=["items"], operation_id=f"get_{_kind.value}",
        parameters=[path_param("id", "the Hub id (`author/name`; the slash may be sent as is or as %2F)"),
                    query("raw", {"type": "boolean"}, "include the Hub's JSON as mirrored")],
        responses={200: response(f"the {_kind.value}", {"allOf": [_item_schema, {"type": "object",
                                                                                 "properties": _DETAIL_EXTRA}]})})}
