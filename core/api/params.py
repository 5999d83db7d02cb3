"""Reading request parameters: typed, bounded, and checked against whitelists.

Nothing a client sends ever becomes SQL text: names (sort keys, filters, kinds) are looked
up in fixed tables and values are bound as parameters. Every reader raises
`core.api.errors.Problem(400, ...)` with a message naming the parameter, so bad input is
always a 4xx and never reaches the database.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from aiohttp import web

from core.api.errors import bad_request
from core.kinds import Kind, parse_kind

LIMIT_MAX = 1000
TEXT_MAX = 500
INT_MAX = 2**62  # counts and sizes; keeps every bound value inside SQLite's 64-bit integers
# 7B, 500M, 1.5b, 7000000000, 7e9 (what core.search.parse_param_count reads, in ASCII digits).
PARAM_COUNT_PATTERN = r"^\s*[0-9]{1,15}(\.[0-9]{1,6})?(\s*[kKmMbBtT]|[eE][+-]?[0-9]{1,2})?\s*$"

Source = Mapping[str, Any]
_KIND_NAMES = frozenset(k.plural for k in Kind)


def _get(source: Source, name: str) -> Any:
    value = source.get(name)
    if value is None or value == "":
        return None
    return value


def text(source: Source, name: str, *, default: str | None = None, max_length: int = TEXT_MAX) -> str | None:
    value = _get(source, name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    if len(value) > max_length:
        raise bad_request(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise bad_request(f"{name} must not contain NUL characters")
    return value


def integer(source: Source, name: str, *, default: int | None = None, minimum: int | None = None,
            maximum: int | None = None) -> int | None:
    value = _get(source, name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise bad_request(f"{name} must be an integer")
    if isinstance(value, str):
        stripped = value.strip()
        # int() would accept "1_000" and 4,000-digit numbers; a plain decimal is all we take.
        if not stripped.lstrip("-").isdigit() or len(stripped) > 19 or not stripped.isascii():
            raise bad_request(f"{name} must be an integer, got {value[:40]!r}")
        value = int(stripped)
    if isinstance(value, float) and value.is_integer() and abs(value) <= INT_MAX:
        value = int(value)  # JSON allows 83.0 for an integer
    if not isinstance(value, int):
        raise bad_request(f"{name} must be an integer")
    if minimum is not None and value < minimum:
        raise bad_request(f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise bad_request(f"{name} must be at most {maximum}")
    return value


def boolean(source: Source, name: str, *, default: bool = False) -> bool:
    value = _get(source, name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no"):
        return False
    raise bad_request(f"{name} must be true or false")


def choice(source: Source, name: str, choices: Collection[str], *, default: str | None = None) -> str | None:
    value = _get(source, name)
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise bad_request(f"{name} must be one of: {', '.join(choices)}")
    return value


def kind(value: str | None, *, name: str = "type") -> Kind:
    """A kind by its plural name, exactly as the OpenAPI document lists it (`models`, not `Model`)."""
    if not isinstance(value, str) or value not in _KIND_NAMES:
        raise bad_request(f"{name} must be one of: models, datasets, spaces, papers")
    return parse_kind(value)


def optional_kind(source: Source, name: str = "type") -> Kind | None:
    """A kind, or None for `all` / absent (search over every kind)."""
    value = _get(source, name)
    if value is None or value == "all":
        return None
    return kind(value, name=name)


def limit(source: Source, *, default: int = 50) -> int:
    return integer(source, "limit", default=default, minimum=1, maximum=LIMIT_MAX) or default


def not_empty(source: Source, names: Collection[str]) -> None:
    """For routes that document no `allowEmptyValue`: `?name=` is a 400, not the same as leaving it out."""
    for name in names:
        if name in source and source[name] == "":
            raise bad_request(f"{name} must not be empty (leave it out instead)")


def only_known(source: Source, allowed: Collection[str]) -> None:
    """Reject parameters we do not know: a typo in a filter name must not silently return everything."""
    unknown = sorted(set(source) - set(allowed))
    if unknown:
        raise bad_request(f"unknown parameter {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}`."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def encode_cursor(state: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def decode_cursor(token: str | None) -> list[Any] | None:
    if token is None:
        return None
    if len(token) > 2000:
        raise bad_request("cursor is not valid")
    try:
        state = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad_request("cursor is not valid (pass back the `next` link unchanged)") from None
    if not isinstance(state, list):
        raise bad_request("cursor is not valid (pass back the `next` link unchanged)")
    return state


def next_link(request: web.Request, **replace: str | int) -> str:
    """The request's own URL with some query parameters replaced (for `Link: <...>; rel="next"`)."""
    query = dict(request.rel_url.query)
    query.update({k: str(v) for k, v in replace.items()})
    return str(request.url.with_query(query))
