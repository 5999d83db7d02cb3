"""SQLite storage: connection set-up, migrations, and the queries each part needs."""

from core.store.db import connect, read_tx, write_tx

__all__ = ["connect", "read_tx", "write_tx"]
