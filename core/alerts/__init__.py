"""Watch and alert: priority authors, tags, watched repos and saved queries → Telegram, exactly once.

What the rest of the system calls:

- `detection_hook(conn, changes)`: the PageHook every crawl, poll and webhook refresh runs inside
  its page transaction (core.crawler.standard_hooks); it writes `alert_outbox` rows.
- `run_watch_poll(config, client, stop)`: the fast poll (core.alerts.poll), run by the crawler child.
- `run_sender(config, stop)`: drains the outbox to Telegram and webhook sinks (core.alerts.sender).
- `reload_watches(config)`: re-read the watches from the config file now (SIGHUP). Without it every
  process still picks up a changed file within a second.

Both coroutines return promptly once `stop` is set, finishing the message or page in hand.
Heavy imports (python-telegram-bot, aiohttp) stay inside the functions that need them.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from core.alerts.detect import detection_hook
from core.alerts.watches import active_watches, reload_watches

if TYPE_CHECKING:
    from core.config import Config
    from core.hub.client import HubClient

__all__ = ["active_watches", "detection_hook", "reload_watches", "run_sender", "run_watch_poll"]


async def run_watch_poll(config: Config, client: HubClient, stop: asyncio.Event) -> None:
    from core.alerts.poll import run_poll

    await run_poll(config, client, stop)


async def run_sender(config: Config, stop: asyncio.Event) -> None:
    from core.alerts.sender import run_senders
    from core.alerts.settings import settings_from_config

    reload_watches(config)
    await run_senders(config.db_path, settings_from_config(config), stop)
