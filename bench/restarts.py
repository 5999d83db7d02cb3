"""Restart latency and the backoff curve of the daemon's supervisor, measured on real processes.

    .venv/bin/python bench/restarts.py                 # 10 kill -9 cycles + a crash loop, default policy
    .venv/bin/python bench/restarts.py --cycles 30 --scale 0.1

1. Latency: an idle child is `kill -9`ed; we time (a) death → the supervisor's
   new spawn (exit detection + backoff) and (b) death → the new child's first
   heartbeat (interpreter start-up included). Cycles are spaced past
   `stable_seconds`, so every restart is a first restart (backoff ≈ initial).
2. Curve: a child that exits at once on every start; the delays the supervisor
   chose and the gaps it actually left, until it gives up. `--scale` shrinks
   initial/cap (0.1: 0.1 s → 6 s) so the whole curve fits in a minute.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.supervision.backoff import RestartPolicy, backoff_curve
from tests.supervisor_helpers import (
    idle_child,
    query,
    running_child,
    start_driver,
    stop_process,
    wait_for,
    write_config,
)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def latency(work: Path, cycles: int, initial: float) -> None:
    data = work / "latency"
    data.mkdir()
    stable = 2.0
    config = write_config(work / "latency.json", {"backoff_initial_seconds": initial, "backoff_cap_seconds": 60,
                                                  "stable_seconds": stable, "max_restarts": cycles + 5})
    proc = start_driver(data, config, [("idle", idle_child(data, config))], work / "latency.log")
    spawn, beat = [], []
    try:
        pid = wait_for(lambda: running_child(data, "idle"), 60, "the first child")
        for _ in range(cycles):
            time.sleep(stable + 0.2)
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            new = wait_for(lambda old=pid: (p := running_child(data, "idle")) != old and p, 60, "a new child", 0.005)
            beat.append(time.time() - killed)
            state = query(data, "SELECT started_at FROM supervisor_children WHERE child = 'idle'")[0]
            spawn.append(_ts(state["started_at"]) - killed)
            pid = new
    finally:
        stop_process(proc)
    print(f"restart latency over {cycles} kill -9 cycles (backoff initial {initial:g}s ± jitter):")
    for name, values in (("death → new process spawned", spawn), ("death → new child beating", beat)):
        values.sort()
        print(f"  {name:<30} median {statistics.median(values):.3f}s  p90 {values[int(0.9 * (len(values) - 1))]:.3f}s"
              f"  max {values[-1]:.3f}s")


def curve(work: Path, scale: float, max_restarts: int) -> None:
    data = work / "curve"
    data.mkdir()
    policy = RestartPolicy()
    config = write_config(work / "curve.json", {
        "backoff_initial_seconds": policy.initial * scale, "backoff_cap_seconds": policy.cap * scale,
        "max_restarts": max_restarts, "restart_window_seconds": 3600, "stable_seconds": 300})
    crash = [sys.executable, "-c", "import sys; sys.exit(3)"]
    started = time.monotonic()
    proc = start_driver(data, config, [("crash", crash)], work / "curve.log")
    try:
        code = proc.wait(600)
    finally:
        stop_process(proc)
    rows = query(data, "SELECT at, backoff, uptime FROM restarts ORDER BY id")
    print(f"\nbackoff curve (scale {scale:g}: initial {policy.initial * scale:g}s, cap {policy.cap * scale:g}s, "
          f"give-up past {max_restarts} restarts), supervisor exit status {code} "
          f"after {time.monotonic() - started:.1f}s:")
    print("  n  policy   chosen   actual gap (death → next death)")
    nominal = [d * scale for d in backoff_curve(policy, len(rows))]
    for n, row in enumerate(rows):
        gap = f"{_ts(rows[n + 1]['at']) - _ts(row['at']):.3f}s" if n + 1 < len(rows) else "-"
        chosen = "give up" if row["backoff"] is None else f"{row['backoff']:.3f}s"
        print(f"  {n:>2} {nominal[n]:>6.3f}s  {chosen:>8}  {gap}")
    print("default policy, unscaled: " + ", ".join(f"{d:g}" for d in backoff_curve(policy, 9)) + " s, then 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--initial", type=float, default=1.0, help="backoff initial seconds for the latency run")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--max-restarts", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prometheus-bench-") as tmp:
        latency(Path(tmp), args.cycles, args.initial)
        curve(Path(tmp), args.scale, args.max_restarts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
