"""`/ui`: the search page and item view, server-rendered HTML that works with JavaScript off.

Search goes through the same engine and parameter checks as the JSON API. The item view shows
lineage (bases, and quantizations / fine-tunes / adapters / merges of it), the papers an item
cites, the repos citing a paper, and the trends chart when `core.trends.item_chart_svg` exists.
`page(request, title, body)` wraps any body in the layout, for other modules' pages.
"""

from __future__ import annotations

import importlib
import sqlite3
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from aiohttp import web

from core.api import params, queries
from core.api.errors import Problem, not_found
from core.api.html import Safe, escape, join, link, render, tag
from core.api.openapi import operation, path_param, query, ref, response, text_schema
from core.api.routes.search import (
    FILTER_NAMES,
    MODES,
    PARAM_COUNT_MAX,
    SORTS,
    engine_of,
    read_filters,
    run_search,
)
from core.kinds import ALL_KINDS, Kind

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()

PAGE_SIZE = 20
_STATIC = ("style.css",)
_FILTER_LABELS = {
    "author": "Author", "tag": "Tag", "pipeline_tag": "Task (pipeline tag)", "library": "Library",
    "license": "License", "base_model": "Base model", "relation": "Relation to base",
    "quant_format": "Quantization format", "min_downloads": "Min downloads", "min_params": "Min parameters (7B)",
    "max_params": "Max parameters (70B)",
}
_RELATION_HEADINGS = {"quantized": "Quantizations", "finetune": "Fine-tunes", "adapter": "Adapters",
                      "merge": "Merges", "unspecified": "Derived (relation not stated)"}
_KIND_CHOICES = ("all", *(k.plural for k in ALL_KINDS))


def item_path(kind: Kind, item_id: str) -> str:
    return f"/ui/{kind.plural}/{quote(item_id, safe='/')}"


def _nav(request: web.Request) -> Safe:
    links = [link("/ui", "Search")]
    if any(r.canonical == "/ui/trends" for r in request.app.router.resources()):
        links.append(link("/ui/trends", "Trends"))
    links += [link("/docs", "API"), link("/openapi.json", "OpenAPI")]
    return join(links, " ")


def page(request: web.Request, title: str, body: Safe, *, status: int = 200) -> web.Response:
    html = render("base.html", title=title, nav=_nav(request), body=body)
    return web.Response(text=html, content_type="text/html", status=status)


def _options(choices: Sequence[str], selected: str | None) -> Safe:
    return join(tag("option", c, value=c, selected="selected" if c == selected else None) for c in choices)


def _form(values: dict[str, Any], results: Safe) -> Safe:
    fields = []
    for name in FILTER_NAMES:
        if name == "relation":
            control = tag("select", Safe(_options(("", "finetune", "adapter", "merge", "quantized"),
                                                  values.get(name) or "")), name=name)
        else:
            control = Safe(f'<input name="{escape(name)}" value="{escape(values.get(name) or "")}" maxlength="200">')
        fields.append(Safe(f"<label>{escape(_FILTER_LABELS[name])}{control}</label>"))
    return Safe(render(
        "search.html", q=values.get("q") or "",
        mode_options=_options(MODES, values.get("mode") or "keyword"),
        type_options=_options(_KIND_CHOICES, values.get("type") or "all"),
        sort_options=_options(SORTS, values.get("sort") or "relevance"),
        filters_open=Safe(" open") if any(values.get(n) for n in FILTER_NAMES) else Safe(""),
        filter_fields=join(fields, "\n"), results=results,
    ))


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else ""


def _hit(hit: dict[str, Any]) -> Safe:
    kind = Kind(hit["kind"])
    facts = [f"{_number(hit.get('downloads'))} downloads" if hit.get("downloads") is not None else "",
             f"{_number(hit.get('likes'))} {'upvotes' if kind is Kind.PAPER else 'likes'}",
             hit.get("pipeline_tag") or "", hit.get("library_name") or "",
             f"{hit['quant_format']} quant" if hit.get("quant_format") else "",
             f"base {hit['base_model']}" if hit.get("base_model") else ""]
    title = hit["id"] if kind is not Kind.PAPER else f"{hit.get('title') or hit['id']}"
    parts = [
        link(item_path(kind, hit["id"]), title, class_="title"),
        tag("span", kind.value, class_="kind"),
        link(queries.hub_url(kind, hit["id"]), "on the Hub ↗", class_="hub", rel="noopener noreferrer"),
        tag("p", " · ".join(f for f in facts if f), class_="meta"),
    ]
    if hit.get("description"):
        parts.append(tag("p", hit["description"][:300], class_="desc"))
    return tag("li", join(parts), class_="hit")


def _results(request: web.Request, values: dict[str, Any], result: dict[str, Any], offset: int) -> Safe:
    hits = result["results"]
    parts: list[Any] = []
    if result.get("warning"):
        parts.append(tag("p", result["warning"], class_="notice"))
    shown = f"results {offset + 1}–{offset + len(hits)}" if hits else "no results"
    parts.append(tag("p", f"{shown} for “{values.get('q') or ''}” ({result['mode']})", class_="summary-line",
                     id="summary"))
    parts.append(tag("ol", join(_hit(h) for h in hits), class_="hits", id="results"))
    pager = []
    base = {k: v for k, v in values.items() if v}
    if offset > 0:
        pager.append(link("/ui?" + urlencode({**base, "offset": max(offset - PAGE_SIZE, 0)}), "‹ previous"))
    if len(hits) == PAGE_SIZE:
        pager.append(link("/ui?" + urlencode({**base, "offset": offset + PAGE_SIZE}), "next ›", rel="next"))
    if pager:
        parts.append(tag("nav", join(pager), class_="pager"))
    return join(parts)


@routes.get("/ui")
async def search_page(request: web.Request) -> web.Response:
    source = request.query
    names = ("q", "mode", "type", "sort", "offset", *FILTER_NAMES)
    values = {name: source.get(name, "") for name in names if name != "offset"}
    text = (source.get("q") or "").strip()
    searching = bool(text) or any(source.get(n) for n in FILTER_NAMES)
    try:
        params.only_known(source, names)
        offset = params.integer(source, "offset", default=0, minimum=0, maximum=10_000) or 0
        # Checked even when not searching, so a bad link is reported rather than silently ignored.
        params.choice(source, "mode", MODES)
        params.choice(source, "type", _KIND_CHOICES)
        params.choice(source, "sort", SORTS)
        results = Safe("")
        if searching:
            engine_of(request)
            filters = read_filters(source, source)
            result = await run_search(request, params.text(source, "q", default="") or "",
                                      {**source, "limit": str(PAGE_SIZE), "offset": str(offset)}, filters)
            results = _results(request, values, result, offset)
    except Problem as problem:
        body = _form(values, tag("p", problem.detail, class_="error", id="error"))
        return page(request, "Search", body, status=problem.status)
    return page(request, f"{text} – search" if text else "Search", _form(values, results))


def _facts(kind: Kind, item: dict[str, Any]) -> Safe:
    fields = [("Title", "title"), ("Authors", "authors"), ("Published", "published_at"), ("Upvotes", "upvotes")] \
        if kind is Kind.PAPER else [
            ("Author", "author"), ("Downloads (30 d)", "downloads"), ("Likes", "likes"), ("Task", "pipeline_tag"),
            ("Library", "library_name"), ("SDK", "sdk"), ("License", "license"), ("Parameters", "num_parameters"),
            ("Quantization", "quant_format"), ("Gated", "gated"), ("Created", "created_at"),
            ("Last modified", "last_modified")]
    rows = []
    for label, key in fields:
        value = item.get(key)
        if value in (None, "", []):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"
        rows.append(Safe(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>"))
    return join(rows)


def _model_link(model_id: str, mirrored: bool = True) -> Safe:
    return link(item_path(Kind.MODEL, model_id), model_id) if mirrored else \
        Safe(f"{escape(model_id)} {link(queries.hub_url(Kind.MODEL, model_id), '(on the Hub ↗)')}")


def _lineage(item: dict[str, Any]) -> Safe:
    lineage = item["lineage"]
    parts: list[Any] = [tag("h2", "Lineage")]
    if lineage["bases"]:
        parts.append(tag("h3", "Base models"))
        parts.append(tag("ul", join(
            tag("li", join([_model_link(b["id"], b["mirrored"]),
                            Safe(f" <span class=kind>{escape(b['relation'])}</span>") if b["relation"] else ""]))
            for b in lineage["bases"]), id="bases"))
    else:
        parts.append(tag("p", "No base model declared: this is an original model, as far as the Hub says.",
                         class_="meta"))
    for relation, children in sorted(lineage["children"].items(),
                                     key=lambda kv: list(_RELATION_HEADINGS).index(kv[0])
                                     if kv[0] in _RELATION_HEADINGS else 99):
        count = lineage["child_counts"].get(relation, len(children))
        heading = f"{_RELATION_HEADINGS.get(relation, relation.title())} of it ({count:,})"
        parts.append(tag("h3", heading))
        parts.append(tag("ul", join(
            tag("li", join([_model_link(c["id"]), f" · {c['downloads']:,} downloads",
                            f" · {c['quant_format']}" if c.get("quant_format") else ""]))
            for c in children), class_=f"children {relation}"))
    if not lineage["children"]:
        parts.append(tag("p", "No mirrored model names it as a base.", class_="meta"))
    return tag("section", join(parts), id="lineage")


def _papers(item: dict[str, Any]) -> Safe:
    papers = item.get("papers") or []
    if not papers:
        return Safe("")
    entries = []
    for p in papers:
        if p["mirrored"]:
            entries.append(tag("li", join([link(item_path(Kind.PAPER, p["id"]), p["title"] or p["id"]),
                                           f" (arXiv {p['id']})"])))
        else:
            entries.append(tag("li", join([f"arXiv {p['id']} ", link(p["url"], "(on the Hub ↗)")])))
    return tag("section", join([tag("h2", "Papers it cites"), tag("ul", join(entries))]), id="papers")


def _cited_by(item: dict[str, Any]) -> Safe:
    cited = item.get("cited_by") or {}
    parts: list[Any] = [tag("h2", "Cited by")]
    for plural, entries in cited.items():
        kind = Kind(plural[:-1])
        parts.append(tag("h3", f"{plural.title()} ({len(entries)})"))
        parts.append(tag("ul", join(tag("li", join([link(item_path(kind, e["id"]), e["id"]),
                                                    f" · {e['downloads']:,} downloads"])) for e in entries)))
    if not cited:
        parts.append(tag("p", "No mirrored model, dataset or space cites it.", class_="meta"))
    return tag("section", join(parts), id="cited-by")


@cache
def _chart_function() -> Callable[..., str] | None:
    try:
        module = importlib.import_module("core.trends")
    except ImportError:
        return None
    return getattr(module, "item_chart_svg", None)


def _load_item(conn: sqlite3.Connection, kind: Kind, item_id: str) -> tuple[dict[str, Any], str | None] | None:
    from core.api.routes.items import item_detail

    item = item_detail(conn, kind, item_id, raw=False)
    if item is None:
        return None
    chart = None
    chart_fn = _chart_function()
    if chart_fn is not None and kind.is_repo:
        pk = conn.execute(f"SELECT pk FROM {kind.table} WHERE id = ?", (item_id,)).fetchone()[0]
        try:
            chart = chart_fn(conn, kind, pk)
        except Exception:  # the chart is decoration: never let it take the page down
            log.exception("item_chart_failed", kind=kind.value, id=item_id)
    return item, chart


@routes.get(r"/ui/{kind:(models|datasets|spaces|papers)}/{id:[^/]+(?:/[^/]+)?}")
async def item_page(request: web.Request) -> web.Response:
    kind = params.kind(request.match_info["kind"])
    item_id = request.match_info["id"]
    loaded = await request.app["db"].read(_load_item, kind, item_id) if len(item_id) <= 300 else None
    if loaded is None:
        body = tag("p", f"No {kind.value} {item_id!r} in the mirror.", class_="error", id="error")
        return page(request, "Not found", join([body, link("/ui", "Back to search")]), status=404)
    item, chart = loaded
    title = item.get("title") or item["id"] if kind is Kind.PAPER else item["id"]
    links = [link(queries.hub_url(kind, item["id"]), "Open on the Hugging Face Hub ↗", id="hub-link",
                  rel="noopener noreferrer"),
             link(f"/{kind.plural}/{quote(item['id'], safe='/')}", "JSON")]
    if request.app["search"] is not None:
        links.append(link(f"/ui?{urlencode({'q': item['id'], 'type': kind.plural})}", "Search for similar names"))
    summary_text = item.get("summary") or item.get("description")
    summary = tag("p", summary_text[:2000], class_="desc") if summary_text else Safe("")
    tags = Safe("")
    if item.get("tags"):
        tags = tag("ul", join(tag("li", t) for t in item["tags"][:80]), class_="tags")
    sections: list[Any] = []
    if kind is Kind.MODEL:
        sections.append(_lineage(item))
    if kind is Kind.PAPER:
        sections.append(_cited_by(item))
    else:
        sections.append(_papers(item))
    if chart:
        # Trusted markup: built by core.charts from numbers, with its own escaping of labels.
        sections.append(tag("section", join([tag("h2", "Downloads and likes over time"),
                                             tag("div", Safe(chart), class_="chart")]), id="trend-chart"))
    body = Safe(render("item.html", kind_label=kind.plural.title(), title=title, links=join(links, " · "),
                       summary=summary, facts=_facts(kind, item), tags=tags, sections=join(sections)))
    return page(request, str(title), body)


@cache
def _static_path(name: str) -> Path:
    return Path(str(resources.files("core.api").joinpath("static", name)))


@routes.get("/ui/static/{name}")
async def ui_static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise not_found(f"no asset {name!r}")
    return web.FileResponse(_static_path(name), headers={"Cache-Control": "public, max-age=3600"})


_HTML = {"text/html": {"schema": {"type": "string"}}}

OPENAPI = {
    "/ui": {"get": operation(
        "Search page (HTML, works without JavaScript)", tags=["ui"],
        parameters=[query("q", {"type": "string", "maxLength": params.TEXT_MAX}),
                    query("mode", {"type": "string", "enum": list(MODES)}),
                    query("type", {"type": "string", "enum": list(_KIND_CHOICES)}),
                    query("sort", {"type": "string", "enum": list(SORTS)}),
                    query("offset", {"type": "integer", "minimum": 0, "maximum": 10_000}),
                    *(query(n, text_schema(200)) for n in FILTER_NAMES
                      if n not in ("relation", "min_downloads", "min_params", "max_params")),
                    *(query(n, {"type": "string", "pattern": params.PARAM_COUNT_PATTERN, "maxLength": PARAM_COUNT_MAX})
                      for n in ("min_params", "max_params")),
                    query("relation", {"type": "string", "enum": ["", "finetune", "adapter", "merge", "quantized"]}),
                    query("min_downloads", {"type": "integer", "minimum": 0, "maximum": params.INT_MAX})],
        responses={200: {"description": "the page", "content": _HTML},
                   400: {"description": "the page, with the problem shown", "content": _HTML},
                   503: {"description": "search unavailable, shown on the page", "content": _HTML}})},
    "/ui/{kind}/{id}": {"get": operation(
        "Item page: facts, lineage, papers, trend chart (HTML)", tags=["ui"],
        parameters=[path_param("kind", "", {"type": "string", "enum": [k.plural for k in ALL_KINDS]}),
                    path_param("id", "the Hub id")],
        responses={200: {"description": "the page", "content": _HTML},
                   404: {"description": "not in the mirror (HTML), or no such kind (problem)",
                         "content": {**_HTML, "application/problem+json": {"schema": ref("Problem")}}}})},
    "/ui/static/{name}": {"get": operation(
        "Stylesheet of the search page", tags=["ui"], parameters=[path_param("name", "")],
        responses={200: response("the asset", {"type": "string"}, media_type="text/css")})},
}

