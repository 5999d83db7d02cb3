"""`POST /webhooks/huggingface`: the Hub pushes a repo change; we refresh that repo at once.

The Hub sends its secret as a plain `X-Webhook-Secret` header (no HMAC), compared in
constant time against `HF_WEBHOOK_SECRET` / `alerts.webhook_secret`; with no secret
configured every call is refused. A repo event fetches the repo's detail and writes
it through `write_page` with the standard hooks, so a watched release lands in the
alert outbox in the same transaction and the sender delivers it within seconds.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from core.alerts.hubhook import PayloadError, parse_event, secret_ok
from core.alerts.poll import refresh_repo
from core.alerts.settings import settings_from_config
from core.alerts.watches import reload_watches
from core.api import params
from core.api.auth import auth_exempt
from core.api.errors import PROBLEM_TYPE, Problem, bad_request
from core.api.openapi import operation, problem, ref, response
from core.hub.client import HubClient, HubError, RetryPolicy

log = structlog.get_logger(__name__)

routes = web.RouteTableDef()
CLIENT_KEY: web.AppKey[list[HubClient]] = web.AppKey("alerts_hub_client", list)  # [] until first use
SECRET_HEADER = "X-Webhook-Secret"


def _client(app: web.Application) -> HubClient:
    holder = app[CLIENT_KEY]
    if not holder:
        config = app["config"]
        # Few attempts, short timeout: the Hub waits for our answer.
        holder.append(HubClient(config.hub_endpoint, config.hub_token,
                                retry=RetryPolicy(max_attempts=3, backoff_base=0.5, backoff_cap=2.0, timeout=10.0)))
    return holder[0]


async def _close(app: web.Application) -> None:
    for client in app[CLIENT_KEY]:
        await client.close()


async def _load_watches(app: web.Application) -> None:
    # Detections in this process match the watches of the file this app was configured with.
    reload_watches(app["config"])


def setup(app: web.Application) -> None:
    app[CLIENT_KEY] = []
    app.on_startup.append(_load_watches)
    app.on_cleanup.append(_close)


@routes.post("/webhooks/huggingface")
@auth_exempt("authenticated by the Hub's X-Webhook-Secret header")
async def hub_webhook(request: web.Request) -> web.Response:
    settings = settings_from_config(request.app["config"])
    if not settings.webhook_secret:
        raise Problem(503, "no webhook secret configured (HF_WEBHOOK_SECRET or alerts.webhook_secret)")
    if not secret_ok(request.headers.get(SECRET_HEADER), settings.webhook_secret):
        raise Problem(401, f"missing or wrong {SECRET_HEADER}")
    body = await params.json_object(request)
    try:
        event = parse_event(body)
    except PayloadError as exc:
        raise bad_request(str(exc)) from None
    answer: dict[str, Any] = {"scope": event.scope, "action": event.action,
                              "kind": event.kind.value if event.kind else None, "repo": event.repo_id}
    if not event.refresh:
        answer["status"] = "ignored"
        return web.json_response(answer)
    assert event.kind is not None and event.target is not None
    try:
        result = await refresh_repo(_client(request.app), event.kind, event.target, request.app["db"].write)
    except HubError as exc:
        log.warning("webhook_refresh_failed", repo=event.target, error=str(exc))
        raise Problem(502, f"could not fetch {event.target} from the Hub: {exc}") from None
    log.info("webhook_refreshed", scope=event.scope, action=event.action, repo=event.target,
             status=result.status, alerts=result.alerts)
    answer.update(status="refreshed", result=result.status, alerts=result.alerts)
    return web.json_response(answer)


_ANSWER = {
    "type": "object",
    "required": ["status", "scope", "action"],
    "properties": {
        "status": {"type": "string", "enum": ["refreshed", "ignored"]},
        "scope": {"type": "string"}, "action": {"type": "string"},
        "kind": {"type": ["string", "null"]}, "repo": {"type": ["string", "null"]},
        "result": {"type": "string", "enum": ["new", "updated", "unchanged", "deleted", "missing"]},
        "alerts": {"type": "integer", "description": "alerts queued by this refresh"},
    },
}

OPENAPI = {
    "/webhooks/huggingface": {"post": operation(
        "Receive a Hugging Face Hub webhook",
        tags=["alerts"],
        description="Point a Hub webhook (huggingface.co/settings/webhooks) here with a secret. Repo events "
                    "(`repo`, `repo.content`, `repo.config`) refresh that repo at once and alert on watched "
                    "releases; discussion events are acknowledged and ignored. Authenticated by the "
                    "`X-Webhook-Secret` header, not the API key; answers 503 while no secret is configured.",
        parameters=[{"name": SECRET_HEADER, "in": "header", "required": True, "schema": {"type": "string"}}],
        body={"type": "object", "description": "WebhookPayload v3 (event, repo, ...)"},
        responses={200: response("refreshed or ignored", _ANSWER),
                   401: problem("unauthorized"),
                   502: problem("the Hub could not be reached"),
                   503: response("no webhook secret is configured on this server (set HF_WEBHOOK_SECRET or "
                                 "alerts.webhook_secret): every call is refused", ref("Problem"),
                                 media_type=PROBLEM_TYPE)},
    )},
}
