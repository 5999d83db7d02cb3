"""Configuration: command-line flag > environment > config file > built-in default.

The file keeps the original project's key names (`priority_authors`, `api.host`,
`database.path`, ...) so its users can bring their `agent_config.json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "configs" / "agent_config.json"
DEFAULT_ENDPOINT = "https://huggingface.co"

DEFAULT_PRIORITY_AUTHORS = [
    "DavidAU", "Nymbo", "TheBloke", "unsloth", "mistralai",
    "meta-llama", "Qwen", "google", "microsoft", "nvidia",
]
DEFAULT_PRIORITY_TAGS = [
    "llm", "gguf", "quantized", "instruct", "chat", "code",
    "vision", "multimodal", "text-generation", "text-to-image",
]


class ConfigError(ValueError):
    """The config file or an override cannot be used."""


@dataclass
class Config:
    data_dir: Path
    config_path: Path
    hub_endpoint: str = DEFAULT_ENDPOINT
    hub_token: str | None = None
    database_path: Path | None = None  # default: data_dir / "prometheus.db"
    crawl_interval_hours: float = 1.0
    full_sync_interval_hours: float = 24.0
    hot_sweep_pages: int = 1
    page_size: int = 1000
    hub_retry_base_seconds: float = 1.0  # first retry delay; doubles per attempt
    hub_max_attempts: int = 8
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_batch_size: int = 64
    embedding_precision: str = "auto"  # auto (bf16 where the CPU has it natively) | bf16 | fp32
    watch_interval_seconds: float = 30.0
    priority_authors: list[str] = field(default_factory=lambda: list(DEFAULT_PRIORITY_AUTHORS))
    priority_tags: list[str] = field(default_factory=lambda: list(DEFAULT_PRIORITY_TAGS))
    priority_models: list[str] = field(default_factory=list)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_key: str | None = None
    api_cors_origins: list[str] = field(default_factory=list)
    telegram_bot_token: str | None = None
    telegram_chat_id: str | None = None
    telegram_api_base: str | None = None
    watchdog_check_interval_seconds: float = 5.0
    raw: dict[str, Any] = field(default_factory=dict)  # the file as read, for sections owned elsewhere

    @property
    def db_path(self) -> Path:
        return self.database_path or self.data_dir / "prometheus.db"


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file not found: {path}")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a JSON object")
    return data


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc


def load_config(
    data_dir: str | None = None,
    config_path: str | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Build the effective config. Arguments are the command-line flags (None = not given)."""
    env = dict(os.environ) if env is None else env
    explicit = config_path or env.get("PROMETHEUS_CONFIG")
    path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
    file = _read_file(path, explicit=bool(explicit))

    database = file.get("database") or {}
    api = file.get("api") or {}
    telegram = file.get("telegram") or {}
    watchdog = file.get("watchdog") or {}

    resolved_data_dir = Path(data_dir or env.get("PROMETHEUS_DATA_DIR") or file.get("data_dir") or "data")
    db_path = database.get("path")
    if data_dir or env.get("PROMETHEUS_DATA_DIR"):
        db_path = None  # an explicit data dir wins over the file's database path
    config = Config(data_dir=resolved_data_dir, config_path=path, raw=file)
    config.database_path = Path(db_path) if db_path else None
    config.hub_endpoint = (env.get("HF_ENDPOINT") or file.get("hub_endpoint") or DEFAULT_ENDPOINT).rstrip("/")
    config.hub_token = env.get("HF_TOKEN") or file.get("hub_token")
    for key in ("crawl_interval_hours", "full_sync_interval_hours", "watch_interval_seconds",
                "hub_retry_base_seconds"):
        if key in file:
            setattr(config, key, _number(file[key], key))
    for key in ("page_size", "hot_sweep_pages", "embedding_batch_size", "hub_max_attempts"):
        if key in file:
            setattr(config, key, int(_number(file[key], key)))
    if "embedding_model" in file:
        config.embedding_model = str(file["embedding_model"])
    if "embedding_precision" in file:
        if file["embedding_precision"] not in ("auto", "bf16", "fp32"):
            raise ConfigError("embedding_precision must be auto, bf16 or fp32")
        config.embedding_precision = file["embedding_precision"]
    # saved_queries are read (and validated) by core.alerts.watches from the same file.
    for key in ("priority_authors", "priority_tags", "priority_models"):
        if key in file:
            if not isinstance(file[key], list):
                raise ConfigError(f"{key} must be a list")
            setattr(config, key, list(file[key]))
    config.api_host = str(api.get("host", config.api_host))
    config.api_port = int(_number(api.get("port", config.api_port), "api.port"))
    config.api_cors_origins = list(api.get("cors_origins", []))
    config.api_key = env.get("PROMETHEUS_API_KEY") or api.get("key")
    config.telegram_bot_token = env.get("TELEGRAM_BOT_TOKEN") or telegram.get("bot_token")
    config.telegram_chat_id = env.get("TELEGRAM_CHAT_ID") or telegram.get("chat_id")
    config.telegram_api_base = env.get("TELEGRAM_API_BASE") or telegram.get("api_base")
    if "check_interval_seconds" in watchdog:
        config.watchdog_check_interval_seconds = _number(
            watchdog["check_interval_seconds"], "watchdog.check_interval_seconds")
    if not 1 <= config.page_size <= 1000:
        raise ConfigError("page_size must be between 1 and 1000")
    return config


def config_from_args(args: Any) -> Config:
    """The config for a parsed command line (global `--data-dir` / `--config` flags)."""
    return load_config(getattr(args, "data_dir", None), getattr(args, "config", None))
