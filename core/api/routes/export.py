"""`GET /export`: every live item of a kind (filtered) as NDJSON or CSV, streamed in constant memory.

Rows are read in pk batches, each in its own short read, and written as they come: memory stays
flat for a million items and no read transaction pins the WAL for the whole download.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from aiohttp import web

from core.api import params, queries
from core.api.errors import bad_request
from core.api.openapi import operation, query, text_schema
from core.api.routes.items import filter_values
from core.kinds import ALL_KINDS, Kind

routes = web.RouteTableDef()

BATCH = 1000
REPO_FIELDS = ("id", "author", "downloads", "likes", "tags", "pipeline_tag", "library_name", "sdk", "license",
               "base_model", "base_relation", "quant_format", "num_parameters", "arxiv_ids", "gated",
               "created_at", "last_modified")
PAPER_FIELDS = ("id", "title", "authors", "published_at", "upvotes", "num_comments", "submitted_by",
                "ai_keywords", "github_repo")
_JSON_FIELDS = ("tags", "arxiv_ids", "authors", "ai_keywords")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def fields_for(kind: Kind) -> tuple[str, ...]:
    return PAPER_FIELDS if kind is Kind.PAPER else REPO_FIELDS


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    # Exported Hub text is untrusted: a cell starting like a formula would run in a spreadsheet.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


@routes.get("/export")
async def export(request: web.Request) -> web.StreamResponse:
    source = request.query
    kind = params.kind(params.text(source, "type", default="models"))
    params.only_known(source, ("type", "format", "fields", "limit", *queries.FILTERS))
    fmt = params.choice(source, "format", ("ndjson", "csv"), default="ndjson")
    available = fields_for(kind)
    wanted = params.text(source, "fields", max_length=1000)
    fields = tuple(f.strip() for f in wanted.split(",") if f.strip()) if wanted else available
    unknown = [f for f in fields if f not in available]
    if unknown or not fields:
        raise bad_request(f"unknown field {unknown[0] if unknown else ''!r}; available: {', '.join(available)}")
    limit = params.integer(source, "limit", minimum=1, maximum=params.INT_MAX)
    for other in ALL_KINDS:
        filter_values(other, source)  # validate every filter given, whichever kind it belongs to
    filters = filter_values(kind, source)
    # A filter this kind cannot satisfy (upvotes of a model) matches nothing, as in search.
    if any(source.get(name) not in (None, "") for name in set(queries.FILTERS) - set(queries.filters_for(kind))):
        limit = 0

    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson",
        "Content-Disposition": f'attachment; filename="{kind.plural}.{fmt}"',
    })
    response.enable_chunked_encoding()
    await response.prepare(request)
    if fmt == "csv":
        await response.write(_csv_lines([fields]))
    db = request.app["db"]
    after, sent = 0, 0
    while limit != 0 and (limit is None or sent < limit):
        batch = BATCH if limit is None else min(BATCH, limit - sent)
        rows = await db.read(queries.iterate_items, kind, filters, after, batch)
        if not rows:
            break
        after = rows[-1]["pk"]
        sent += len(rows)
        records = [[orjson.loads(row[f]) if f in _JSON_FIELDS and row[f] else
                    ([] if f in _JSON_FIELDS else row[f]) for f in fields] for row in rows]
        if fmt == "csv":
            await response.write(_csv_lines([[_csv_cell(v) for v in record] for record in records]))
        else:
            await response.write(b"".join(orjson.dumps(dict(zip(fields, record, strict=True))) + b"\n"
                                          for record in records))
    await response.write_eof()
    return response


def _csv_lines(rows: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


_ALL_FILTERS: dict[str, queries.Filter] = {}
for _kind in ALL_KINDS:
    _ALL_FILTERS.update(queries.filters_for(_kind))

OPENAPI = {
    "/export": {"get": operation(
        "Export every live item of a kind as NDJSON (default) or CSV, streamed", tags=["items"],
        description="Accepts the list filters of the chosen type. CSV cells holding lists are `;`-joined; "
                    "cells that would start a spreadsheet formula are prefixed with `'`.",
        parameters=[
            query("type", {"type": "string", "enum": [k.plural for k in ALL_KINDS], "default": "models"}),
            query("format", {"type": "string", "enum": ["ndjson", "csv"], "default": "ndjson"}),
            query("fields", text_schema(1000),
                  f"comma-separated; repos: {', '.join(REPO_FIELDS)}; papers: {', '.join(PAPER_FIELDS)}"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": params.INT_MAX}, "at most this many rows"),
            *(query(name, {"type": "integer", "minimum": 0, "maximum": params.INT_MAX} if f.value_type is int
                    else text_schema(200),
                    f"{f.description} (types: {', '.join(k.plural for k in f.kinds)})")
              for name, f in _ALL_FILTERS.items()),
        ],
        responses={200: {"description": "one JSON object per line, or CSV with a header row",
                         "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                     "text/csv": {"schema": {"type": "string"}}}}})},
}
