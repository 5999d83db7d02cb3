"""Hub webhook payloads (WebhookPayload v3): what changed, and whether to refresh the repo.

Pure parsing; the route (core.api.routes.webhooks) checks the secret and does the I/O.
Scopes: `repo` (create, delete, update, move), `repo.content` (update), `repo.config`
(update), `discussion` / `discussion.comment` (ignored: they do not change metadata).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from core.kinds import Kind

REFRESH_SCOPES = ("repo", "repo.content", "repo.config")


class PayloadError(ValueError):
    """The body is not a Hub webhook payload."""


@dataclass(frozen=True)
class HubEvent:
    scope: str
    action: str
    kind: Kind | None
    repo_id: str | None
    head_sha: str | None = None
    private: bool = False
    moved_to: str | None = None

    @property
    def refresh(self) -> bool:
        return (self.scope in REFRESH_SCOPES and self.kind is not None and bool(self.repo_id)
                and not self.private)

    @property
    def target(self) -> str | None:
        """The repo to fetch: after a move, its new name."""
        return self.moved_to or self.repo_id


def secret_ok(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; no configured secret means every call is refused."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def parse_event(payload: Any) -> HubEvent:
    if not isinstance(payload, dict):
        raise PayloadError("the payload must be a JSON object")
    if "payload" in payload and "event" not in payload and isinstance(payload["payload"], dict):
        payload = payload["payload"]  # a recorded fixture wraps the body
    event = payload.get("event")
    repo = payload.get("repo")
    if not isinstance(event, dict) or not isinstance(repo, dict):
        raise PayloadError("missing `event` or `repo`")
    scope, action = event.get("scope"), event.get("action")
    if not isinstance(scope, str) or not isinstance(action, str):
        raise PayloadError("`event.scope` and `event.action` must be strings")
    kind = None
    if isinstance(repo.get("type"), str):
        try:
            kind = Kind(repo["type"])
        except ValueError:
            kind = None
    kind = kind if kind is not None and kind.is_repo else None
    name = repo.get("name") if isinstance(repo.get("name"), str) else None
    moved = payload.get("movedTo")
    moved_to = moved.get("name") if isinstance(moved, dict) and isinstance(moved.get("name"), str) else None
    head = repo.get("headSha") if isinstance(repo.get("headSha"), str) else None
    return HubEvent(scope, action, kind, name, head, bool(repo.get("private", False)), moved_to)
