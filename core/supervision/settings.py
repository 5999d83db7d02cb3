"""Supervisor settings, read from the config file's `watchdog` section (the original project's name).

They live in `Config.raw` rather than as `Config` fields because only the
supervisor reads them; every one has a production default, and tests shrink them
to run in seconds.

    "watchdog": {
        "check_interval_seconds": 5,      # health probe, RSS check, systemd WATCHDOG=1
        "heartbeat_interval_seconds": 5,  # how often each child beats
        "heartbeat_timeout_seconds": 10,  # no beat for this long: the child is frozen
        "loop_stall_seconds": 120,        # a child's event loop blocked this long: hung
        "startup_timeout_seconds": 120,   # a child (or the API's /health) not up after this: failed start
        "health_failures": 3,             # consecutive failed /health probes before restarting the API
        "rss_cap_mb": 2048,               # a child above this resident size is restarted (0: no cap)
        "shutdown_grace_seconds": 10,     # SIGTERM → this long to finish the current unit → SIGKILL
        "backoff_initial_seconds": 1, "backoff_cap_seconds": 60, "backoff_jitter": 0.2,
        "stable_seconds": 300, "max_restarts": 10, "restart_window_seconds": 600,
        "restarts_keep_days": 30,
        "background_nice": 10             # niceness of the crawler and embedding worker (0-19; the API keeps 0)
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config import Config, ConfigError
from core.supervision.backoff import RestartPolicy


@dataclass(frozen=True)
class SupervisorSettings:
    check_interval: float = 5.0
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 10.0
    loop_stall: float = 120.0
    startup_timeout: float = 120.0
    health_failures: int = 3
    rss_cap_mb: float = 2048.0
    shutdown_grace: float = 10.0
    restarts_keep_days: float = 30.0
    # Bulk work (a full sync, an embedding backlog of hours) yields the CPU to the API's requests.
    background_nice: int = 10
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    @property
    def tick(self) -> float:
        """How often heartbeats are read: fine enough that a frozen child is caught within 3 intervals."""
        return max(0.05, min(self.check_interval, self.heartbeat_interval / 5))

    @property
    def hung_grace(self) -> float:
        """SIGTERM → SIGKILL delay for a frozen child: it cannot finish anything, so keep it short."""
        return min(1.0, self.heartbeat_interval / 4, self.shutdown_grace)


_KEYS: dict[str, tuple[str, type]] = {
    "check_interval_seconds": ("check_interval", float),
    "heartbeat_interval_seconds": ("heartbeat_interval", float),
    "heartbeat_timeout_seconds": ("heartbeat_timeout", float),
    "loop_stall_seconds": ("loop_stall", float),
    "startup_timeout_seconds": ("startup_timeout", float),
    "health_failures": ("health_failures", int),
    "rss_cap_mb": ("rss_cap_mb", float),
    "shutdown_grace_seconds": ("shutdown_grace", float),
    "restarts_keep_days": ("restarts_keep_days", float),
    "background_nice": ("background_nice", int),
}
_POLICY_KEYS: dict[str, tuple[str, type]] = {
    "backoff_initial_seconds": ("initial", float),
    "backoff_cap_seconds": ("cap", float),
    "backoff_jitter": ("jitter", float),
    "stable_seconds": ("stable_after", float),
    "max_restarts": ("max_restarts", int),
    "restart_window_seconds": ("window", float),
}


def _get(section: dict[str, Any], key: str, kind: type) -> Any:
    value = section[key]
    try:
        number = kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"watchdog.{key} must be a number, got {value!r}") from exc
    if number < 0:
        raise ConfigError(f"watchdog.{key} must not be negative")
    return number


def load_settings(config: Config) -> SupervisorSettings:
    section = config.raw.get("watchdog") or {}
    if not isinstance(section, dict):
        raise ConfigError("watchdog must be a JSON object")
    values: dict[str, Any] = {"check_interval": config.watchdog_check_interval_seconds}
    policy: dict[str, Any] = {}
    for key, (name, kind) in _KEYS.items():
        if key in section:
            values[name] = _get(section, key, kind)
    for key, (name, kind) in _POLICY_KEYS.items():
        if key in section:
            policy[name] = _get(section, key, kind)
    if "heartbeat_interval" in values and "heartbeat_timeout" not in values:
        values["heartbeat_timeout"] = 2 * values["heartbeat_interval"]
    settings = SupervisorSettings(**values, policy=RestartPolicy(**policy))
    if settings.heartbeat_interval <= 0 or settings.heartbeat_interval > 5:
        raise ConfigError("watchdog.heartbeat_interval_seconds must be in (0, 5]")
    if settings.heartbeat_timeout <= settings.heartbeat_interval:
        raise ConfigError("watchdog.heartbeat_timeout_seconds must exceed the heartbeat interval")
    if settings.background_nice > 19:
        raise ConfigError("watchdog.background_nice must be in [0, 19]")
    if settings.check_interval <= 0:
        raise ConfigError("watchdog.check_interval_seconds must be positive")
    return settings
