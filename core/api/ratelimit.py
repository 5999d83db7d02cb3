"""Per-client rate limiting: a fixed window per client address, announced in `RateLimit` headers.

The headers follow the IETF draft the Hub itself uses (`RateLimit: "default";r=<left>;t=<s>`
and `RateLimit-Policy: "default";q=<quota>;w=<window>`), so our own Hub client could pace on
them. Over quota: 429 with `Retry-After`. Configured in the config file as
`api.rate_limit = {"requests": N, "window_seconds": W}`; `requests: 0` turns it off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

DEFAULT_REQUESTS = 1200
DEFAULT_WINDOW = 60.0
_PRUNE_AT = 10_000  # clients remembered before stale windows are dropped


@dataclass(frozen=True)
class RateLimitPolicy:
    requests: int = DEFAULT_REQUESTS
    window_seconds: float = DEFAULT_WINDOW

    @property
    def enabled(self) -> bool:
        return self.requests > 0

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> RateLimitPolicy:
        section = (raw.get("api") or {}).get("rate_limit") or {}
        return cls(int(section.get("requests", DEFAULT_REQUESTS)),
                   float(section.get("window_seconds", DEFAULT_WINDOW)))


@dataclass
class Verdict:
    allowed: bool
    remaining: int
    reset_seconds: int
    headers: dict[str, str] = field(default_factory=dict)


class RateLimiter:
    def __init__(self, policy: RateLimitPolicy) -> None:
        self.policy = policy
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, client: str, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        window = self.policy.window_seconds
        start, count = self._windows.get(client, (now, 0))
        if now - start >= window:
            start, count = now, 0
        allowed = count < self.policy.requests
        if allowed:
            count += 1
        self._windows[client] = (start, count)
        if len(self._windows) > _PRUNE_AT:
            self._prune(now)
        remaining = max(self.policy.requests - count, 0)
        reset = max(math.ceil(start + window - now), 1)
        headers = {
            "RateLimit": f'"default";r={remaining};t={reset}',
            "RateLimit-Policy": f'"default";q={self.policy.requests};w={math.ceil(window)}',
        }
        if not allowed:
            headers["Retry-After"] = str(reset)
        return Verdict(allowed, remaining, reset, headers)

    def _prune(self, now: float) -> None:
        window = self.policy.window_seconds
        self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
