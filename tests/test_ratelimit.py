"""Pure rate-limit logic: header parsing, pacing, retry delays."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from core.hub.client import parse_link_next
from core.hub.fake.limiter import FixedWindowLimiter
from core.hub.ratelimit import (
    Observation,
    Pacer,
    RateLimitInfo,
    backoff_delay,
    intersect_phase,
    pacing_interval,
    parse_ratelimit,
    reset_after,
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
    assert pacing_interval(100, 100.0) == pytest.approx(1.0)
    assert pacing_interval(10, -1.0) == 0.0  # behind schedule: go now
    with pytest.raises(ValueError):
        pacing_interval(0, 10.0)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def info(r: int, t: float, q: int = 200, w: float = 10) -> RateLimitInfo:
    return RateLimitInfo(remaining=r, reset_seconds=t, quota=q, window=w)


def test_reset_after_brackets_any_rounding() -> None:
    # Server time was within [100.0, 100.1]; t=7 rounded either way puts the reset within a second of +7.
    assert reset_after(Observation(100.0, 100.1, 50, 7)) == (106.0, 108.1)
    # t=0 (floor rounding in the last second): the reset is still after the request.
    assert reset_after(Observation(100.0, 100.1, 50, 0)) == (100.0, 101.1)


def test_intersect_phase_carries_over_whole_windows() -> None:
    assert intersect_phase(None, (5.0, 7.0), 10) == (5.0, 7.0)
    # A reset pinned to 100.00-100.05 and a later response saying 109-111: the reset is at 110.00-110.05.
    lo, hi = intersect_phase((100.0, 100.05), (109.0, 111.0), 10)
    assert (lo, hi) == pytest.approx((110.0, 110.05), abs=0.01)
    # The result always lies within the new constraint, also when the phase was wider.
    assert intersect_phase((99.0, 101.0), (110.5, 111.5), 10) == pytest.approx((110.5, 111.0), abs=0.01)
    # A constraint that contradicts the phase (the policy or the server changed) replaces it.
    assert intersect_phase((100.0, 100.05), (104.0, 106.0), 10) == (104.0, 106.0)


async def test_pacer_probes_the_reset_then_waits_for_it() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    assert pacer.delay() == 0
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(info(r=3, t=10), sent)
    # Three left: two (1%) held in reserve, the third kept to probe the 2 s the reset may fall in,
    # first two slots (2 x 10 s / 200) after its earliest instant, where rounding t up puts it.
    lo, hi = pacer.window_end
    assert hi - lo == pytest.approx(2.01)
    assert pacer.delay() == pytest.approx(lo + 0.1 - clock.now)
    clock.now = lo + 0.1
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(info(r=2, t=1), sent)  # the probe landed before the reset
    # The reset is after the probe; only the reserve is left: wait until the window has surely turned.
    assert pacer.window_end == pytest.approx((lo + 0.1, hi))
    assert pacer.delay() == pytest.approx(hi - clock.now)
    clock.now = hi
    assert pacer.delay() == 0  # a new window: its whole quota
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(info(r=3, t=9), sent)
    # That probe missed: from now on probes halve what is left of the span.
    lo, hi = pacer.window_end
    assert pacer.delay() == pytest.approx((lo + hi) / 2 - clock.now)


async def test_pacer_without_a_policy_header_goes_by_t_alone() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(RateLimitInfo(remaining=1, reset_seconds=5), sent)
    assert pacer.delay() == pytest.approx(6.0)  # the last call is the reserve: wait t + 1
    clock.now += 6.0
    assert pacer.delay() == 0  # no quota known: go, and let the next response say where we are


async def test_pacer_spreads_requests_and_finishes_early() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, lead_share=0.1)
    sent = await pacer.acquire()
    pacer.release(info(r=51, t=100, q=1000, w=300), sent)
    await pacer.acquire()  # allowed at once; the next one is spaced
    # At least 99 s left (t is rounded) less a lead of 10 s; 51 calls left, 10 (1% of the quota)
    # held back and one kept to probe the uncertain reset: 40 spread over 89 s.
    assert pacer.delay() == pytest.approx(89 / 40, rel=0.01)


async def test_pacer_learns_the_window_phase_from_t_then_r() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(info(r=150, t=5), sent)
    lo, hi = pacer.window_end
    assert hi - lo == pytest.approx(2.01)  # t alone: within a second either way
    clock.now += 0.2
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(info(r=149, t=4), sent)  # t stepped down between the two: the phase is known to a second
    lo, hi = pacer.window_end
    assert lo == pytest.approx(1000.0 + 4) and hi - lo < 1.3
    clock.now = lo + 0.3
    sent = await pacer.acquire()
    clock.now += 0.01
    pacer.release(info(r=199, t=10), sent)  # r jumped: the reset was between the last two requests
    lo, hi = pacer.window_end
    assert (lo, hi) == pytest.approx((1014.0, 1014.31), abs=0.002)  # one window on, to a third of a second


async def test_a_response_showing_the_reset_ends_the_wait() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock)
    sent = await pacer.acquire()
    pacer.release(info(r=3, t=10), sent)
    lo, hi = pacer.window_end
    clock.now = (lo + hi) / 2
    probe_sent = await pacer.acquire()  # the last usable call probes whether the window has turned
    waiting = asyncio.create_task(pacer.acquire())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # out of budget until the reset (the fake clock never gets there)
    clock.now += 0.05
    pacer.release(info(r=199, t=10), probe_sent)
    await asyncio.wait_for(waiting, timeout=5)


@dataclass
class WindowServer:
    """A fixed-window Hub whose `t` is rounded by `rounding` (the real one's rounding is not documented)."""

    quota: int
    window: float
    clock: FakeClock
    rounding: Callable[[float], int]
    start: float = 0.0
    used: int = 0

    def hit(self) -> tuple[bool, dict[str, str]]:
        now = self.clock()
        if now >= self.start + self.window:
            self.start += math.floor((now - self.start) / self.window) * self.window
            self.used = 0
        allowed = self.used < self.quota
        self.used += allowed
        t = max(0, self.rounding(self.start + self.window - now))
        return allowed, {"RateLimit": f'"api";r={self.quota - self.used};t={t}',
                         "RateLimit-Policy": f'"fixed window";"api";q={self.quota};w={self.window:g}'}


def fake_hub_rounding(seconds: float) -> int:
    """The bundled fake Hub's limiter: ceil, never below 1."""
    return FixedWindowLimiter(1, seconds, clock=lambda: 0.0).peek().reset_seconds


async def simulate_crawl(server: WindowServer, clock: FakeClock, seconds: float, rng: random.Random) -> tuple[int, int]:
    """A crawler making one request at a time through a Pacer, in simulated time: (accepted, 429s)."""
    pacer = Pacer(clock=clock)
    end = clock.now + seconds
    accepted = limited = 0
    while clock.now < end:
        while (wait := pacer.delay()) > 0:
            clock.now += wait  # nothing in flight could end the wait earlier
        sent = await pacer.acquire()
        clock.now += rng.uniform(0.001, 0.01)
        allowed, headers = server.hit()
        clock.now += rng.uniform(0.001, 0.01)
        parsed = parse_ratelimit(headers)
        pacer.release(parsed, sent)
        if allowed:
            accepted += 1
        else:
            limited += 1
            assert parsed is not None
            pacer.exhausted_until(parsed)
        # The crawler's own work on the page; now and then the CPU is busy elsewhere.
        clock.now += rng.uniform(0.003, 0.02) if rng.random() > 0.01 else rng.uniform(0.05, 0.2)
    return accepted, limited


@pytest.mark.parametrize("rounding", [fake_hub_rounding, math.floor, round], ids=["fake-hub", "floor", "round"])
@pytest.mark.parametrize(("quota", "window"), [(200, 10), (100, 3), (500, 300)])
@pytest.mark.parametrize("seed", [1, 2])
async def test_pacer_uses_the_budget_without_429(rounding: Callable[[float], int], quota: int, window: float,
                                                 seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock(0.0)
    server = WindowServer(quota, window, clock, rounding)
    clock.now = rng.uniform(0, window)  # the crawl starts anywhere in a window
    seconds = 20 * window
    accepted, limited = await simulate_crawl(server, clock, seconds, rng)
    assert limited == 0
    # The budget over the run is the quota's rate times its length; the first, partial window may
    # give a little more. 1% is held in reserve.
    assert accepted / (quota / window * seconds) >= 0.97


def test_parse_link_next() -> None:
    header = '<http://h/api/models?limit=10&cursor=abc%3D>; rel="next"'
    assert parse_link_next(header) == "http://h/api/models?limit=10&cursor=abc%3D"
    assert parse_link_next('<http://h/x>; rel="prev"') is None
    assert parse_link_next(None) is None


async def test_a_request_given_up_frees_its_slot() -> None:
    """A request cancelled before its answer (a stopping crawl) no longer counts as in flight."""
    from core.hub.client import HubClient
    from core.hub.fake import FakeHub
    from core.hub.fake.faults import FaultConfig

    hub = FakeHub(models=10, datasets=0, spaces=0, papers=0)
    url = await hub.start("127.0.0.1", 0)
    hub.set_faults(FaultConfig(slow_rate=1.0, slow_seconds=2.0))
    try:
        async with HubClient(url) as client:
            request = asyncio.create_task(client.get_page(f"{url}/api/models"))
            while client.pacer.in_flight == 0:
                await asyncio.sleep(0.01)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            assert client.pacer.in_flight == 0
    finally:
        await hub.close()
