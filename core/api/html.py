"""Server-rendered HTML: `string.Template` files under `core/api/templates`, escaped by default.

`render(name, **values)` escapes every value unless it is `Safe` (markup this module or a
trusted producer built). Build fragments with `tag(...)`/`link(...)`, which escape their
text and attributes, and join them with `join(...)`; a plain `str` is never inserted raw.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import cache
from importlib import resources
from string import Template
from typing import Any


class Safe(str):
    """Markup that is already escaped."""


def escape(value: Any) -> Safe:
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def tag(element: str, text: Any = "", /, **attrs: Any) -> Safe:
    rendered = "".join(f' {k.rstrip("_").replace("_", "-")}="{escape(v)}"' for k, v in attrs.items()
                       if v is not None and v is not False)
    return Safe(f"<{element}{rendered}>{escape(text)}</{element}>")


def link(href: str, text: Any, /, **attrs: Any) -> Safe:
    return tag("a", text, href=href, **attrs)


def join(parts: Iterable[Any], separator: str = "") -> Safe:
    return Safe(escape(separator).join(escape(p) for p in parts))


@cache
def _template(name: str) -> Template:
    return Template(resources.files("core.api").joinpath("templates", name).read_text(encoding="utf-8"))


def render(name: str, **values: Any) -> str:
    return _template(name).substitute({k: escape(v) for k, v in values.items()})
