"""Alert settings: the `telegram` and `alerts` sections of the config file, plus the environment.

    "telegram": {"bot_token": "...", "chat_id": "...", "api_base": null, "parse_mode": "HTML",
                 "min_interval_seconds": 1.0, "burst": 5},
    "alerts": {"digest_interval_minutes": 60, "daily_digest_hour_utc": 8,
               "group_threshold": 3, "group_window_seconds": 600, "group_hold_seconds": 60,
               "webhooks": [{"url": "https://discord.com/api/webhooks/...", "format": "discord"}],
               "webhook_secret": "...", "poll_page_size": 100}

TELEGRAM_BOT_TOKEN / TELEGRAM_CHAT_ID / TELEGRAM_API_BASE and HF_WEBHOOK_SECRET
override the file (core.config already resolves the telegram ones).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from core.alerts.message import HTML, PARSE_MODES, GroupPolicy
from core.config import Config, ConfigError

WEBHOOK_FORMATS = ("generic", "discord", "slack")


@dataclass(frozen=True)
class WebhookTarget:
    url: str
    format: str = "generic"  # generic (Discord- and Slack-compatible) | discord | slack
    name: str = ""
    modes: tuple[str, ...] = ("instant",)

    @property
    def key(self) -> str:
        return self.name or self.url


@dataclass
class AlertSettings:
    telegram_token: str | None = None
    telegram_chat_id: str | None = None
    telegram_api_base: str | None = None
    parse_mode: str = HTML
    min_interval_seconds: float = 1.0  # Telegram asks for at most ~1 message/s per chat...
    burst: int = 5  # ...and tolerates short bursts
    send_timeout_seconds: float = 10.0
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 60.0
    idle_poll_seconds: float = 0.2
    digest_interval_seconds: float = 3600.0
    daily_digest_hour_utc: int | None = 8
    group: GroupPolicy = field(default_factory=GroupPolicy)
    webhooks: list[WebhookTarget] = field(default_factory=list)
    webhook_secret: str | None = None
    watch_interval_seconds: float = 30.0
    poll_page_size: int = 100
    poll_max_pages: int = 5
    updates_every: int = 2  # lastModified poll every Nth interval (per kind)
    papers_every: int = 10  # daily papers every Nth interval

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_token and self.telegram_chat_id)


def _num(section: dict[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"alerts.{key} must be a number, got {value!r}") from exc


def settings_from_config(config: Config, env: dict[str, str] | None = None) -> AlertSettings:
    env = dict(os.environ) if env is None else env
    raw = config.raw or {}
    telegram = raw.get("telegram") or {}
    alerts = raw.get("alerts") or {}
    if not isinstance(alerts, dict) or not isinstance(telegram, dict):
        raise ConfigError("`alerts` and `telegram` must be objects")
    parse_mode = telegram.get("parse_mode", HTML)
    if parse_mode not in PARSE_MODES:
        raise ConfigError(f"telegram.parse_mode must be one of {', '.join(PARSE_MODES)}")
    webhooks = []
    for i, spec in enumerate(alerts.get("webhooks") or []):
        if isinstance(spec, str):
            spec = {"url": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise ConfigError(f"alerts.webhooks[{i}] needs a url")
        fmt = spec.get("format", "generic")
        if fmt not in WEBHOOK_FORMATS:
            raise ConfigError(f"alerts.webhooks[{i}].format must be one of {', '.join(WEBHOOK_FORMATS)}")
        modes = tuple(spec.get("modes") or ("instant",))
        webhooks.append(WebhookTarget(spec["url"], fmt, str(spec.get("name") or ""), modes))
    daily = alerts.get("daily_digest_hour_utc", 8)
    return AlertSettings(
        telegram_token=config.telegram_bot_token,
        telegram_chat_id=config.telegram_chat_id,
        telegram_api_base=config.telegram_api_base,
        parse_mode=parse_mode,
        min_interval_seconds=_num(telegram, "min_interval_seconds", 1.0),
        burst=int(_num(telegram, "burst", 5)),
        send_timeout_seconds=_num(telegram, "timeout_seconds", 10.0),
        backoff_cap_seconds=_num(alerts, "backoff_cap_seconds", 60.0),
        digest_interval_seconds=_num(alerts, "digest_interval_minutes", 60.0) * 60,
        daily_digest_hour_utc=None if daily is None else int(daily),
        group=GroupPolicy(
            threshold=int(_num(alerts, "group_threshold", 3)),
            window_seconds=_num(alerts, "group_window_seconds", 600.0),
            hold_seconds=_num(alerts, "group_hold_seconds", 60.0),
        ),
        webhooks=webhooks,
        webhook_secret=env.get("HF_WEBHOOK_SECRET") or env.get("PROMETHEUS_WEBHOOK_SECRET")
        or alerts.get("webhook_secret"),
        watch_interval_seconds=config.watch_interval_seconds,
        poll_page_size=int(_num(alerts, "poll_page_size", 100)),
        poll_max_pages=int(_num(alerts, "poll_max_pages", 5)),
        updates_every=max(1, int(_num(alerts, "updates_every", 2))),
        papers_every=max(1, int(_num(alerts, "papers_every", 10))),
    )
