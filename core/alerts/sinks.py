"""Outgoing JSON webhooks (Discord- and Slack-compatible) for alerts.

The `generic` format carries both `content` (what a Discord webhook posts) and
`text` (what a Slack incoming webhook posts) plus a structured `alert` object
for anything else; `discord` and `slack` send only what that service expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog

from core.alerts.message import DISCORD, PLAIN, SLACK, Alert, alert_lines, item_url, render_limited
from core.alerts.settings import WebhookTarget
from core.alerts.telegram import DeliveryError

log = structlog.get_logger(__name__)

DISCORD_LIMIT = 2000
USERNAME = "PROMETHEUS"


def webhook_payload(target: WebhookTarget, alerts: Sequence[Alert]) -> dict[str, Any]:
    """The JSON body for one release (all the watches it matched)."""
    lines = alert_lines(alerts)
    first = alerts[0]
    discord = render_limited(lines, DISCORD, limit=DISCORD_LIMIT)
    slack = render_limited(lines, SLACK)
    if target.format == "discord":
        return {"content": discord, "username": USERNAME, "allowed_mentions": {"parse": []}}
    if target.format == "slack":
        return {"text": slack, "unfurl_links": False}
    return {
        "content": discord,
        "text": slack,
        "username": USERNAME,
        "allowed_mentions": {"parse": []},
        "alert": {
            "kind": first.kind,
            "id": first.item_id,
            "url": item_url(first.kind, first.item_id),
            "event": first.event,
            "sha": first.sha,
            "watches": [a.watch for a in alerts],
            "reasons": [a.reason for a in alerts],
            "detected_at": first.created_at,
            "summary": render_limited(lines, PLAIN),
            **{k: v for k, v in first.payload.items() if v not in (None, [], "")},
        },
    }


def _retry_after(response_headers: Any, body: Any) -> float | None:
    if isinstance(body, dict) and isinstance(body.get("retry_after"), (int, float)):
        return float(body["retry_after"])  # Discord: seconds in the body
    value = response_headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class WebhookSink:
    def __init__(self, target: WebhookTarget, *, timeout: float = 10.0) -> None:
        self.target = target
        self.name = f"webhook:{target.key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, payload: dict[str, Any]) -> None:
        """POST one payload. Raises DeliveryError like the Telegram sink."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.target.url, json=payload) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                headers = response.headers
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise DeliveryError(f"network: {type(exc).__name__}: {exc}") from exc
        if status < 300:
            return
        if status == 429:
            raise DeliveryError("rate limited", retry_after=_retry_after(headers, body) or 1.0)
        if status >= 500 or status == 408:
            raise DeliveryError(f"HTTP {status}")
        if status in (401, 403, 404, 410):
            raise DeliveryError(f"HTTP {status}: check the webhook URL", slow=True)
        raise DeliveryError(f"HTTP {status}: {str(body)[:200]}", permanent=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
