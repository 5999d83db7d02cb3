"""Pure rate-limit logic: header parsing, pacing, retry delays."""

from __future__ import annotations

import itertools
import random

import pytest

from core.hub.client import parse_link_next
from core.hub.ratelimit import (
    Pacer,
    RateLimitInfo,
    backoff_delay,
    pacing_interval,
    parse_ratelimit,
    reset_bounds,
    retry_after_seconds,
)
from tests.conftest import FIXTURES


def test_parse_real_header_examples() -> None:
    text = (FIXTURES / "response_headers.txt").read_text()
    pairs = [line for line in text.splitlines() if line.lower().startswith(("ratelimit:", "ratelimit-policy:"))]
    assert pairs, "fixture lost its RateLimit examples"
    parsed = 0
    for first, second in itertools.pairwise(pairs):
        if first.lower().startswith("ratelimit:") and second.lower().startswith("ratelimit-policy:"):
            name1, _, value1 = first.partition(":")
            name2, _, value2 = second.partition(":")
            info = parse_ratelimit({name1: value1.strip(), name2: value2.strip()})
            assert info is not None and info.quota is not None and info.window == 300
            assert 0 <= info.remaining <= info.quota
            parsed += 1
    assert parsed >= 3


def test_parse_exact_values() -> None:
    info = parse_ratelimit({"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'})
    assert info == RateLimitInfo(remaining=0, reset_seconds=55, quota=500, window=300)
    assert parse_ratelimit({}) is None
    assert parse_ratelimit({"RateLimit": "garbage"}) is None


def test_retry_after_429() -> None:
    headers = {"RateLimit": '"api";r=0;t=12', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'}
    assert retry_after_seconds(429, headers) == 13
    assert retry_after_seconds(429, {"Retry-After": "7"}) == 7
    assert retry_after_seconds(429, {}) is None
    assert retry_after_seconds(200, headers) is None


def test_backoff_grows_and_caps() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, base=1, cap=60, rng=rng) for a in range(10)]
    for attempt, delay in enumerate(delays):
        ceiling = min(60, 2 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 60


def test_pacing_interval_spreads_budget() -> None:
    assert pacing_interval(101, 100.0, reserve=1) == pytest.approx(1.0)
    assert pacing_interval(1, 100.0, reserve=1) is None
    assert pacing_interval(11, -1.0, reserve=1) == 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_pacer_waits_for_reset_when_exhausted() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    assert pacer.delay() == 0
    await pacer.acquire()
    pacer.release(RateLimitInfo(remaining=1, reset_seconds=10, quota=100, window=300))
    # One left and one held in reserve: wait for the window's end (t + 1).
    assert pacer.delay() == pytest.approx(11)
    clock.now += 11.01
    assert pacer.delay() == 0


async def test_pacer_spreads_requests() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    await pacer.acquire()
    pacer.release(RateLimitInfo(remaining=51, reset_seconds=100, quota=1000, window=300))
    await pacer.acquire()  # allowed at once; the next one is spaced
    # At least 99 s left (t is rounded), 51 calls left of which 10 (1% of the quota) are held back.
    assert pacer.delay() == pytest.approx(99 / 41, rel=0.01)


def test_reset_bounds_from_t_alone_and_from_a_seen_reset() -> None:
    assert reset_bounds(100.0, 10) == (109.0, 111.0)
    # A reset was seen between 100.00 and 100.05; windows are 10 s: the next one is pinned to 50 ms.
    lo, hi = reset_bounds(103.0, 7, window=10, boundary=(100.0, 100.05))
    assert (lo, hi) == pytest.approx((110.0, 110.05))
    # A phase that contradicts t (the policy changed) is ignored.
    assert reset_bounds(103.0, 2, window=10, boundary=(100.0, 100.05)) == (104.0, 106.0)


async def test_pacer_learns_the_window_phase() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    await pacer.acquire()
    pacer.release(RateLimitInfo(remaining=3, reset_seconds=1, quota=200, window=10))
    clock.now += 0.05
    await pacer.acquire()
    pacer.release(RateLimitInfo(remaining=199, reset_seconds=10, quota=200, window=10))  # a new window
    clock.now += 1.0
    await pacer.acquire()
    pacer.release(RateLimitInfo(remaining=150, reset_seconds=9, quota=200, window=10))
    clock.now += 0.1  # past the slot the previous state gave
    await pacer.acquire()
    # The reset is pinned to 1010.00-1010.05 by the jump in r (t alone says 1009.15-1011.15):
    # 150 calls less a reserve of 2 are spread over the 8.85 s left.
    assert pacer.delay() == pytest.approx(8.85 / 148, rel=0.01)


def test_parse_link_next() -> None:
    header = '<http://h/api/models?limit=10&cursor=abc%3D>; rel="next"'
    assert parse_link_next(header) == "http://h/api/models?limit=10&cursor=abc%3D"
    assert parse_link_next('<http://h/x>; rel="prev"') is None
    assert parse_link_next(None) is None
