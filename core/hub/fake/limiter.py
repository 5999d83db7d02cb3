"""The Hub's `api` rate limit: one fixed window per server, answered in IETF-draft RateLimit headers.

Every response carries `RateLimit: "api";r=<remaining>;t=<seconds to reset>` and
`RateLimit-Policy: "fixed window";"api";q=<quota>;w=<window>`. Past the quota the
answer is a 429 with `r=0` and no `Retry-After`, as on the real Hub.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

UNLIMITED_QUOTA = 1_000_000_000  # sent as `q` when no quota is set: clients see a budget they never reach


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    reset_seconds: int
    quota: int
    window: float

    def headers(self) -> dict[str, str]:
        window = int(self.window) if float(self.window).is_integer() else self.window
        return {
            "RateLimit": f'"api";r={self.remaining};t={self.reset_seconds}',
            "RateLimit-Policy": f'"fixed window";"api";q={self.quota};w={window}',
        }


class FixedWindowLimiter:
    def __init__(self, quota: int | None, window: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.configure(quota, window)

    def configure(self, quota: int | None, window: float = 300.0) -> None:
        if quota is not None and quota < 0:
            raise ValueError("quota must be >= 0")
        if window <= 0:
            raise ValueError("window must be > 0")
        self.quota = quota
        self.window = float(window)
        self._start = self._clock()
        self._used = 0

    def _roll(self) -> float:
        now = self._clock()
        if now >= self._start + self.window:
            self._start += math.floor((now - self._start) / self.window) * self.window
            self._used = 0
        return now

    def _verdict(self, allowed: bool, now: float) -> Verdict:
        quota = UNLIMITED_QUOTA if self.quota is None else self.quota
        reset = max(1, math.ceil(self._start + self.window - now))
        return Verdict(allowed, max(0, quota - self._used), reset, quota, self.window)

    def hit(self) -> Verdict:
        """Count one request; allowed is False past the quota (the request is not counted then)."""
        now = self._roll()
        if self.quota is not None and self._used >= self.quota:
            return self._verdict(False, now)
        self._used += 1
        return self._verdict(True, now)

    def peek(self) -> Verdict:
        return self._verdict(True, self._roll())
