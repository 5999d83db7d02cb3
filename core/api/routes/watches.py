"""Watches and alerts: `GET /watches`, `POST /watches`, `DELETE /watches/{name}`, `GET /alerts`.

Watches live in the config file (`priority_authors`, `priority_tags`, `priority_models`,
`saved_queries`); these routes edit it atomically, exactly as `python main.py watch` does,
and every process picks the change up within a second.
"""

from __future__ import annotations

import re
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
from core.api.openapi import operation, path_param, query, response, text_schema
from core.hub.records import BASE_RELATIONS
from core.store import write_tx
from core.store.db import utcnow

routes = web.RouteTableDef()

STATUSES = ("pending", "sent", "grouped", "digested", "failed")
_ALERT_PARAMS = ("watch", "status", "limit")
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


# The body rules, shared by the check below and the documented schema (`_NEW_WATCH`), so that a body is
# accepted exactly when it is schema-valid. JSON Schema `pattern`s are applied with `re.search`, as here.
WATCH_TYPES = ("author", "tag", "repo", "query")
WATCH_MODES = ("instant", "digest")
WATCH_TEXT_MAX = 200
_NON_BLANK = r"\S"
_REPO_KINDS = "(?:datasets|spaces|models)"
# `org/name`, `datasets/org/name`, `spaces/org/name` (`datasets/name` alone is not a repo id).
REPO_REF_PATTERN = rf"^\s*(?!{_REPO_KINDS}/[^/\s]+\s*$)(?:{_REPO_KINDS}/)?[^/\s]+/[^/\s]+\s*$"
# A parameter count up to 10^15 (15 digits, 999.999 with a unit, or 9.999e14): the config file keeps it
# rounded (`format_size`: 999.999T is "1000T"), and what is written must read back under the 10^16 limit.
SIZE_PATTERN = (r"^\s*(?:[0-9]{1,15}(?:\.[0-9]{1,3})?|[0-9]{1,3}(?:\.[0-9]{1,3})?\s*[kKmMbBtT]"
                r"|[0-9](?:\.[0-9]{1,3})?[eE](?:1[0-4]|0?[0-9]))\s*$")
SIZE_TEXT_MAX = 30
SIZE_MAX = 10**15
WATCH_KINDS = ("models", "datasets", "spaces", "papers")
_CRITERIA = ("author", "tag", "pipeline", "base_model", "relation", "min_params", "max_params", "text")
_LIST_MAX = 20


def _text_ok(value: Any, pattern: str = _NON_BLANK) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= WATCH_TEXT_MAX and re.search(pattern, value) is not None


def _size_ok(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= SIZE_TEXT_MAX and re.search(SIZE_PATTERN, value) is not None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= SIZE_MAX


def check_new_watch(body: dict[str, Any]) -> None:
    """400 unless the body is valid under the documented schema (`_NEW_WATCH`)."""
    kind_of_watch = body.get("type")
    if kind_of_watch not in WATCH_TYPES:
        raise bad_request(f"`type` must be one of {', '.join(WATCH_TYPES)}")
    allowed = {"type", "value", "mode", *(_QUERY_KEYS if kind_of_watch == "query" else ())}
    unknown = sorted(set(body) - allowed)
    if unknown:
        hint = " (query fields are only for `type: query`)" if unknown[0] in _QUERY_KEYS else ""
        raise bad_request(f"unknown field {unknown[0]!r}{hint}")
    if kind_of_watch == "repo":
        if not _text_ok(body.get("value"), REPO_REF_PATTERN):
            raise bad_request("`value` must be a repo id: org/name, datasets/org/name or spaces/org/name")
    elif not _text_ok(body.get("value")):
        raise bad_request(f"`value` must be a non-blank string of at most {WATCH_TEXT_MAX} characters")
    if "mode" in body and body["mode"] not in WATCH_MODES:
        raise bad_request(f"`mode` must be one of {', '.join(WATCH_MODES)}")
    if kind_of_watch != "query":
        return
    for key in ("author", "tag"):
        value = body.get(key)
        if key in body and not (_text_ok(value) or (isinstance(value, list) and 1 <= len(value) <= _LIST_MAX
                                                     and all(_text_ok(v) for v in value))):
            raise bad_request(f"`{key}` must be a non-blank string or a list of 1 to {_LIST_MAX} of them")
    for key in ("pipeline", "base_model", "text"):
        if key in body and not _text_ok(body[key]):
            raise bad_request(f"`{key}` must be a non-blank string of at most {WATCH_TEXT_MAX} characters")
    if "relation" in body and body["relation"] not in BASE_RELATIONS:
        raise bad_request(f"`relation` must be one of {', '.join(BASE_RELATIONS)}")
    for key in ("min_params", "max_params"):
        if key in body and not _size_ok(body[key]):
            raise bad_request(f"`{key}` must be a parameter count up to 10^15 such as 7B, 500M or 7000000000")
    kinds = body.get("kinds")
    if "kinds" in body and not (isinstance(kinds, list) and len(kinds) <= len(WATCH_KINDS)
                                and all(k in WATCH_KINDS for k in kinds)):
        raise bad_request(f"`kinds` must be a list of {', '.join(WATCH_KINDS)}")
    if not any(key in body for key in _CRITERIA):
        raise bad_request(f"a saved query needs at least one of: {', '.join(_CRITERIA)}")


@routes.post("/watches")
@require_api_key
async def create_watch(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    check_new_watch(body)
    kind_of_watch = body["type"]
    spec = {k: body[k] for k in _QUERY_KEYS if k in body}
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
    params.only_known(request.query, _ALERT_PARAMS)
    params.not_empty(request.query, _ALERT_PARAMS)
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
_TEXT = {"type": "string", "minLength": 1, "maxLength": WATCH_TEXT_MAX, "pattern": _NON_BLANK}
_MODE = {"type": "string", "enum": list(WATCH_MODES), "description": "default: instant; digest for broad tags"}
_SIZE = {"oneOf": [{"type": "string", "maxLength": SIZE_TEXT_MAX, "pattern": SIZE_PATTERN},
                   {"type": "integer", "minimum": 0, "maximum": SIZE_MAX}]}
_TEXTS = {"oneOf": [_TEXT, {"type": "array", "items": _TEXT, "minItems": 1, "maxItems": _LIST_MAX}]}


def _watch_branch(types: list[str], value: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["type", "value"],
            "properties": {"type": {"type": "string", "enum": types}, "value": value, "mode": _MODE},
            **extra}


_QUERY_BRANCH = _watch_branch(["query"], {**_TEXT, "description": "the query's name"},
                              anyOf=[{"required": [key]} for key in _CRITERIA])
_QUERY_BRANCH["properties"].update({
    "author": _TEXTS, "tag": _TEXTS, "pipeline": _TEXT, "base_model": _TEXT, "text": _TEXT,
    "relation": {"type": "string", "enum": list(BASE_RELATIONS)},
    "min_params": {**_SIZE, "examples": ["7B"]}, "max_params": {**_SIZE, "examples": ["70B"]},
    "kinds": {"type": "array", "items": {"type": "string", "enum": list(WATCH_KINDS)}, "maxItems": len(WATCH_KINDS)},
})
_NEW_WATCH = {
    "description": "An author or tag watch, a repo watch (`org/name`, `datasets/org/name`, `spaces/org/name`), or "
                   "a saved query (`type: query`, `value` its name, and at least one criterion).",
    "oneOf": [
        _watch_branch(["author", "tag"], {**_TEXT, "description": "the author or tag"}),
        _watch_branch(["repo"], {"type": "string", "minLength": 1, "maxLength": WATCH_TEXT_MAX,
                                 "pattern": REPO_REF_PATTERN, "examples": ["TheBloke/Llama-2-7B-GGUF"]}),
        _QUERY_BRANCH,
    ],
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
        "post": operation("Add a watch", tags=["alerts"], write=True, body=_NEW_WATCH, body_required=True,
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
                         parameters=[query("watch", text_schema(params.TEXT_MAX, min_length=1),
                                           "only this watch (full name)", allow_empty=False),
                                     query("status", {"type": "string", "enum": list(STATUSES)}, allow_empty=False),
                                     query("limit", {"type": "integer", "minimum": 1, "maximum": params.LIMIT_MAX,
                                                     "default": 50}, allow_empty=False)],
                         responses={200: response("newest first", {"type": "object", "properties": {
                             "alerts": {"type": "array", "items": _ALERT}, "count": {"type": "integer"}}})}),
    },
}
