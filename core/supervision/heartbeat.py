"""Heartbeats: each child rewrites a small file; the supervisor reads it and judges.

A thread writes the beat, so a child that is frozen as a whole (SIGSTOP, a
deadlock holding the GIL, swapped out) stops beating within one interval. The
event loop cannot be judged by the same clock without false alarms (a model
load may block it for a few seconds), so the beat also carries the loop's lag
(time since the loop last ran a tick), judged against a much longer limit.

Times are CLOCK_MONOTONIC, which is system-wide on Linux: the supervisor can
compare a child's stamp with its own clock, and a wall-clock jump (NTP on a VM
that was suspended) never makes a child look dead.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.supervision.settings import SupervisorSettings

STARTING = "starting"  # importing, loading a model: judged against the startup timeout
RUNNING = "running"
IDLE = "idle"  # the test child: alive, nothing to probe


@dataclass(frozen=True)
class Beat:
    pid: int
    mono: float
    phase: str
    lag: float = 0.0


def heartbeat_path(run_dir: Path, child: str) -> Path:
    return run_dir / f"{child}.heartbeat"


def write_beat(path: Path, beat: Beat) -> None:
    # Write then rename: the reader sees the old beat or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.{beat.pid}")
    tmp.write_text(json.dumps(beat.__dict__), encoding="utf-8")
    os.replace(tmp, path)


def read_beat(path: Path) -> Beat | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Beat(int(data["pid"]), float(data["mono"]), str(data["phase"]), float(data.get("lag", 0.0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def judge(beat: Beat | None, *, pid: int, now: float, spawned_at: float, settings: SupervisorSettings) -> str | None:
    """Why a child must be restarted, or None while it is healthy (or still within its start-up time)."""
    started_for = now - spawned_at
    if beat is None or beat.pid != pid:
        # No beat from this process yet (the file may be its predecessor's).
        return "startup_timeout" if started_for > settings.startup_timeout else None
    if now - beat.mono > settings.heartbeat_timeout:
        return "heartbeat_stale"
    if beat.phase == STARTING:
        return "startup_timeout" if started_for > settings.startup_timeout else None
    if beat.lag > settings.loop_stall:
        return "loop_stalled"
    return None


class Heartbeat:
    """The child's side: a daemon thread beating every interval, fed by an event-loop ticker."""

    def __init__(self, path: Path, interval: float) -> None:
        self.path = path
        self.interval = interval
        self.phase = STARTING
        self._loop_tick: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def beat(self) -> None:
        now = time.monotonic()
        lag = 0.0 if self._loop_tick is None else max(0.0, now - self._loop_tick)
        try:
            write_beat(self.path, Beat(os.getpid(), now, self.phase, lag))
        except OSError:
            pass  # a full disk must not kill the beat thread; the supervisor will see a stale beat

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    async def tick_loop(self) -> None:
        """Runs on the child's event loop: proves the loop still turns."""
        while True:
            self._loop_tick = time.monotonic()
            await asyncio.sleep(self.interval / 2)
