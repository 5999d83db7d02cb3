"""Listing cursors in the real Hub's shape: base64 of a Mongo keyset condition on (sort field, `_id`).

Descending: `{"$or":[{"likes":294,"_id":{"$gt":"<id>"}},{"likes":{"$lt":294}}]}`; ascending mirrors
`$lt` to `$gt`. Like the real one, a descending `downloads` cursor has a third branch `{"downloads":null}`.
The fake only ever decodes its own cursors, but a client sees exactly the real format.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson


class CursorError(ValueError):
    """A cursor that is not one of ours, or not for this sort and direction."""


def encode(field: str, desc: bool, value: Any, tie: str, *, tie_key: str = "_id") -> str:
    branches: list[dict[str, Any]] = [
        {field: value, tie_key: {"$gt": tie}},
        {field: {"$lt" if desc else "$gt": value}},
    ]
    if desc and field == "downloads":
        branches.append({field: None})
    return base64.b64encode(orjson.dumps({"$or": branches})).decode("ascii")


def decode(text: str, field: str, desc: bool, *, tie_key: str = "_id") -> tuple[Any, str]:
    """(sort value, tie-breaker) of the last item served; CursorError if the cursor does not fit."""
    try:
        data = orjson.loads(base64.b64decode(text.strip(), validate=True))
        branches = data["$or"]
        first, second = branches[0], branches[1]
        value = first[field]
        tie = first[tie_key]["$gt"]
        bound = second[field]
    except (binascii.Error, ValueError, orjson.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise CursorError(f"invalid cursor: {exc}") from None
    if not isinstance(tie, str) or not isinstance(bound, dict) or bound != {("$lt" if desc else "$gt"): value}:
        raise CursorError("cursor does not match this sort and direction")
    return value, tie
