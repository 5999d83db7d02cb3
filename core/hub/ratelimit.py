"""Staying inside the Hub's rate budget: header parsing, pacing, and retry delays.

The Hub sends `RateLimit: "api";r=<remaining>;t=<seconds to reset>` on every
response (fixed 5-minute windows). Rather than burst until a 429 and then stall,
the pacer spreads what is left of the window evenly over the time left, so a
crawl uses the whole budget while the watch poll still gets its turn.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

_PARAM = re.compile(r";\s*([a-z]+)=([0-9.]+)")


@dataclass(frozen=True)
class RateLimitInfo:
    remaining: int
    reset_seconds: float
    quota: int | None = None
    window: float | None = None


def parse_ratelimit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """Read the IETF-draft `RateLimit` / `RateLimit-Policy` pair; None when absent or malformed."""
    value = headers.get("RateLimit") or headers.get("ratelimit")
    if not value:
        return None
    params = dict(_PARAM.findall(value))
    if "r" not in params or "t" not in params:
        return None
    policy = dict(_PARAM.findall(headers.get("RateLimit-Policy") or headers.get("ratelimit-policy") or ""))
    return RateLimitInfo(
        remaining=int(float(params["r"])),
        reset_seconds=float(params["t"]),
        quota=int(float(policy["q"])) if "q" in policy else None,
        window=float(policy["w"]) if "w" in policy else None,
    )


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: base·2^attempt capped, scaled into [50%, 100%]."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def retry_after_seconds(status: int, headers: Mapping[str, str]) -> float | None:
    """How long a 429 asks us to wait: `t+1` when `r=0` (as huggingface_hub does), else `Retry-After`."""
    if status != 429:
        return None
    info = parse_ratelimit(headers)
    if info is not None and info.remaining == 0:
        return info.reset_seconds + 1
    retry_after = headers.get("Retry-After")
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after)
    return None


def pacing_interval(remaining: int, seconds_left: float, reserve: int) -> float | None:
    """Seconds between requests to spread `remaining` calls over `seconds_left`.

    None means "out of budget for this window: wait for the reset".
    """
    usable = remaining - reserve
    if usable <= 0:
        return None
    return max(seconds_left, 0.0) / usable


def reset_bounds(now: float, reset_seconds: float, window: float | None = None,
                 boundary: tuple[float, float] | None = None) -> tuple[float, float]:
    """When the current window ends, as an interval (lo, hi).

    `t` is whole seconds, rounded either way by the server, so on its own it puts the
    reset within a second of now + t. Windows are fixed, so a reset seen earlier (`r`
    went up between two responses, at times `boundary`) pins the phase: the next reset
    is a whole number of windows later, known as precisely as that boundary was seen.
    """
    lo, hi = now + reset_seconds - 1, now + reset_seconds + 1
    if window and boundary:
        b_lo, b_hi = boundary
        windows = math.floor((now - b_lo) / window) + 1
        p_lo, p_hi = b_lo + windows * window, b_hi + windows * window
        if p_lo < hi and p_hi > lo:  # ignore a phase that contradicts `t` (the policy changed)
            lo, hi = max(lo, p_lo), min(hi, p_hi)
    return max(lo, now), hi


class Pacer:
    """Shared by every request of one process, so the crawler and the watch poll split one budget."""

    def __init__(self, reserve_share: float = 0.01, clock=time.monotonic) -> None:
        self._reserve_share = reserve_share
        self._clock = clock
        self._remaining: int | None = None
        self._reset_lo = 0.0  # the window ends somewhere in [lo, hi)
        self._reset_hi = 0.0
        self._last_response: tuple[float, int] | None = None  # (when, r) of the previous response
        self._boundary: tuple[float, float] | None = None  # a reset was seen between these two instants
        self._quota: int | None = None
        self._window: float | None = None
        self._next_slot = 0.0
        self._in_flight = 0
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0

    @property
    def reserve(self) -> int:
        return max(1, int((self._quota or 0) * self._reserve_share))

    def delay(self) -> float:
        """Seconds to wait before the next request may go (0 = now). Pure given the state."""
        now = self._clock()
        if self._remaining is None or now >= self._reset_hi:
            return 0.0
        interval = pacing_interval(self._remaining, self._seconds_left(now), self.reserve)
        if interval is None:
            return self._reset_hi - now
        return max(0.0, self._next_slot - now)

    def _seconds_left(self, now: float) -> float:
        # Spread the budget up to the earliest possible reset: finishing a little early costs a
        # short wait for `hi`; aiming late would leave budget unused when the window turns.
        return self._reset_lo - now

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.delay()) > 0:
                self.waited_seconds += wait
                await asyncio.sleep(wait)
            now = self._clock()
            if self._remaining is not None and now < self._reset_hi:
                interval = pacing_interval(self._remaining, self._seconds_left(now), self.reserve) or 0.0
                self._remaining -= 1
                self._next_slot = now + interval
            self._in_flight += 1

    def release(self, info: RateLimitInfo | None) -> None:
        """Called once per request with what its response said (None on a network failure)."""
        self._in_flight -= 1
        if info is None:
            return
        now = self._clock()
        if self._last_response is not None and info.remaining > self._last_response[1]:
            self._boundary = (self._last_response[0], now)  # only a new window gives budget back
        self._last_response = (now, info.remaining)
        if info.window is not None:
            self._window = info.window
        self._reset_lo, self._reset_hi = reset_bounds(now, info.reset_seconds, self._window, self._boundary)
        # Requests still in flight were not counted in this response's `r` yet.
        self._remaining = max(0, info.remaining - self._in_flight)
        if info.quota is not None:
            self._quota = info.quota

    def exhausted_until(self, info: RateLimitInfo) -> None:
        """A 429 arrived: nothing more until the window resets."""
        self._remaining = 0
        now = self._clock()
        self._reset_lo, self._reset_hi = reset_bounds(now, info.reset_seconds, self._window, self._boundary)
        self._reset_hi = max(self._reset_hi, now + info.reset_seconds + 1)  # as huggingface_hub: t + 1
