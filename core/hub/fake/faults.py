"""Injected failures for `/api/*`: 5xx answers, slow answers, dropped connections, truncated bodies.

Each request draws the same number of random numbers from one seeded stream,
so a given seed yields the same sequence of decisions for the same sequence of
requests.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class FaultConfig:
    error_rate: float = 0.0  # fraction of /api requests answered 500/502/503 with {"error": ...}
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    drop_rate: float = 0.0  # connection closed with no response
    truncate_rate: float = 0.0  # 200 with the full Content-Length but a cut body, then the connection closes
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "slow_rate", "drop_rate", "truncate_rate"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")

    @property
    def active(self) -> bool:
        return any((self.error_rate, self.slow_rate and self.slow_seconds, self.drop_rate, self.truncate_rate))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultDecision:
    delay: float = 0.0
    action: str | None = None  # None | "error" | "drop" | "truncate"
    status: int = 200


NO_FAULT = FaultDecision()
_ERROR_STATUSES = (500, 502, 503)


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def draw(self) -> FaultDecision:
        config = self.config
        if not config.active:
            return NO_FAULT
        u_slow, u_error, u_drop, u_truncate, u_status = (self._rng.random() for _ in range(5))
        delay = config.slow_seconds if u_slow < config.slow_rate else 0.0
        if u_error < config.error_rate:
            return FaultDecision(delay, "error", _ERROR_STATUSES[int(u_status * len(_ERROR_STATUSES))])
        if u_drop < config.drop_rate:
            return FaultDecision(delay, "drop")
        if u_truncate < config.truncate_rate:
            return FaultDecision(delay, "truncate")
        return FaultDecision(delay) if delay else NO_FAULT
