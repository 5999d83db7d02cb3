"""Authentication for routes that write or trigger work.

Decorate such a handler with `@require_api_key` (below the `@routes.post(...)` line). When an
API key is configured (`PROMETHEUS_API_KEY` or `api.key`), the request must carry
`Authorization: Bearer <key>`; otherwise it gets a 401 problem. With no key configured the
server only binds to loopback (see `core.api.server`), which is what makes open writes safe.

A write route that authenticates some other way (the Hub's webhook secret) is marked
`@auth_exempt("why")`; a test walks the router and fails on any non-GET route that is
neither, so a route cannot be added without an explicit decision.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from core.api.errors import Problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUTH_ATTRIBUTE = "__prometheus_auth__"
BEARER_SECURITY = [{"bearerAuth": []}]


def check_api_key(request: web.Request) -> None:
    key: str | None = request.app["config"].api_key
    if not key:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken must not tell an attacker how much of the key matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise Problem(401, "this endpoint needs `Authorization: Bearer <api key>`",
                      headers={"WWW-Authenticate": 'Bearer realm="prometheus"'})


def require_api_key(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        check_api_key(request)
        return await handler(request)

    setattr(guarded, AUTH_ATTRIBUTE, "api_key")
    return guarded


def auth_exempt(reason: str) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        setattr(handler, AUTH_ATTRIBUTE, f"exempt: {reason}")
        return handler

    return mark


def auth_of(handler: object) -> str | None:
    return getattr(handler, AUTH_ATTRIBUTE, None)
