"""Errors as RFC 9457 `application/problem+json`.

A handler raises `Problem(status, detail)` for anything the client got wrong; the error
middleware in `core.api.app` turns it (and aiohttp's own 404/405/413) into a problem
document. Anything else that escapes a handler is a bug: it is logged and answered as a
500 problem without internals, so a stack trace never reaches the client.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """An error the client should see: status, a one-line detail, and optional extra members."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra


def bad_request(detail: str, **extra: Any) -> Problem:
    return Problem(400, detail, **extra)


def not_found(detail: str) -> Problem:
    return Problem(404, detail)


def problem_response(status: int, detail: str, *, title: str | None = None, instance: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title or HTTPStatus(status).phrase,
                            "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_TYPE, headers=headers)


def from_problem(problem: Problem, instance: str | None = None) -> web.Response:
    return problem_response(problem.status, problem.detail, title=problem.title, instance=instance,
                            headers=problem.headers, **problem.extra)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}
