"""The sender: drains the outbox to Telegram (and webhook sinks), one message at a time.

Delivery is at-least-once with a one-message window: a message is marked sent
in the transaction right after the Bot API accepted it, so a crash (kill -9)
between the two repeats that one message at most and loses nothing. Failures
never drop a row: 429 waits exactly `retry_after`, 5xx / timeouts / refused
connections back off exponentially (capped) for as long as the outage lasts.
Only a message Telegram itself rejects as malformed, even as plain text, is
marked `failed`.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from core.alerts.digest import daily_digest, hourly_digest
from core.alerts.message import PLAIN, Alert, Batch, Line, plan_batches, render_limited
from core.alerts.outbox import (
    alerts_after,
    get_state,
    mark,
    mark_failed,
    max_id,
    pending,
    recent_delivered,
    record_failure,
    set_state,
)
from core.alerts.settings import AlertSettings, WebhookTarget
from core.alerts.sinks import WebhookSink, webhook_payload
from core.alerts.telegram import DeliveryError, TelegramSink
from core.alerts.watches import active_watches
from core.store import connect
from core.store.db import format_ts, parse_ts

log = structlog.get_logger(__name__)

SLOW_RETRY_SECONDS = 300.0  # bad token / bot removed: someone must fix the config; don't hammer


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter in [delay/2, delay]."""
    delay = min(cap, base * (2 ** min(attempt, 20)))
    return delay * (0.5 + 0.5 * (rng or random).random())


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True when `stop` was set (return promptly on shutdown)."""
    if stop.is_set():
        return True
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


@dataclass
class Outgoing:
    lines: list[Line]
    ids: list[int] = field(default_factory=list)
    status: str = "sent"  # what the rows become: sent | grouped | digested
    state: dict[str, str] = field(default_factory=dict)
    label: str = "alert"


def _describe() -> dict[str, str]:
    return {w.name: w.describe() for w in active_watches()}


class TelegramSender:
    def __init__(self, db_path: Path, settings: AlertSettings, *, sink: TelegramSink | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.db_path = db_path
        self.settings = settings
        self.sink = sink or TelegramSink(
            settings.telegram_token or "", settings.telegram_chat_id or "", api_base=settings.telegram_api_base,
            parse_mode=settings.parse_mode, timeout=settings.send_timeout_seconds)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._conn: sqlite3.Connection | None = None
        self._tokens = float(settings.burst)
        self._refilled = time.monotonic()
        self.sent = 0

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.db_path)
        return self._conn

    def next_message(self) -> Outgoing | None:
        """What to send now, if anything: daily summary, due digest, then instant alerts oldest first."""
        now = self.clock()
        describe = _describe()
        daily = daily_digest(self.conn, now, self.settings.daily_digest_hour_utc, describe)
        if daily is not None:
            return Outgoing(daily.lines, daily.ids, "digested", daily.state, "daily")
        digest = hourly_digest(self.conn, now, self.settings.digest_interval_seconds, describe)
        if digest is not None:
            return Outgoing(digest.lines, digest.ids, "digested", digest.state, "digest")
        alerts = pending(self.conn, "instant")
        if not alerts:
            return None
        batch = self._plan(alerts, now)
        if batch is None:
            return None
        return Outgoing(batch.lines(), batch.ids, "grouped" if batch.grouped else "sent",
                        label="group" if batch.grouped else "alert")

    def _plan(self, alerts: list[Alert], now: datetime) -> Batch | None:
        policy = self.settings.group
        keys = sorted({a.group_key for a in alerts if a.group_key})
        since = format_ts(now - timedelta(seconds=policy.window_seconds))
        recent = recent_delivered(self.conn, keys, since)
        ages = {a.id: (now - parse_ts(a.created_at)).total_seconds() for a in alerts}
        batches = plan_batches(alerts, recent, ages, policy)
        return batches[0] if batches else None

    async def _pace(self) -> None:
        """Token bucket: short bursts of `burst`, then one message per `min_interval_seconds`.

        Telegram asks for about one message a second per chat but tolerates short bursts;
        a 429 beyond that is honoured in `deliver`.
        """
        interval = self.settings.min_interval_seconds
        if interval <= 0:
            return
        burst = max(1.0, float(self.settings.burst))
        now = time.monotonic()
        self._tokens = min(burst, self._tokens + (now - self._refilled) / interval)
        self._refilled = now
        if self._tokens < 1:
            await asyncio.sleep((1 - self._tokens) * interval)
            self._tokens, self._refilled = 1.0, time.monotonic()
        self._tokens -= 1

    async def deliver(self, out: Outgoing, stop: asyncio.Event) -> bool:
        """Send until accepted; False when stopped first (the rows stay pending)."""
        attempt = 0
        plain = False
        while True:
            await self._pace()
            text = render_limited(out.lines, PLAIN) if plain else render_limited(out.lines, self.sink.parse_mode)
            try:
                message_id = await self.sink.send(text, parse_mode=None if plain else True)
            except DeliveryError as exc:
                if exc.permanent:
                    if not plain:
                        # Never lose an alert to a formatting bug: fall back to plain text once.
                        log.error("telegram_rejected_markup", error=str(exc), text=text[:300])
                        plain = True
                        continue
                    log.error("telegram_rejected", error=str(exc), ids=out.ids)
                    await asyncio.to_thread(self._failed, out, str(exc))
                    return True
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:
                    delay = backoff(attempt, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds)
                    if exc.slow:
                        delay = max(delay, SLOW_RETRY_SECONDS)
                attempt += 1
                log.warning("telegram_retry", error=str(exc), attempt=attempt, delay=round(delay, 2),
                            label=out.label, ids=out.ids[:10])
                if out.ids and (attempt <= 3 or attempt % 10 == 0):
                    await asyncio.to_thread(record_failure, self.conn, out.ids, str(exc))
                if await wait_or_stop(stop, delay):
                    return False
                continue
            # The window for a repeat is from here to the commit below: one message at most.
            await asyncio.to_thread(self._sent, out, message_id)
            self.sent += 1
            log.info("telegram_sent", label=out.label, ids=out.ids[:10], count=len(out.ids), message_id=message_id)
            return True

    def _sent(self, out: Outgoing, message_id: int) -> None:
        now = format_ts(self.clock())
        if out.ids:
            mark(self.conn, out.ids, out.status, now, message_id, state=out.state)
        elif out.state:
            for key, value in out.state.items():
                set_state(self.conn, key, value)

    def _failed(self, out: Outgoing, error: str) -> None:
        now = format_ts(self.clock())
        if out.ids:
            mark_failed(self.conn, out.ids, error, now)
        for key, value in out.state.items():
            set_state(self.conn, key, value)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("telegram_sender_started", chat=str(self.settings.telegram_chat_id))
        try:
            while not stop.is_set():
                try:
                    out = await asyncio.to_thread(self.next_message)
                except sqlite3.OperationalError as exc:  # e.g. a long lock: try again shortly
                    log.warning("outbox_read_failed", error=str(exc))
                    out = None
                if out is None:
                    await wait_or_stop(stop, self.settings.idle_poll_seconds)
                    continue
                if not await self.deliver(out, stop):
                    break
        finally:
            await self.sink.close()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            log.info("telegram_sender_stopped", sent=self.sent)


class WebhookSender:
    """Posts each alert to one webhook, in outbox order, keeping a cursor in alert_state."""

    def __init__(self, db_path: Path, target: WebhookTarget, settings: AlertSettings) -> None:
        self.db_path = db_path
        self.target = target
        self.settings = settings
        self.sink = WebhookSink(target, timeout=settings.send_timeout_seconds)
        self.cursor_key = f"sink:{target.key}:last_id"
        self.conn: sqlite3.Connection | None = None
        self.sent = 0

    def _cursor(self) -> int:
        assert self.conn is not None
        value = get_state(self.conn, self.cursor_key)
        if value is None:
            start = max_id(self.conn)  # a new sink starts now; it does not replay history
            set_state(self.conn, self.cursor_key, str(start))
            return start
        return int(value)

    async def run(self, stop: asyncio.Event) -> None:
        self.conn = connect(self.db_path)
        try:
            cursor = await asyncio.to_thread(self._cursor)
            while not stop.is_set():
                rows = await asyncio.to_thread(alerts_after, self.conn, cursor, self.target.modes)
                if not rows:
                    await wait_or_stop(stop, self.settings.idle_poll_seconds)
                    continue
                groups: dict[tuple, list[Alert]] = {}
                for alert in rows:
                    groups.setdefault(alert.identity, []).append(alert)
                ordered = sorted(groups.values(), key=lambda g: g[0].id)
                for i, group in enumerate(ordered):
                    if not await self._deliver(group, stop):
                        return
                    cursor = ordered[i + 1][0].id - 1 if i + 1 < len(ordered) else rows[-1].id
                    await asyncio.to_thread(set_state, self.conn, self.cursor_key, str(cursor))
        finally:
            await self.sink.close()
            self.conn.close()

    async def _deliver(self, group: list[Alert], stop: asyncio.Event) -> bool:
        payload = webhook_payload(self.target, group)
        attempt = 0
        while True:
            try:
                await self.sink.post(payload)
            except DeliveryError as exc:
                if exc.permanent:
                    log.error("webhook_rejected", sink=self.sink.name, error=str(exc), item=group[0].item_id)
                    return True
                delay = exc.retry_after if exc.retry_after is not None else backoff(
                    attempt, self.settings.backoff_base_seconds, self.settings.backoff_cap_seconds)
                if exc.slow:
                    delay = max(delay, SLOW_RETRY_SECONDS)
                attempt += 1
                log.warning("webhook_retry", sink=self.sink.name, error=str(exc), delay=round(delay, 2))
                if await wait_or_stop(stop, delay):
                    return False
                continue
            self.sent += 1
            return True


async def run_senders(db_path: Path, settings: AlertSettings, stop: asyncio.Event) -> None:
    tasks = []
    if settings.telegram_enabled:
        tasks.append(TelegramSender(db_path, settings).run(stop))
    else:
        log.warning("telegram_disabled", reason="TELEGRAM_BOT_TOKEN or TELEGRAM_CHAT_ID not set; alerts stay queued")
    tasks += [WebhookSender(db_path, target, settings).run(stop) for target in settings.webhooks]
    if not tasks:
        await stop.wait()
        return
    await asyncio.gather(*tasks)
