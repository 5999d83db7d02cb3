"""The restart policy, as pure functions: exponential backoff with jitter, and the intensity limit.

One-for-one supervision: each child has its own backoff (a crash loop in the
embedder does not slow the crawler's restarts), while the intensity limit counts
every restart of every child, as in an Erlang/OTP supervisor: a daemon whose
children keep dying is better handed to systemd (which logs it and applies its
own start limits) than kept spinning.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    initial: float = 1.0  # seconds before the first restart
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.2  # ± fraction, so children failing together do not restart in lockstep
    stable_after: float = 300.0  # a child that ran this long starts again from `initial`
    max_restarts: int = 10  # more restarts than this within `window` seconds: give up
    window: float = 600.0


def backoff_delay(policy: RestartPolicy, consecutive: int, rng: random.Random | None = None) -> float:
    """Delay before restart number `consecutive` (0 = first) of a child that keeps failing.

    Never above the cap, never below zero, jitter included.
    """
    base = min(policy.cap, policy.initial * policy.factor ** max(consecutive, 0))
    if not policy.jitter or rng is None:
        return base
    spread = rng.uniform(-policy.jitter, policy.jitter)
    delay = base * (1.0 + spread)
    if delay > policy.cap:
        delay = policy.cap * (1.0 - abs(spread))  # at the cap, spread downwards rather than pile up on it
    return max(0.0, delay)


def backoff_bound(policy: RestartPolicy, consecutive: int) -> float:
    """The most `backoff_delay` can return for this restart (jitter at its worst)."""
    base = min(policy.cap, policy.initial * policy.factor ** max(consecutive, 0))
    return min(policy.cap, base * (1.0 + policy.jitter))


def backoff_curve(policy: RestartPolicy, count: int) -> list[float]:
    """The delays without jitter, for documentation and the bench."""
    return [backoff_delay(policy, n) for n in range(count)]


@dataclass
class ChildBackoff:
    """One child's restart streak."""

    policy: RestartPolicy
    consecutive: int = 0

    def next_delay(self, uptime: float, rng: random.Random | None = None) -> float:
        """The child just died after running `uptime` seconds: how long to wait before starting it again."""
        if uptime >= self.policy.stable_after:
            self.consecutive = 0  # it had recovered; this is a new incident
        delay = backoff_delay(self.policy, self.consecutive, rng)
        self.consecutive += 1
        return delay


@dataclass
class IntensityLimit:
    """Restarts of all children within a sliding window; `record` says whether the limit is passed."""

    policy: RestartPolicy
    times: deque[float] = field(default_factory=deque)

    def record(self, now: float) -> bool:
        self.times.append(now)
        while self.times and self.times[0] <= now - self.policy.window:
            self.times.popleft()
        return len(self.times) > self.policy.max_restarts

    def recent(self, now: float) -> int:
        return sum(1 for t in self.times if t > now - self.policy.window)
