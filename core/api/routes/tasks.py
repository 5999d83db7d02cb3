"""Task routes: `POST /crawl` and `POST /index/build` record a task (the crawler or embedding child
runs it), `/tasks` and `/tasks/{id}` show status, progress and result, `GET /crawl/{type}` shows
crawl state. Task rows live in SQLite, so they survive an API (or daemon) restart."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from core.api import params
from core.api.auth import require_api_key
from core.api.errors import bad_request, not_found
from core.api.openapi import nullable, operation, path_param, query, ref, response, text_schema
from core.kinds import ALL_KINDS
from core.tasks import TASK_TYPES, Task, create_task, get_task

routes = web.RouteTableDef()

CRAWL_MODES = ("incremental", "full")
TASK_STATUSES = ("queued", "running", "done", "failed")
_KINDS = ("all", *(k.plural for k in ALL_KINDS))


def _create_once(conn: sqlite3.Connection, task_type: str, task_params: dict[str, Any]) -> tuple[Task, bool]:
    """A new task, or the identical one still queued (a retried or repeated POST must not pile up crawls)."""
    for (task_id,) in conn.execute("SELECT id FROM tasks WHERE type = ? AND status = 'queued' ORDER BY id",
                                   (task_type,)).fetchall():
        task = get_task(conn, task_id)
        if task is not None and task.params == task_params:
            return task, False
    return create_task(conn, task_type, task_params), True


def _accepted(task: Task, created: bool) -> web.Response:
    body = {**task.to_json(), "created": created}
    return web.json_response(body, status=202, headers={"Location": f"/tasks/{task.id}"})


@routes.post("/crawl")
@require_api_key
async def start_crawl(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    params.only_known(body, ("type", "mode", "limit"))
    kind = params.optional_kind(body)
    mode = params.choice(body, "mode", CRAWL_MODES, default="incremental")
    limit = params.integer(body, "limit", minimum=1, maximum=10**9)
    task_params: dict[str, Any] = {"type": kind.plural if kind else "all", "mode": mode}
    if limit is not None:
        task_params["limit"] = limit
    task, created = await request.app["db"].write(_create_once, "crawl", task_params)
    return _accepted(task, created)


@routes.post("/index/build")
@require_api_key
async def build_index(request: web.Request) -> web.Response:
    body = await params.json_object(request)
    params.only_known(body, ())
    task, created = await request.app["db"].write(_create_once, "index_build", {})
    return _accepted(task, created)


def _crawl_status(conn: sqlite3.Connection, kind_value: str | None, limit: int) -> dict[str, Any]:
    where, args = ("WHERE kind = ?", [kind_value]) if kind_value else ("", [])
    history = [dict(r) for r in conn.execute(
        f"SELECT kind, mode, started_at, finished_at, pages, requests, new, updated, unchanged, deleted, errors, "
        f"status, error FROM crawl_history {where} ORDER BY id DESC LIMIT ?", [*args, limit])]
    running = [dict(r) for r in conn.execute(
        f"SELECT kind, mode, started_at, pages, requests, new, updated, unchanged, errors FROM crawl_state {where}",
        args)]
    tasks = []
    for (task_id,) in conn.execute("SELECT id FROM tasks WHERE type = 'crawl' AND status IN ('queued', 'running') "
                                   "ORDER BY id").fetchall():
        task = get_task(conn, task_id)
        if task is not None:
            tasks.append(task.to_json())
    return {"in_progress": running, "history": history, "tasks": tasks}


@routes.get("/crawl/{type}")
async def crawl_status(request: web.Request) -> web.Response:
    params.only_known(request.query, ("limit",))
    text = params.choice(request.match_info, "type", _KINDS)  # as documented: plural names or `all`
    kind = None if text == "all" else params.kind(text)
    limit = params.integer(request.query, "limit", default=10, minimum=1, maximum=params.LIMIT_MAX) or 10
    status = await request.app["db"].read(_crawl_status, kind.value if kind else None, limit)
    return web.json_response({"type": kind.plural if kind else "all", **status})


def _list_tasks(conn: sqlite3.Connection, status: str | None, task_type: str | None, before: int | None,
                limit: int) -> list[Task]:
    clauses, args = [], []
    if status:
        clauses.append("status = ?")
        args.append(status)
    if task_type:
        clauses.append("type = ?")
        args.append(task_type)
    if before is not None:
        clauses.append("id < ?")
        args.append(before)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    ids = [row[0] for row in conn.execute(f"SELECT id FROM tasks {where} ORDER BY id DESC LIMIT ?", [*args, limit])]
    return [task for task in (get_task(conn, task_id) for task_id in ids) if task is not None]


@routes.get("/tasks")
async def list_tasks(request: web.Request) -> web.Response:
    source = request.query
    params.only_known(source, ("status", "type", "limit", "cursor"))
    status = params.choice(source, "status", TASK_STATUSES)
    task_type = params.choice(source, "type", TASK_TYPES)
    limit = params.limit(source, default=50)
    state = params.decode_cursor(params.text(source, "cursor", max_length=200))
    before = None
    if state is not None:
        if len(state) != 1 or not isinstance(state[0], int) or isinstance(state[0], bool):
            raise bad_request("cursor is not valid (pass back the `next` link unchanged)")
        before = state[0]
    tasks = await request.app["db"].read(_list_tasks, status, task_type, before, limit + 1)
    more = len(tasks) > limit
    tasks = tasks[:limit]
    token = params.encode_cursor([tasks[-1].id]) if more else None
    headers = {"Link": f'<{params.next_link(request, cursor=token)}>; rel="next"'} if token else {}
    return web.json_response({"items": [t.to_json() for t in tasks], "next_cursor": token}, headers=headers)


@routes.get(r"/tasks/{id:\d{1,18}}")
async def show_task(request: web.Request) -> web.Response:
    task_id = int(request.match_info["id"])
    task = await request.app["db"].read(get_task, task_id)
    if task is None:
        raise not_found(f"no task {task_id}")
    return web.json_response(task.to_json())


_TASK_CREATED = {"allOf": [ref("Task"), {"type": "object", "properties": {"created": {
    "type": "boolean", "description": "false: an identical task was already queued and is returned instead"}}}]}
_LOCATION = {"Location": {"schema": {"type": "string"}, "description": "/tasks/{id}"}}

OPENAPI = {
    "/crawl": {"post": operation(
        "Queue a crawl (the crawler child runs it)", tags=["tasks"], write=True,
        body={"type": "object", "additionalProperties": False, "properties": {
            "type": {"enum": [*_KINDS, None], "default": "all"},
            "mode": {"enum": [*CRAWL_MODES, None], "default": "incremental"},
            "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 10**9,
                      "description": "stop after N items per kind"}}},
        responses={202: response("the task; poll /tasks/{id}", _TASK_CREATED, headers=_LOCATION)})},
    "/index/build": {"post": operation(
        "Queue a rebuild of the semantic index (the embedding child runs it)", tags=["tasks"], write=True,
        body={"type": "object", "additionalProperties": False, "properties": {}},
        responses={202: response("the task; poll /tasks/{id}", _TASK_CREATED, headers=_LOCATION)})},
    "/crawl/{type}": {"get": operation(
        "Crawl state of a kind (or `all`): in progress, recent runs, queued crawl tasks", tags=["tasks"],
        parameters=[path_param("type", "", {"type": "string", "enum": list(_KINDS)}),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": params.LIMIT_MAX, "default": 10},
                          "history rows")],
        responses={200: response("crawl state", {"type": "object",
                                                 "required": ["type", "in_progress", "history", "tasks"]})})},
    "/tasks": {"get": operation(
        "Tasks, newest first", tags=["tasks"],
        parameters=[query("status", {"type": "string", "enum": list(TASK_STATUSES)}),
                    query("type", {"type": "string", "enum": list(TASK_TYPES)}),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": params.LIMIT_MAX, "default": 50}),
                    query("cursor", text_schema(200))],
        responses={200: response("one page of tasks", {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": ref("Task")}, "next_cursor": nullable("string")}},
            headers={"Link": {"schema": {"type": "string"}}})})},
    "/tasks/{id}": {"get": operation(
        "One task: status, progress, result", tags=["tasks"],
        parameters=[path_param("id", "", {"type": "integer", "minimum": 1, "maximum": 10**18 - 1})],
        responses={200: response("the task", ref("Task"))})},
}
