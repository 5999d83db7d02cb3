"""Watches as the config file holds them: load, validate, add, remove, save atomically.

The file keeps the original project's keys: `priority_authors`, `priority_tags`,
`priority_models` (watched repos: alert on new commits) and `saved_queries`.
An entry is a plain string (default mode) or an object with a `mode`:

    "priority_authors": ["TheBloke", {"author": "Qwen", "mode": "digest"}],
    "priority_tags": ["gguf", {"tag": "qwen3", "mode": "instant"}],
    "priority_models": ["Qwen/Qwen3-8B", "datasets/HuggingFaceFW/fineweb"],
    "saved_queries": [{"name": "small-qwen-quants", "base_model": "Qwen/Qwen3-8B",
                       "relation": "quantized", "max_params": "9B", "mode": "instant"}]

A key absent from the file means the built-in defaults (as `core.config` does).
Every process re-reads the file when it changes (mtime), so `watch add` from the
CLI or the API reaches the running daemon without a restart; SIGHUP forces it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from core.alerts.rules import (
    BASE_RELATIONS,
    DIGEST,
    INSTANT,
    MODES,
    Query,
    Watch,
    author_watch,
    format_size,
    parse_size,
    query_watch,
    repo_path,
    repo_watch,
    tag_watch,
)
from core.config import DEFAULT_CONFIG_PATH, DEFAULT_PRIORITY_AUTHORS, DEFAULT_PRIORITY_TAGS, Config, ConfigError
from core.kinds import ALL_KINDS, Kind, parse_kind

log = structlog.get_logger(__name__)

WATCH_KEYS = ("priority_authors", "priority_tags", "priority_models", "saved_queries")
_QUERY_FIELDS = ("author", "authors", "tag", "tags", "pipeline", "base_model", "relation", "min_params",
                 "max_params", "text", "kinds", "kind")


class WatchError(ConfigError):
    """A watch cannot be parsed, added or removed."""


# -- parsing -----------------------------------------------------------------

def _mode(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if value not in MODES:
        raise WatchError(f"{where}: mode must be one of {', '.join(MODES)}, got {value!r}")
    return str(value)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v.strip())
    raise WatchError(f"{where}: expected a string or a list of strings, got {value!r}")


def parse_repo_ref(text: str) -> tuple[Kind, str]:
    """`org/name` is a model; `datasets/org/name`, `spaces/org/name` name the other kinds."""
    text = text.strip().strip("/")
    head, _, rest = text.partition("/")
    if head in ("datasets", "spaces", "models") and rest.count("/") <= 1 and rest:
        return parse_kind(head), rest
    if not text:
        raise WatchError("empty repo id")
    return Kind.MODEL, text


def parse_query(spec: dict[str, Any], where: str = "query") -> Query:
    unknown = set(spec) - {*_QUERY_FIELDS, "name", "mode"}
    if unknown:
        raise WatchError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("pipeline", "base_model", "relation", "text"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise WatchError(f"{where}: {key} must be a string")
    relation = spec.get("relation")
    if relation is not None and relation not in BASE_RELATIONS:
        raise WatchError(f"{where}: relation must be one of {', '.join(BASE_RELATIONS)}")
    kinds_spec = _strings(spec.get("kinds") or spec.get("kind"), where)
    try:
        kinds = tuple(parse_kind(k) for k in kinds_spec) or ALL_KINDS
        min_params = parse_size(spec.get("min_params"))
        max_params = parse_size(spec.get("max_params"))
    except ValueError as exc:
        raise WatchError(f"{where}: {exc}") from exc
    query = Query(
        authors=_strings(spec.get("authors") or spec.get("author"), where),
        tags=_strings(spec.get("tags") or spec.get("tag"), where),
        pipeline=spec.get("pipeline") or None,
        base_model=spec.get("base_model") or None,
        relation=relation,
        min_params=min_params,
        max_params=max_params,
        text=spec.get("text") or None,
        kinds=kinds,
    )
    if query == Query(kinds=query.kinds):
        raise WatchError(f"{where}: a saved query needs at least one criterion")
    return query


def _entry(entry: Any, field_name: str, where: str) -> tuple[str, str | None]:
    if isinstance(entry, str) and entry.strip():
        return entry.strip(), None
    if isinstance(entry, dict) and isinstance(entry.get(field_name) or entry.get("name"), str):
        value = (entry.get(field_name) or entry.get("name")).strip()
        return value, _mode(entry.get("mode"), where)
    raise WatchError(f"{where}: expected a string or {{\"{field_name}\": ..., \"mode\": ...}}, got {entry!r}")


def watches_from_mapping(data: dict[str, Any]) -> list[Watch]:
    """The watches a config file holds (absent keys = defaults). Raises WatchError on bad entries."""
    watches: list[Watch] = []
    authors = data.get("priority_authors", DEFAULT_PRIORITY_AUTHORS)
    tags = data.get("priority_tags", DEFAULT_PRIORITY_TAGS)
    models = data.get("priority_models", [])
    queries = data.get("saved_queries", [])
    for key, value in (("priority_authors", authors), ("priority_tags", tags), ("priority_models", models),
                       ("saved_queries", queries)):
        if not isinstance(value, list):
            raise WatchError(f"{key} must be a list")
    for i, entry in enumerate(authors):
        name, mode = _entry(entry, "author", f"priority_authors[{i}]")
        watches.append(author_watch(name, mode))
    for i, entry in enumerate(tags):
        name, mode = _entry(entry, "tag", f"priority_tags[{i}]")
        watches.append(tag_watch(name, mode))
    for i, entry in enumerate(models):
        name, mode = _entry(entry, "repo", f"priority_models[{i}]")
        kind, repo_id = parse_repo_ref(name)
        watches.append(repo_watch(kind, repo_id, mode))
    for i, spec in enumerate(queries):
        where = f"saved_queries[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
            raise WatchError(f"{where}: a saved query is an object with a \"name\"")
        watches.append(query_watch(spec["name"].strip(), parse_query(spec, where), _mode(spec.get("mode"), where)))
    seen: dict[str, Watch] = {}
    for watch in watches:
        seen.setdefault(watch.name, watch)  # a repeated entry is one watch
    return list(seen.values())


def build_watch(kind_of_watch: str, value: str, mode: str | None = None,
                spec: dict[str, Any] | None = None) -> Watch:
    """One watch from the CLI or the API: `author X`, `tag X`, `repo [datasets/]org/name`, `query NAME` + spec."""
    value = (value or "").strip()
    if not value:
        raise WatchError("a watch needs a value (the author, tag, repo id or query name)")
    mode = _mode(mode, "mode")
    if kind_of_watch == "author":
        return author_watch(value, mode)
    if kind_of_watch == "tag":
        return tag_watch(value, mode)
    if kind_of_watch == "repo":
        kind, repo_id = parse_repo_ref(value)
        if "/" not in repo_id:
            raise WatchError(f"a repo id looks like org/name, got {value!r}")
        return repo_watch(kind, repo_id, mode)
    if kind_of_watch == "query":
        criteria = {k: v for k, v in (spec or {}).items() if v not in (None, "", [], ())}
        return query_watch(value, parse_query(criteria, f"query {value}"), mode)
    raise WatchError(f"unknown watch type {kind_of_watch!r} (expected author, tag, repo or query)")


# -- serialising ---------------------------------------------------------------

def query_to_spec(name: str, query: Query, mode: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    if query.authors:
        spec["author"] = list(query.authors) if len(query.authors) > 1 else query.authors[0]
    if query.tags:
        spec["tag"] = list(query.tags) if len(query.tags) > 1 else query.tags[0]
    for key in ("pipeline", "base_model", "relation", "text"):
        if getattr(query, key):
            spec[key] = getattr(query, key)
    if query.min_params is not None:
        spec["min_params"] = format_size(query.min_params) or query.min_params
    if query.max_params is not None:
        spec["max_params"] = format_size(query.max_params) or query.max_params
    if query.kinds != ALL_KINDS:
        spec["kinds"] = [k.plural for k in query.kinds]
    if mode:
        spec["mode"] = mode
    return spec


def _default_mode(watch: Watch) -> str:
    if watch.type == "tag":
        return tag_watch(watch.value).mode
    if watch.type == "query":
        return query_watch(watch.value, watch.query).mode
    return INSTANT


def watches_to_mapping(watches: Sequence[Watch]) -> dict[str, list[Any]]:
    """The four config keys for `watches`; entries in their default mode stay plain strings."""
    out: dict[str, list[Any]] = {key: [] for key in WATCH_KEYS}
    for watch in watches:
        custom = watch.mode if watch.mode != _default_mode(watch) else None
        if watch.type == "author":
            out["priority_authors"].append({"author": watch.value, "mode": custom} if custom else watch.value)
        elif watch.type == "tag":
            out["priority_tags"].append({"tag": watch.value, "mode": custom} if custom else watch.value)
        elif watch.type == "repo":
            assert watch.repo_kind is not None and watch.repo_id is not None
            ref = repo_path(watch.repo_kind, watch.repo_id)
            out["priority_models"].append({"repo": ref, "mode": custom} if custom else ref)
        else:
            out["saved_queries"].append(query_to_spec(watch.value, watch.query, watch.mode))
    return out


def watch_to_dict(watch: Watch, added_at: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"name": watch.name, "type": watch.type, "mode": watch.mode, "slug": watch.slug,
                            "describe": watch.describe(), "added_at": added_at}
    if watch.type == "repo":
        data["repo"] = {"kind": watch.repo_kind.value if watch.repo_kind else None, "id": watch.repo_id}
    elif watch.type == "query":
        data["query"] = query_to_spec(watch.value, watch.query, None)
    else:
        data["value"] = watch.value
    return data


# -- the file ------------------------------------------------------------------

def config_file(config: Config | None = None) -> Path:
    if config is not None:
        return Path(config.config_path)
    explicit = os.environ.get("PROMETHEUS_CONFIG")
    return Path(explicit) if explicit else DEFAULT_CONFIG_PATH


def read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise WatchError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise WatchError(f"config {path} must hold a JSON object")
    return data


def load_watches(path: Path) -> list[Watch]:
    return watches_from_mapping(read_file(path))


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # The CLI and the API may both edit the file: serialise read-modify-write.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _atomic_write(path: Path, data: dict[str, Any]) -> None:
    # Write beside, fsync, rename: a reader sees the old file or the new one, never half.
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def add_watch(path: Path, watch: Watch, *, replace: bool = False) -> list[Watch]:
    """Add (or with `replace`, update) a watch in the file; returns the new list."""
    with _file_lock(path):
        data = read_file(path)
        watches = watches_from_mapping(data)
        names = [w.name for w in watches]
        if watch.name in names:
            if not replace:
                raise WatchError(f"watch {watch.name} already exists")
            watches[names.index(watch.name)] = watch
        else:
            watches.append(watch)
        data.update(watches_to_mapping(watches))
        _atomic_write(path, data)
    invalidate()
    return watches


def resolve_name(watches: Sequence[Watch], name: str) -> Watch:
    """A full name (`author:TheBloke`), a slug, or a bare value when it is unambiguous."""
    for watch in watches:
        if name in (watch.name, watch.slug):
            return watch
    candidates = [w for w in watches if w.value == name or (w.repo_id and w.repo_id == name)]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise WatchError(f"{name!r} is ambiguous: {', '.join(w.name for w in candidates)}")
    raise WatchError(f"no watch named {name!r}")


def remove_watch(path: Path, name: str) -> Watch:
    with _file_lock(path):
        data = read_file(path)
        watches = watches_from_mapping(data)
        target = resolve_name(watches, name)
        data.update(watches_to_mapping([w for w in watches if w.name != target.name]))
        _atomic_write(path, data)
    invalidate()
    return target


# -- arming: when each watch was first seen ------------------------------------

def register_watches(conn: sqlite3.Connection, watches: Sequence[Watch], now: str) -> dict[str, str]:
    """Arm new watches at `now`, forget removed ones; returns name → added_at. Call inside write_tx.

    Forgetting matters: a watch removed and added again later must not alert on
    what was created while it was gone.
    """
    names = [w.name for w in watches]
    armed = dict(conn.execute("SELECT name, added_at FROM alert_watches").fetchall())
    # This runs for every page a crawl writes: statements only when the set changed.
    new = [(name, now) for name in names if name not in armed]
    if new:
        conn.executemany("INSERT INTO alert_watches (name, added_at) VALUES (?, ?)", new)
        armed.update(new)
    stale = [name for name in armed if name not in set(names)]
    if stale:
        conn.executemany("DELETE FROM alert_watches WHERE name = ?", [(n,) for n in stale])
    return {name: armed[name] for name in names}


# -- the process-wide active set -------------------------------------------------

@dataclass
class _Active:
    path: Path | None = None
    signature: tuple[int, int] | None = None
    watches: tuple[Watch, ...] = ()
    checked: float = 0.0
    pinned: bool = False


_active = _Active()
_lock = threading.Lock()
RECHECK_SECONDS = 1.0


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


def reload_watches(config: Config | None = None) -> list[Watch]:
    """Re-read the watches now (SIGHUP, start-up). Keeps the last good set if the file is broken."""
    with _lock:
        _active.pinned = False
        path = config_file(config) if config is not None or _active.path is None else _active.path
        _active.path = path
        signature = _signature(path)
        try:
            watches = tuple(load_watches(path))
        except WatchError as exc:
            log.error("watches_invalid", path=str(path), error=str(exc))
            _active.signature, _active.checked = signature, time.monotonic()
            return list(_active.watches)
        _active.signature, _active.watches, _active.checked = signature, watches, time.monotonic()
        log.info("watches_loaded", path=str(path), count=len(watches))
        return list(watches)


def invalidate() -> None:
    with _lock:
        _active.checked = 0.0
        _active.signature = (-1, -1)


def active_watches() -> list[Watch]:
    """The current watches, re-read at most once a second when the file changed."""
    if _active.pinned:
        return list(_active.watches)
    if _active.path is None:
        return reload_watches(None)
    now = time.monotonic()
    if now - _active.checked >= RECHECK_SECONDS:
        if _signature(_active.path) != _active.signature:
            return reload_watches(None)
        _active.checked = now
    return list(_active.watches)


def use_watches(watches: Sequence[Watch] | None) -> None:
    """Tests and the benchmark: pin the active set (None = back to the file)."""
    with _lock:
        _active.path, _active.signature, _active.checked = None, None, 0.0
        _active.pinned = watches is not None
        _active.watches = tuple(watches or ())


__all__ = [
    "DIGEST", "INSTANT", "WATCH_KEYS", "WatchError", "active_watches", "add_watch", "build_watch", "config_file",
    "invalidate",
    "load_watches", "parse_query", "parse_repo_ref", "register_watches", "reload_watches", "remove_watch",
    "resolve_name", "use_watches", "watch_to_dict", "watches_from_mapping", "watches_to_mapping",
]
