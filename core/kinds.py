"""The four kinds of Hub object PROMETHEUS mirrors, and the global document key.

Every item has a row in its kind's table; `doc_key` packs (kind, row pk) into one
integer so the FTS index, the FAISS index and the embedding job table can hold
all kinds side by side without collisions.
"""

from __future__ import annotations

from enum import StrEnum

_KEY_SHIFT = 40


class Kind(StrEnum):
    MODEL = "model"
    DATASET = "dataset"
    SPACE = "space"
    PAPER = "paper"

    @property
    def plural(self) -> str:
        return self.value + "s"

    @property
    def table(self) -> str:
        return self.plural

    @property
    def code(self) -> int:
        return _CODES[self]

    @property
    def is_repo(self) -> bool:
        return self is not Kind.PAPER


_CODES = {Kind.MODEL: 1, Kind.DATASET: 2, Kind.SPACE: 3, Kind.PAPER: 4}
_BY_CODE = {code: kind for kind, code in _CODES.items()}
REPO_KINDS: tuple[Kind, ...] = (Kind.MODEL, Kind.DATASET, Kind.SPACE)
ALL_KINDS: tuple[Kind, ...] = (*REPO_KINDS, Kind.PAPER)


def parse_kind(text: str) -> Kind:
    """Accept `model`/`models` (any case); raise ValueError otherwise."""
    value = text.strip().lower()
    for kind in Kind:
        if value in (kind.value, kind.plural):
            return kind
    raise ValueError(f"unknown type {text!r} (expected one of: models, datasets, spaces, papers)")


def doc_key(kind: Kind, pk: int) -> int:
    return (kind.code << _KEY_SHIFT) | pk


def doc_key_sql(kind: Kind, pk_column: str = "pk") -> str:
    """`doc_key` as an SQL expression over a kind table's rows."""
    return f"(({kind.code} << {_KEY_SHIFT}) | {pk_column})"


def split_doc_key(key: int) -> tuple[Kind, int]:
    return _BY_CODE[key >> _KEY_SHIFT], key & ((1 << _KEY_SHIFT) - 1)


def key_range(kind: Kind) -> tuple[int, int]:
    """Inclusive doc_key bounds of one kind (for rowid range scans in FTS)."""
    return kind.code << _KEY_SHIFT, ((kind.code + 1) << _KEY_SHIFT) - 1
