"""Query parameters of the listing endpoints -> a ListQuery, with the Hub's 400s for what it refuses."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from core.hub.fake import cursor as cursors
from core.hub.fake.repos import Filter, ListQuery
from core.hub.fake.wire import (
    ALL_FIELDS,
    DATE_SORTS,
    DEFAULT_FIELDS,
    EXPAND_VALUES,
    FULL_FIELDS,
    SORT_FIELDS,
    oid_int,
    parse_iso,
)

MAX_LIMIT = 1000
DEFAULT_SORT = "trendingScore"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


class BadRequest(ValueError):
    """Answered 400 with `{"error": message}`."""


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "")


def parse_int(name: str, value: str | None, default: int, *, low: int, high: int | None = None) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid {name}: expected an integer, got {value!r}") from None
    if number < low:
        raise BadRequest(f"Too small: {name} must be >= {low}")
    if high is not None and number > high:
        raise BadRequest(f"Too big: {name} must be <= {high}")
    return number


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise BadRequest(f"Invalid num_parameters value {text!r}")
    return int(float(match.group(1)) * _SCALE[match.group(2).upper()])


def parse_num_parameters(text: str) -> tuple[int | None, int | None]:
    """`min:6B,max:128B` (either bound optional) -> (low, high) parameter counts."""
    low = high = None
    for part in text.split(","):
        key, _, value = part.partition(":")
        key = key.strip().lower()
        if key == "min":
            low = parse_size(value)
        elif key == "max":
            high = parse_size(value)
        else:
            raise BadRequest(f"Invalid num_parameters {text!r}: expected min:X,max:Y")
    return low, high


def expand_fields(kind: str, values: Sequence[str]) -> tuple[str, ...]:
    allowed = EXPAND_VALUES[kind]
    wanted: set[str] = set()
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in allowed:
                raise BadRequest(f'"expand" must be one of: {", ".join(sorted(allowed))} (got "{name}")')
            wanted.add(name)
    return ("_id", "id", *(f for f in ALL_FIELDS[kind] if f in wanted and f not in ("_id", "id")))


def list_query(kind: str, query: Mapping[str, str], getall: dict[str, list[str]]) -> ListQuery:
    """Build the page request of `GET /api/{kind}`. `getall` holds the repeatable parameters."""
    sort = query.get("sort") or DEFAULT_SORT
    if sort not in SORT_FIELDS[kind]:
        raise BadRequest(f"Invalid sort parameter {sort!r} for {kind}: expected one of "
                         f"{', '.join(SORT_FIELDS[kind])}")
    direction = query.get("direction", "-1")
    if direction not in ("-1", "1"):
        raise BadRequest("Invalid direction: expected -1 or 1")
    desc = direction == "-1"
    limit = min(parse_int("limit", query.get("limit"), MAX_LIMIT, low=1), MAX_LIMIT)

    expand = getall.get("expand", []) + getall.get("expand[]", [])
    full, card, config = truthy(query.get("full")), truthy(query.get("cardData")), truthy(query.get("config"))
    if expand and (full or card or config):
        raise BadRequest('"expand" cannot be combined with "full", "cardData" or "config"')
    if expand:
        fields = expand_fields(kind, expand)
    else:
        fields = FULL_FIELDS[kind] if full else DEFAULT_FIELDS[kind]
        extra = [f for f, on in (("cardData", card), ("config", config)) if on and f in ALL_FIELDS[kind]]
        fields = fields + tuple(f for f in extra if f not in fields)

    num_parameters = None
    if kind == "models" and query.get("num_parameters"):
        num_parameters = parse_num_parameters(query["num_parameters"])
    gated = None
    if query.get("gated") is not None and kind != "spaces":
        gated = truthy(query["gated"])
    flt = Filter(
        search=query.get("search") or None,
        author=query.get("author") or None,
        tags=tuple(t for value in getall.get("filter", []) for t in value.split(",") if t),
        pipeline_tag=(query.get("pipeline_tag") or None) if kind == "models" else None,
        num_parameters=num_parameters,
        gated=gated,
    )

    position = None
    if query.get("cursor"):
        try:
            value, tie = cursors.decode(query["cursor"], sort, desc)
            if sort in DATE_SORTS:
                if not isinstance(value, str):
                    raise ValueError("a date cursor holds an ISO timestamp")
                key = parse_iso(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError("a counter cursor holds a number")
                key = int(value)
            position = (key, oid_int(tie))
        except ValueError as exc:
            raise BadRequest(f"Invalid cursor: {exc}") from None
    return ListQuery(sort=sort, desc=desc, limit=limit, fields=fields, filter=flt, cursor=position)
