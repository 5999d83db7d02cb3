"""Staying inside the Hub's rate budget: header parsing, pacing, and retry delays.

The Hub sends `RateLimit: "api";r=<remaining>;t=<seconds to reset>` on every
response (fixed 5-minute windows). Rather than burst until a 429 and then stall,
the pacer spreads what is left of the window over the time left, so a crawl uses
the whole budget while the watch poll still gets its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_PARAM = re.compile(r";\s*([a-z]+)=([0-9.]+)")
CLOCK_DRIFT = 1e-4  # seconds per second our clock may run apart from the Hub's (generous: NTP keeps ~1e-5)


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


def pacing_interval(usable: int, seconds_left: float) -> float:
    """Seconds between requests to spread `usable` calls over `seconds_left` (0 when behind schedule)."""
    if usable <= 0:
        raise ValueError("nothing to spread")
    return max(seconds_left, 0.0) / usable


def intersect_phase(phase: tuple[float, float] | None, constraint: tuple[float, float],
                    window: float) -> tuple[float, float]:
    """Narrow where a reset falls with one more observation of it.

    `phase` holds one reset instant; with fixed windows every other reset is a whole
    number of windows away, so the constraint is matched against the phase shifted by
    the nearest multiples of `window`. The result lies inside the constraint. When
    nothing overlaps, the policy or the server's clock changed: the constraint wins.
    """
    c_lo, c_hi = constraint
    if phase is None:
        return constraint
    p_lo, p_hi = phase
    nearest = round(((c_lo + c_hi) - (p_lo + p_hi)) / 2 / window)
    # Our clock and the server's may drift apart a little: widen the phase with each window carried.
    overlaps = [(max(c_lo, p_lo + k * window - abs(k) * window * CLOCK_DRIFT),
                 min(c_hi, p_hi + k * window + abs(k) * window * CLOCK_DRIFT))
                for k in range(nearest - 1, nearest + 2)]
    overlaps = [(lo, hi) for lo, hi in overlaps if lo <= hi]
    if not overlaps:
        return constraint
    return min(lo for lo, _ in overlaps), max(hi for _, hi in overlaps)


@dataclass(frozen=True)
class Observation:
    """One response: its header values and the instants between which the server produced them."""

    sent: float
    received: float
    remaining: int
    reset_seconds: float


def reset_after(obs: Observation) -> tuple[float, float]:
    """When the window this response was counted in ends, from its `t` alone.

    `t` is whole seconds, rounded either way by the server, so the reset is within a
    second of (server time + t); the server time lies between send and receipt, and
    the reset is after it.
    """
    return max(obs.sent, obs.sent + obs.reset_seconds - 1), obs.received + obs.reset_seconds + 1


class Pacer:
    """Spreads each window's budget over the window; shared by every request of one process.

    Where the window ends is learnt, not assumed: every response bounds it by `t`; a
    drop in `t` between two close responses pins its phase to within a second whatever
    the server's rounding; a jump in `r` pins it to the gap between two requests. Fixed
    windows make each of these hold for every later window too, so the bounds only
    narrow. While the end is still uncertain by more than a couple of request slots,
    the window's last usable call is held back as a probe: it either lands in the new
    window (the reset is before it) or in the old one (after). The first probe goes two
    slots after the earliest possible reset, where a server that rounds `t` up puts it;
    once a probe has missed, probes go to the middle of the span, halving it each
    window, until the pacer knows the reset to about two slots and stops probing. It
    never counts on a reset before the latest instant the evidence allows, so pacing
    alone never earns a 429.

    The schedule aims to finish a window's budget `lead_share` of a window before its
    earliest possible end: a crawl slowed by a busy CPU falls behind into that slack and
    then runs as fast as it can, instead of leaving budget unused when the window turns.
    """

    def __init__(self, reserve_share: float = 0.01, lead_share: float = 0.1, max_lead: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._reserve_share = reserve_share
        self._lead_share = lead_share
        self._max_lead = max_lead
        self._clock = clock
        self._remaining: int | None = None  # calls left in the current window, None when unknown
        self._end: tuple[float, float] | None = None  # the current window ends in [lo, hi]
        self._quota: int | None = None
        self._window: float | None = None
        self._last: Observation | None = None
        self._next_slot = 0.0
        self._probe_sent: float | None = None
        self._probe_early = True  # until a probe misses: see the class docstring
        self._in_flight = 0
        self._peak_in_flight = 1
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self.waited_seconds = 0.0

    @property
    def reserve(self) -> int:
        return max(1, int((self._quota or 0) * self._reserve_share))

    @property
    def in_flight(self) -> int:
        """Requests let through and not yet answered: the window's count may not show them yet."""
        return self._in_flight

    @property
    def window_end(self) -> tuple[float, float] | None:
        """Bounds on when the current window ends, as far as the responses so far tell."""
        return self._end

    def _roll(self, now: float) -> None:
        """Move past windows that have certainly ended: a fresh window has its whole quota."""
        if self._end is None or now < self._end[1]:
            return
        if not self._window or self._quota is None:
            self._end = self._remaining = None  # the next response says where we are
            return
        lo, hi = self._end
        windows = math.floor((now - hi) / self._window) + 1
        self._end = (lo + windows * self._window, hi + windows * self._window)
        self._remaining = self._quota

    def _plan(self) -> tuple[int, float, float | None]:
        """(calls to spread before the window ends, when the spreading should finish, when to probe)."""
        assert self._end is not None and self._remaining is not None
        lo, hi = self._end
        usable = self._remaining - self.reserve
        slot = (self._window or 0.0) / (self._quota or 1)
        probe_at = None
        if slot > 0 and hi - lo > 2 * slot and usable >= 1:
            probe_at = min(lo + 2 * slot, (lo + hi) / 2) if self._probe_early else (lo + hi) / 2
        lead = min(self._max_lead, self._lead_share * (self._window or 0.0))
        return usable - (0 if probe_at is None else 1), lo - lead, probe_at

    def delay(self, now: float | None = None) -> float:
        """Seconds to wait before the next request may go (0 = now)."""
        now = self._clock() if now is None else now
        self._roll(now)
        if self._end is None or self._remaining is None:
            return 0.0
        spread, finish, probe_at = self._plan()
        if spread >= 1:
            return 0.0 if now >= finish else max(0.0, self._next_slot - now)
        if probe_at is not None:
            return max(0.0, probe_at - now)
        return self._end[1] - now  # out of budget: wait until the window has surely turned

    async def acquire(self) -> float:
        """Wait for a slot; returns the instant the request may be considered sent."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.delay(now)
                if wait <= 0:
                    break
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    # A response may show the reset early (the probe): look again then.
                    await asyncio.wait_for(self._changed.wait(), wait)
                self.waited_seconds += self._clock() - now
            if self._remaining is not None:
                spread, finish, probe_at = self._plan()
                self._next_slot = now + (pacing_interval(spread, finish - now) if spread >= 1 else 0.0)
                if spread < 1 and probe_at is not None:
                    self._probe_sent = now
                self._remaining -= 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            return now

    def release(self, info: RateLimitInfo | None, sent: float) -> None:
        """Called once per request that `acquire` let through, with what its response said (None: no answer)."""
        self._in_flight -= 1
        if info is None:
            return
        obs = Observation(sent, self._clock(), info.remaining, info.reset_seconds)
        if info.window is not None:
            self._window = info.window
        if info.quota is not None:
            self._quota = info.quota
        last, self._last = self._last, obs
        jumped = last is not None and obs.remaining > last.remaining + self._peak_in_flight
        if sent == self._probe_sent:
            self._probe_sent = None
            self._probe_early = self._probe_early and jumped
        if last is not None and self._window:
            if jumped:
                # Only a new window gives budget back: the reset fell between the two.
                self._end = intersect_phase(self._end, (last.sent, obs.received), self._window)
            elif (obs.reset_seconds < last.reset_seconds
                  and obs.received - last.sent < min(1.0, self._window / 3)):
                # `t` stepped down to obs.t in between: the reset is obs.t (ceil) to obs.t + 1 (floor)
                # seconds after that step.
                step = (last.sent + obs.reset_seconds, obs.received + obs.reset_seconds + 1)
                self._end = intersect_phase(self._end, step, self._window)
        # Without a policy's window nothing says which reset an earlier bound was about.
        self._end = intersect_phase(self._end, reset_after(obs), self._window) if self._window else reset_after(obs)
        # Requests still in flight may not be counted in this response's `r` yet.
        self._remaining = max(0, obs.remaining - self._in_flight)
        self._changed.set()

    def exhausted_until(self, info: RateLimitInfo) -> None:
        """A 429 arrived: what the pacer knew of the window was wrong; nothing more until it resets."""
        now = self._clock()
        self._remaining = 0
        self._end = (now, now + info.reset_seconds + 1)  # as huggingface_hub: t + 1
