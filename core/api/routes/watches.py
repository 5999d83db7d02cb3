"""Watches and alerts: `GET /watches`, `POST /watches`, `DELETE /watches/{name}`, `GET /alerts`.

Watches live in the config file (`priority_authors`, `priority_tags`, `priority_models`,
`saved_queries`); these routes edit it atomically, exactly as `python main.py watch` does,
and every process picks the change up within a second.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from core.alerts.outbox import to_alert
from core.alerts.watches import (
    WatchError,
    add_watch,
    build_watch,
    config_file,
    load_watches,
    remove_watch,
    watch_to_dict,
)
from core.api import params
from core.api.auth import require_api_key
from core.api.db import table_exists
from core.api.errors import Problem, bad_request
from core.api.openapi import operation, path_param, query, response
from core.store import write_tx
from core.store.db import utcnow

routes = web.RouteTableDef()

STATUSES = ("pending", "sent", "grouped", "digested", "failed")
_QUERY_KEYS = ("author", "tag", "pipeline", "base_model", "relation", "min_params", "max_params", "text", "kinds")


def _armed_and_counts(conn: sqlite3.Connection) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    if not table_exists(conn, "alert_outbox"):
        return {}, {}
    armed = dict(conn.execute("SELECT name, added_at FROM alert_watches").fetchall())
    counts: dict[str, dict[str, int]] = {}
    for watch, status, n in conn.execute("SELECT watch, status, count(*) FROM alert_outbox GROUP BY 1, 2"):
        counts.setdefault(watch, {})[status] = n
    return armed, counts


def _list(request: web.Request) -> list[Any]:
    try:
        return load_watches(config_file(request.app["config"]))
    except WatchError as exc:
        raise Problem(500, f"the config file's watches are invalid: {exc}") from None


@routes.get("/watches")
async def list_watches(request: web.Request) -> web.Response:
    params.only_known(request.query, ())
    watches = _list(request)
    armed, counts = await request.app["db"].read(_armed_and_counts)
    items = []
    for watch in watches:
        data = watch_to_dict(watch, armed.get(watch.name))
        data["alerts"] = counts.get(watch.name, {})
        data["feed"] = f"/feeds/{watch.slug}.atom"
        items.append(data)
    return web.json_response({"watches": items, "count": len(items)})


def _arm(conn: sqlite3.Connection, name: str, now: str) -> None:
    # Armed now: what already exists on the Hub never alerts for this watch.
    with write_tx(conn):
        conn.execute("INSERT OR REPLACE INTO alert_watches (name, added_at) VALUES (?, ?)", (name, now))


def _disarm(conn: sqlite3.Connection, name: str) -> None:
    with write_tx(conn):
        conn.execute("DELETE FROM alert_watches WHERE name = ?", (name,))


@routes.post("/watches")
@require_api_key
async def create_watch(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    unknown = set(body) - {"type", "value", "mode", *_QUERY_KEYS}
    if unknown:
        raise bad_request(f"unknown field {sorted(unknown)[0]!r}")
    kind_of_watch = body.get("type")
    if kind_of_watch not in ("author", "tag", "repo", "query"):
        raise bad_request("`type` must be one of author, tag, repo, query")
    spec = {k: body[k] for k in _QUERY_KEYS if k in body}
    if spec and kind_of_watch != "query":
        raise bad_request("query fields are only for `type: query`")
    try:
        watch = build_watch(kind_of_watch, str(body.get("value") or ""), body.get("mode"), spec)
        add_watch(config_file(request.app["config"]), watch)
    except WatchError as exc:
        status = 409 if "already exists" in str(exc) else 400
        raise Problem(status, str(exc)) from None
    now = utcnow()
    await request.app["db"].write(_arm, watch.name, now)
    data = watch_to_dict(watch, now)
    data["feed"] = f"/feeds/{watch.slug}.atom"
    return web.json_response(data, status=201)


@routes.delete("/watches/{name:.+}")
@require_api_key
async def delete_watch(request: web.Request) -> web.Response:
    try:
        removed = remove_watch(config_file(request.app["config"]), request.match_info["name"])
    except WatchError as exc:
        raise Problem(404 if "no watch named" in str(exc) else 400, str(exc)) from None
    await request.app["db"].write(_disarm, removed.name)
    return web.json_response({"removed": watch_to_dict(removed)})


def _alerts(conn: sqlite3.Connection, watch: str | None, status: str | None, limit: int) -> list[dict[str, Any]]:
    if not table_exists(conn, "alert_outbox"):
        return []
    sql = ("SELECT id, watch, mode, kind, item_id, sha, event, group_key, reason, payload, created_at, status, "
           "sent_at, attempts, last_error FROM alert_outbox WHERE 1 = 1")
    args: list[Any] = []
    if watch:
        sql += " AND watch = ?"
        args.append(watch)
    if status:
        sql += " AND status = ?"
        args.append(status)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    out = []
    for row in conn.execute(sql, args):
        alert = to_alert(tuple(row)[:11])
        out.append({"id": alert.id, "watch": alert.watch, "mode": alert.mode, "kind": alert.kind,
                    "item_id": alert.item_id, "event": alert.event, "sha": alert.sha, "reason": alert.reason,
                    "detected_at": alert.created_at, "status": row["status"], "sent_at": row["sent_at"],
                    "attempts": row["attempts"], "last_error": row["last_error"], "payload": alert.payload})
    return out


@routes.get("/alerts")
async def list_alerts(request: web.Request) -> web.Response:
    params.only_known(request.query, ("watch", "status", "limit"))
    watch = params.text(request.query, "watch")
    status = params.choice(request.query, "status", STATUSES)
    limit = params.limit(request.query)
    rows = await request.app["db"].read(_alerts, watch, status, limit)
    return web.json_response({"alerts": rows, "count": len(rows)})


_WATCH = {
    "type": "object",
    "required": ["name", "type", "mode"],
    "properties": {
        "name": {"type": "string", "examples": ["author:TheBloke"]},
        "type": {"type": "string", "enum": ["author", "tag", "repo", "query"]},
        "mode": {"type": "string", "enum": ["instant", "digest"]},
        "slug": {"type": "string"}, "describe": {"type": "string"},
        "added_at": {"type": ["string", "null"], "description": "when it was armed; older repos never alert"},
        "value": {"type": "string"}, "repo": {"type": "object"}, "query": {"type": "object"},
        "feed": {"type": "string"}, "alerts": {"type": "object", "description": "outbox rows by status"},
    },
}
_NEW_WATCH = {
    "type": "object",
    "required": ["type", "value"],
    "properties": {
        "type": {"type": "string", "enum": ["author", "tag", "repo", "query"]},
        "value": {"type": "string", "description": "author, tag, repo id ([datasets/|spaces/]org/name) or query name"},
        "mode": {"type": "string", "enum": ["instant", "digest"],
                 "description": "default: instant; digest for broad tags"},
        "author": {"type": ["string", "array"]}, "tag": {"type": ["string", "array"]},
        "pipeline": {"type": "string"}, "base_model": {"type": "string"},
        "relation": {"type": "string", "enum": ["finetune", "adapter", "merge", "quantized"]},
        "min_params": {"type": ["string", "integer"], "examples": ["7B"]},
        "max_params": {"type": ["string", "integer"], "examples": ["70B"]},
        "text": {"type": "string"}, "kinds": {"type": "array", "items": {"type": "string"}},
    },
}
_ALERT = {"type": "object", "properties": {k: {} for k in (
    "id", "watch", "mode", "kind", "item_id", "event", "sha", "reason", "detected_at", "status", "sent_at",
    "attempts", "last_error", "payload")}}

OPENAPI = {
    "/watches": {
        "get": operation("List watches", tags=["alerts"],
                         responses={200: response("the watches, with when each was armed and its alert counts",
                                                  {"type": "object", "properties": {
                                                      "watches": {"type": "array", "items": _WATCH},
                                                      "count": {"type": "integer"}}})}),
        "post": operation("Add a watch", tags=["alerts"], write=True, body=_NEW_WATCH,
                          responses={201: response("the watch, armed now", _WATCH),
                                     409: response("a watch with that name exists")}),
    },
    "/watches/{name}": {
        "delete": operation("Remove a watch", tags=["alerts"], write=True,
                            parameters=[path_param("name", "full name (author:TheBloke), slug, or bare value")],
                            responses={200: response("removed", {"type": "object"})}),
    },
    "/alerts": {
        "get": operation("Recent alerts (the outbox)", tags=["alerts"],
                         parameters=[query("watch", {"type": "string"}, "only this watch (full name)"),
                                     query("status", {"type": "string", "enum": list(STATUSES)}),
                                     query("limit", {"type": "integer", "minimum": 1})],
                         responses={200: response("newest first", {"type": "object", "properties": {
                             "alerts": {"type": "array", "items": _ALERT}, "count": {"type": "integer"}}})}),
    },
}
