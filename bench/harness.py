"""What the benchmarks share: a free loopback port and a fake Hub in its own process."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fakehub(*, models: int, datasets: int = 0, spaces: int = 0, papers: int = 0,
                  extra: tuple[str, ...] = (), port: int | None = None) -> tuple[subprocess.Popen[str], str]:
    """`main.py fakehub` on `port` (default: a free one); returns once it listens (it prints one line then)."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "fakehub", "--port", str(port), "--models", str(models),
         "--datasets", str(datasets), "--spaces", str(spaces), "--papers", str(papers), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "http" not in line:
        proc.kill()
        raise SystemExit(f"fake hub did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}"
