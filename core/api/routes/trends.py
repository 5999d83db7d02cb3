"""Trends over HTTP: `GET /trends`, `GET /{kind}/{id}/history`, `/feeds/trending.atom`, `/ui/trends`.

Reads go through the read-only pool. When the cached figures of a window are
stale, the single writer recomputes them first (normally the crawler's hot
sweep has already done so), so a request never computes a month of history on
a reader thread.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape as xml_escape

from aiohttp import web

from core import trends as tr
from core.api import params
from core.api.errors import bad_request, not_found
from core.api.html import Safe, join, link, tag
from core.api.openapi import operation, path_param, query, response, text_schema
from core.api.routes.items import ID_PATTERN
from core.kinds import REPO_KINDS, Kind

routes = web.RouteTableDef()

_PARAMS = ("type", "window", "by", "author", "tag", "base_model", "limit")
ATOM_TYPE = "application/atom+xml; charset=utf-8"


def _query(source: params.Source) -> tuple[tr.TrendQuery, bool]:
    """The query, and whether it can match anything: `base_model` on datasets or spaces matches nothing
    (as a filter that does not apply to a kind does in search and export), not a 400, since the schema
    cannot tie one parameter to another's value."""
    params.only_known(source, _PARAMS)
    kind = params.kind(params.text(source, "type", default="models", max_length=20))
    if not kind.is_repo:
        raise bad_request("type must be models, datasets or spaces")
    base_model = params.text(source, "base_model")
    try:
        query = tr.TrendQuery.parse(
            kind=kind.plural, window=params.choice(source, "window", tuple(tr.WINDOWS)),
            by=params.choice(source, "by", tr.BY_CHOICES), author=params.text(source, "author"),
            tag=params.text(source, "tag"), base_model=base_model if kind is Kind.MODEL else None,
            limit=params.integer(source, "limit", default=20, minimum=1, maximum=1000),
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return query, not (base_model and kind is not Kind.MODEL)


def _read_trends(conn: sqlite3.Connection, query: tr.TrendQuery) -> tuple[list[tr.TrendRow], str | None]:
    return tr.trends(conn, query, refresh=False), tr.as_of(conn, query.kind, query.window)


def _needs_refresh(conn: sqlite3.Connection, query: tr.TrendQuery) -> bool:
    return query.window in tr.WINDOWS.values() and not tr.cache_is_fresh(conn, query.kind, query.window)


async def _run(request: web.Request, query: tr.TrendQuery,
               can_match: bool = True) -> tuple[list[tr.TrendRow], str | None]:
    db = request.app["db"]
    if await db.read(_needs_refresh, query):
        await db.write(tr.refresh_cache, None, (query.kind,), (query.window,))
    rows, as_of = await db.read(_read_trends, query)
    return (rows if can_match else []), as_of


def _window_label(seconds: int) -> str:
    return next((k for k, v in tr.WINDOWS.items() if v == seconds), f"{seconds // 3600}h")


@routes.get("/trends")
async def get_trends(request: web.Request) -> web.Response:
    query, can_match = _query(request.query)
    rows, as_of = await _run(request, query, can_match)
    return web.json_response({"kind": query.kind.value, "window": _window_label(query.window), "by": query.by,
                              "as_of": as_of, "results": [row.as_dict() for row in rows]})


def _history_handler(kind: Kind):
    async def get_history(request: web.Request) -> web.Response:
        item_id = request.match_info["id"]
        found = await request.app["db"].read(tr.history, item_id, kind) if len(item_id) <= 300 else None
        if found is None:
            raise not_found(f"no {kind.value} {item_id!r} in the mirror")
        return web.json_response(found.as_dict())

    get_history.__name__ = f"get_{kind.value}_history"
    return get_history


for _kind in REPO_KINDS:
    routes.get(f"/{_kind.plural}/{{id:{ID_PATTERN}}}/history")(_history_handler(_kind))


def atom_feed(rows: list[tr.TrendRow], kind: Kind, self_url: str, base_url: str, updated: str) -> str:
    """Atom 1.0 of the day's risers; an entry's id changes daily so readers show each day's list."""
    day = updated[:10]
    entries = []
    for row in rows:
        url = f"{base_url}/ui/{kind.plural}/{quote(row.id, safe='/')}"
        summary = (f"{row.downloads_per_day:+,.0f} downloads/day, {row.likes_per_day:+,.1f} likes/day "
                   f"({row.downloads:,} downloads, {row.likes:,} likes)")
        entries.append(
            "<entry>"
            f"<id>{xml_escape(f'tag:prometheus,{day}:trending/{kind.plural}/{row.id}')}</id>"
            f"<title>{xml_escape(row.id)}</title>"
            f'<link href="{xml_escape(url, {chr(34): "&quot;"})}"/>'
            f"<updated>{updated}</updated>"
            f"<summary>{xml_escape(summary)}</summary>"
            "</entry>"
        )
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>{xml_escape(self_url)}</id><title>Rising {kind.plural} (24 h)</title>"
            f"<updated>{updated}</updated>"
            f'<link rel="self" href="{xml_escape(self_url, {chr(34): "&quot;"})}"/>'
            "<author><name>PROMETHEUS</name></author>" + "".join(entries) + "</feed>")


@routes.get("/feeds/trending.atom")
async def trending_feed(request: web.Request) -> web.Response:
    params.only_known(request.query, ("type",))
    kind = params.kind(params.text(request.query, "type", default="models", max_length=20))
    if not kind.is_repo:
        raise bad_request("type must be models, datasets or spaces")
    rows, as_of = await _run(request, tr.TrendQuery(kind, tr.DAY, "rising", limit=25))
    base = f"{request.scheme}://{request.host}"
    updated = as_of or tr.iso(0)
    body = atom_feed(rows, kind, str(request.url), base, updated)
    return web.Response(body=body, headers={"Content-Type": ATOM_TYPE})


def _sparklines(conn: sqlite3.Connection, kind: Kind, window: int, pks: list[int]) -> dict[int, str]:
    return {pk: tr.sparkline_svg(conn, kind, pk, window, field="downloads" if kind is not Kind.SPACE else "likes")
            for pk in pks}


def _select(name: str, choices: tuple[str, ...], selected: str) -> Safe:
    options = join(tag("option", c, value=c, selected="selected" if c == selected else None) for c in choices)
    return tag("label", join([f"{name} ", Safe(f'<select name="{name}">{options}</select>')]))


@routes.get("/ui/trends")
async def trends_page(request: web.Request) -> web.Response:
    from core.api.routes.ui import page

    source: dict[str, Any] = dict(request.query)
    source.setdefault("type", "models")
    query, can_match = _query(source)
    rows, as_of = await _run(request, query, can_match)
    lines = await request.app["db"].read(_sparklines, query.kind, query.window, [r.pk for r in rows])
    window = _window_label(query.window)
    form = Safe('<form method="get" action="/ui/trends" class="trend-form">' + join([
        _select("type", tuple(k.plural for k in REPO_KINDS), query.kind.plural),
        _select("window", tuple(tr.WINDOWS), window),
        _select("by", tr.BY_CHOICES, query.by),
        Safe('<button type="submit">Show</button>'),
    ], " ") + "</form>")
    if rows:
        head = tag("tr", join(tag("th", h) for h in ("#", "repo", "trend", "downloads", "dl/day", "likes",
                                                     "likes/day", "rising")))
        body_rows = [
            tag("tr", join([
                tag("td", i), tag("td", link(f"/ui/{query.kind.plural}/{quote(r.id, safe='/')}", r.id)),
                tag("td", Safe(lines.get(r.pk, ""))),  # SVG built by core.charts, labels escaped there
                tag("td", f"{r.downloads:,}"), tag("td", f"{r.downloads_per_day:+,.1f}"),
                tag("td", f"{r.likes:,}"), tag("td", f"{r.likes_per_day:+,.1f}"), tag("td", f"{r.rising:.3f}"),
            ]))
            for i, r in enumerate(rows, 1)
        ]
        table = tag("table", join([head, *body_rows]), class_="trends", id="trends")
    else:
        table = tag("p", f"No {query.kind.plural} moved in the last {window} yet: history builds up with each crawl.",
                    class_="meta", id="trends-empty")
    note = tag("p", f"Window {window}, ranked by {query.by}; figures as of {as_of or 'now'}. "
                    f"JSON: /trends?{urlencode({'type': query.kind.plural, 'window': window, 'by': query.by})}",
               class_="meta")
    body = join([tag("h1", f"Trending {query.kind.plural}"), form, note, table,
                 tag("p", link(f"/feeds/trending.atom?type={query.kind.plural}", "Atom feed of rising repos"))])
    return page(request, f"Trending {query.kind.plural}", body)


_TREND_PARAMS = [
    query("type", {"type": "string", "enum": [k.plural for k in REPO_KINDS]}, "kind (default models)"),
    query("window", {"type": "string", "enum": list(tr.WINDOWS)}, "window (default 24h)"),
    query("by", {"type": "string", "enum": list(tr.BY_CHOICES)},
          "downloads/day, likes/day, or rising (growth relative to size, smoothed)"),
    query("author", text_schema(params.TEXT_MAX), "only this author's repos"),
    query("tag", text_schema(params.TEXT_MAX), "only repos with this tag"),
    query("base_model", text_schema(params.TEXT_MAX),
          "only models derived from this base; with datasets or spaces nothing matches"),
    query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "how many (default 20)"),
]
_TREND_ROW = {"type": "object", "required": ["id", "kind", "downloads", "likes", "downloads_per_day",
                                             "likes_per_day", "score"],
              "properties": {"id": {"type": "string"}, "kind": {"type": "string"},
                             "downloads": {"type": "integer"}, "likes": {"type": "integer"},
                             "downloads_per_day": {"type": "number"}, "likes_per_day": {"type": "number"},
                             "rising": {"type": "number"}, "score": {"type": "number"},
                             "span_days": {"type": "number"}, "partial": {"type": "boolean"}}}
_HISTORY = {"type": "object", "properties": {
    "id": {"type": "string"}, "kind": {"type": "string"}, "last_seen": {"type": ["string", "null"]},
    "points": {"type": "array", "items": {"type": "object", "properties": {
        "at": {"type": "string"}, "downloads": {"type": "integer"}, "likes": {"type": "integer"},
        "trending_score": {"type": ["number", "null"]}}}}}}

OPENAPI: dict[str, Any] = {
    "/trends": {"get": operation(
        "Repos moving fastest over a window", tags=["trends"], parameters=_TREND_PARAMS,
        responses={200: response("movers, best first (only repos that moved)", {
            "type": "object", "properties": {"results": {"type": "array", "items": _TREND_ROW},
                                             "as_of": {"type": ["string", "null"]}}})},
    )},
    "/feeds/trending.atom": {"get": operation(
        "Atom feed of the day's rising repos", tags=["trends"],
        parameters=[query("type", {"type": "string", "enum": [k.plural for k in REPO_KINDS]}, "default models")],
        responses={200: response("Atom 1.0", {"type": "string"}, media_type="application/atom+xml")},
    )},
    "/ui/trends": {"get": operation(
        "Top movers with sparklines (HTML)", tags=["ui"], parameters=_TREND_PARAMS,
        responses={200: response("an HTML page", {"type": "string"}, media_type="text/html")},
    )},
    **{f"/{k.plural}/{{id}}/history": {"get": operation(
        f"Downloads and likes history of one {k.value}", tags=["trends"],
        parameters=[path_param("id", "repo id, e.g. author/name")],
        responses={200: response("the recorded series (a value holds until the next point)", _HISTORY)},
    )} for k in REPO_KINDS},
}
