"""Telegram delivery through python-telegram-bot, with every failure sorted into what to do next.

The sink only sends and classifies; waiting, retrying and marking rows sent is
the sender's job (core.alerts.sender), so an outage of any length just leaves
rows pending.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import structlog
from telegram import Bot, LinkPreviewOptions
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from core.alerts.message import HTML

log = structlog.get_logger(__name__)

# PTB 22 warns that RetryAfter.retry_after will become a timedelta; `_seconds` accepts both.
warnings.filterwarnings("ignore", category=PTBDeprecationWarning, message=".*retry_after.*")

DEFAULT_API_BASE = "https://api.telegram.org"


class DeliveryError(Exception):
    """A send failed. `retry_after` set: wait exactly that (429). `permanent`: retrying cannot help."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 slow: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.slow = slow  # a configuration problem (bad token, bot kicked): retry, but rarely


def bot_base_url(api_base: str | None) -> str:
    """TELEGRAM_API_BASE may be the server root (`http://host:8081`) or already end in `/bot`."""
    base = (api_base or DEFAULT_API_BASE).rstrip("/")
    return base if base.endswith("/bot") else base + "/bot"


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TelegramSink:
    name = "telegram"

    def __init__(self, token: str, chat_id: str, *, api_base: str | None = None, parse_mode: str = HTML,
                 timeout: float = 10.0) -> None:
        self.chat_id: str | int = chat_id
        self.parse_mode = parse_mode
        # Short timeouts: a hung Bot API must not stall the queue; the sender retries.
        self._requests = [
            HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout)
            for _ in range(2)
        ]
        self.bot = Bot(token, base_url=bot_base_url(api_base), request=self._requests[0],
                       get_updates_request=self._requests[1])

    async def send(self, text: str, *, parse_mode: str | bool | None = True) -> int:
        """Send one message; returns its message_id. Raises DeliveryError."""
        mode = self.parse_mode if parse_mode is True else (parse_mode or None)
        try:
            message = await self.bot.send_message(
                chat_id=self.chat_id, text=text, parse_mode=mode,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except RetryAfter as exc:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PTB's int→timedelta migration warning
                wait = _seconds(exc.retry_after)
            raise DeliveryError(f"rate limited: retry after {wait}s", retry_after=wait) from exc
        except ChatMigrated as exc:
            # The group became a supergroup: follow it and retry at once.
            log.warning("telegram_chat_migrated", old=self.chat_id, new=exc.new_chat_id)
            self.chat_id = exc.new_chat_id
            raise DeliveryError("chat migrated", retry_after=0.0) from exc
        except TimedOut as exc:
            # The message may or may not have arrived; resending is the at-least-once choice.
            raise DeliveryError(f"timed out: {exc}") from exc
        except BadRequest as exc:
            raise DeliveryError(f"bad request: {exc}", permanent=True) from exc
        except (Forbidden, InvalidToken) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", slow=True) from exc
        except NetworkError as exc:  # connection errors and 5xx
            raise DeliveryError(f"network: {exc}") from exc
        except TelegramError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        return message.message_id

    async def close(self) -> None:
        try:
            # Bot.shutdown() only closes what initialize() opened, and we never call
            # initialize (its getMe would fail during an outage): close the clients directly.
            for request in self._requests:
                await request.shutdown()
        except Exception as exc:  # closing must never mask the caller's state
            log.debug("telegram_close_failed", error=str(exc))
