"""Turning off SQLite's memory statistics, which Python's sqlite3 module cannot configure.

Unless told otherwise before it starts, SQLite counts every allocation it makes under one
global mutex (SQLITE_CONFIG_MEMSTATUS; its docs recommend building without it), and a bulk
load allocates for every value it binds: with the count off, the crawler's writer spent
~5% less CPU writing 100 pages of the fake Hub's models in bulk (13.6 against 14.3 µs an item).

Python starts SQLite when it loads `_sqlite3` and has no call for `sqlite3_config`, so this
reaches the library Python loaded through ctypes, shuts it down, configures and restarts it.
SQLite allows that only while it holds no memory (no connection open): when it holds some, or
the library cannot be found (SQLite linked into `_sqlite3` itself), nothing is changed.
"""

from __future__ import annotations

import _sqlite3  # noqa: F401  # loads the SQLite library that this module configures
import ctypes
import sys
import threading
from pathlib import Path

_SQLITE_CONFIG_MEMSTATUS = 9
_SQLITE_STATUS_MEMORY_USED = 0
_lock = threading.Lock()
_outcome: bool | None = None  # None: not tried yet in this process


def loaded_library() -> str | None:
    """The SQLite shared library this process has loaded for `sqlite3`, from /proc/self/maps."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        path = line.split()[-1]
        if "/libsqlite3.so" in path:
            return path
    return None


def disable_memory_statistics() -> bool:
    """Turn the count off when that is safe; tried once per process. True if it is off."""
    global _outcome
    with _lock:
        if _outcome is None:
            _outcome = _turn_off()
        return _outcome


def _turn_off() -> bool:
    if not sys.platform.startswith("linux"):  # ctypes passes sqlite3_config's variadic int as Linux ABIs take it
        return False
    path = loaded_library()
    if path is None:
        return False
    try:
        library = ctypes.CDLL(path)
        memory_status = library.sqlite3_status64  # SQLite 3.10 on
    except (OSError, AttributeError):
        return False
    if library.sqlite3_compileoption_used(b"DEFAULT_MEMSTATUS=0"):
        return True
    used, highest = ctypes.c_int64(), ctypes.c_int64()
    if memory_status(_SQLITE_STATUS_MEMORY_USED, ctypes.byref(used), ctypes.byref(highest), 0) != 0:
        return False
    if used.value != 0:
        return False  # something holds SQLite memory, a connection at least: shutting down is not allowed
    library.sqlite3_shutdown()
    configured = library.sqlite3_config(_SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == 0
    if library.sqlite3_initialize() != 0:
        raise RuntimeError(f"SQLite ({path}) did not start again after its memory statistics were turned off")
    return configured
