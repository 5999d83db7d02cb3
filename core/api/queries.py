"""The item queries behind the list, detail, export and UI routes.

Every name that shapes SQL (table, sort column, filter) comes from the fixed tables in
this module; values are bound parameters. Lists page by keyset (sort value, pk), so page N
costs the same as page 1 and a concurrent crawl never makes a page skip or repeat rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.kinds import REPO_KINDS, Kind, split_doc_key
from core.store.rawjson import decode_raw

HUB = "https://huggingface.co"
_JSON_COLUMNS = ("tags", "arxiv_ids", "authors", "ai_keywords")
_HIDDEN = ("raw", "text_hash", "pk")

# Sort keys a client may name -> the column (each has an index; see m0001_mirror).
REPO_SORTS = {"downloads": "downloads", "likes": "likes", "created": "created_at", "modified": "last_modified",
              "id": "id"}
PAPER_SORTS = {"upvotes": "upvotes", "published": "published_at", "id": "id"}


@dataclass(frozen=True)
class Filter:
    """A whitelisted filter: the parameter name, its SQL with one `?`, and the value type."""

    sql: str
    value_type: type = str
    kinds: tuple[Kind, ...] = REPO_KINDS
    description: str = ""


FILTERS: dict[str, Filter] = {
    "author": Filter("author = ? COLLATE NOCASE", description="author / organisation (any case, as on the Hub)"),
    "tag": Filter("EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)", description="exact tag"),
    "pipeline_tag": Filter("pipeline_tag = ?", kinds=(Kind.MODEL,), description="e.g. text-generation"),
    "library": Filter("library_name = ?", kinds=(Kind.MODEL,), description="e.g. transformers"),
    "license": Filter("license = ?", description="e.g. apache-2.0"),
    "sdk": Filter("sdk = ?", kinds=(Kind.SPACE,), description="gradio, streamlit, docker, static"),
    "base_model": Filter("pk IN (SELECT child_pk FROM lineage WHERE base_id = ?)", kinds=(Kind.MODEL,),
                         description="models derived from this base"),
    "relation": Filter("base_relation = ?", kinds=(Kind.MODEL,),
                       description="finetune, adapter, merge or quantized"),
    "quant_format": Filter("quant_format = ?", kinds=(Kind.MODEL,), description="gguf, awq, gptq, exl2, mlx, bnb"),
    "min_downloads": Filter("downloads >= ?", int, description="at least this many downloads"),
    "min_likes": Filter("likes >= ?", int, description="at least this many likes"),
    "paper_author": Filter("EXISTS (SELECT 1 FROM json_each(authors) WHERE value = ?)", kinds=(Kind.PAPER,),
                           description="exact author name"),
    "min_upvotes": Filter("upvotes >= ?", int, kinds=(Kind.PAPER,), description="at least this many upvotes"),
}


def filters_for(kind: Kind) -> dict[str, Filter]:
    return {name: f for name, f in FILTERS.items() if kind in f.kinds}


def sorts_for(kind: Kind) -> dict[str, str]:
    return PAPER_SORTS if kind is Kind.PAPER else REPO_SORTS


def default_sort(kind: Kind) -> str:
    return "upvotes" if kind is Kind.PAPER else "downloads"


def hub_url(kind: Kind, item_id: str) -> str:
    prefix = {Kind.MODEL: "", Kind.DATASET: "datasets/", Kind.SPACE: "spaces/", Kind.PAPER: "papers/"}[kind]
    return f"{HUB}/{prefix}{item_id}"


def item_json(kind: Kind, row: sqlite3.Row, *, raw: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": kind.value}
    for key in row.keys():  # noqa: SIM118 - sqlite3.Row has keys() but no iteration over names
        if key in _HIDDEN and not (raw and key == "raw"):
            continue
        value = row[key]
        if key == "raw":
            value = decode_raw(value)
        elif key in _JSON_COLUMNS:
            value = orjson.loads(value) if value else []
        elif key in ("private", "disabled"):
            value = bool(value)
        item[key] = value
    item["url"] = hub_url(kind, row["id"])
    return item


@dataclass
class ListQuery:
    kind: Kind
    sort: str
    descending: bool = True
    filters: dict[str, Any] = field(default_factory=dict)
    limit: int = 50
    cursor: list[Any] | None = None  # [segment, value, pk] from the previous page


@dataclass
class ListPage:
    rows: list[sqlite3.Row]
    next_cursor: list[Any] | None


def _where(query: ListQuery) -> tuple[list[str], list[Any]]:
    clauses = ["deleted_at IS NULL"]
    args: list[Any] = []
    for name, value in query.filters.items():
        clauses.append(FILTERS[name].sql)
        args.append(value)
    return clauses, args


def list_items(conn: sqlite3.Connection, query: ListQuery) -> ListPage:
    """One page in (sort column, pk) order. NULL sort values form their own segment (last when
    descending, first when ascending), because a row-value comparison with NULL matches nothing."""
    column = sorts_for(query.kind)[query.sort]
    table = query.kind.table
    base_clauses, base_args = _where(query)
    direction = "DESC" if query.descending else "ASC"
    compare = "<" if query.descending else ">"
    segments = ["value", "null"] if query.descending else ["null", "value"]
    start_segment, after_value, after_pk = (query.cursor or [segments[0], None, None])
    rows: list[tuple[str, sqlite3.Row]] = []
    for segment in segments[segments.index(start_segment):]:
        want = query.limit + 1 - len(rows)
        if want <= 0:
            break
        clauses, args = list(base_clauses), list(base_args)
        continuing = segment == start_segment and after_pk is not None
        if segment == "value":
            clauses.append(f"{column} IS NOT NULL")
            if continuing:
                clauses.append(f"({column}, pk) {compare} (?, ?)")
                args += [after_value, after_pk]
            order = f"{column} {direction}, pk {direction}"
        else:
            clauses.append(f"{column} IS NULL")
            if continuing:
                clauses.append(f"pk {compare} ?")
                args.append(after_pk)
            order = f"pk {direction}"
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(clauses)} ORDER BY {order} LIMIT ?"
        page = conn.execute(sql, [*args, want]).fetchall()
        rows += [(segment, row) for row in page]
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        segment, last = rows[-1]
        next_cursor = [segment, last[column], last["pk"]]
    return ListPage([row for _, row in rows], next_cursor)


def get_item(conn: sqlite3.Connection, kind: Kind, item_id: str) -> sqlite3.Row | None:
    return conn.execute(f"SELECT * FROM {kind.table} WHERE id = ? AND deleted_at IS NULL", (item_id,)).fetchone()


def lineage(conn: sqlite3.Connection, model_pk: int, model_id: str, *, limit: int = 200) -> dict[str, Any]:
    """A model's bases (with whether we mirror them) and what derives from it, by relation."""
    bases = [
        {"id": row["base_id"], "relation": row["relation"], "mirrored": row["pk"] is not None}
        for row in conn.execute(
            "SELECT l.base_id, l.relation, m.pk FROM lineage l LEFT JOIN models m ON m.id = l.base_id "
            "AND m.deleted_at IS NULL WHERE l.child_pk = ? ORDER BY l.base_id", (model_pk,))
    ]
    children: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for row in conn.execute(
        "SELECT coalesce(l.relation, 'unspecified') AS relation, count(*) FROM lineage l JOIN models m "
        "ON m.pk = l.child_pk AND m.deleted_at IS NULL WHERE l.base_id = ? GROUP BY 1", (model_id,)):
        counts[row[0]] = row[1]
    for row in conn.execute(
        "SELECT coalesce(l.relation, 'unspecified') AS relation, m.id, m.downloads, m.quant_format FROM lineage l "
        "JOIN models m ON m.pk = l.child_pk AND m.deleted_at IS NULL WHERE l.base_id = ? "
        "ORDER BY m.downloads DESC, m.pk LIMIT ?", (model_id, limit)):
        children.setdefault(row["relation"], []).append(
            {"id": row["id"], "downloads": row["downloads"], "quant_format": row["quant_format"]})
    return {"bases": bases, "children": children, "child_counts": counts}


def cited_papers(conn: sqlite3.Connection, arxiv_ids: list[str]) -> list[dict[str, Any]]:
    if not arxiv_ids:
        return []
    known = {
        row["id"]: row["title"]
        for row in conn.execute(
            f"SELECT id, title FROM papers WHERE deleted_at IS NULL AND id IN ({','.join('?' * len(arxiv_ids))})",
            arxiv_ids)
    }
    return [{"id": pid, "title": known.get(pid), "mirrored": pid in known, "url": hub_url(Kind.PAPER, pid)}
            for pid in arxiv_ids]


def citing_items(conn: sqlite3.Connection, arxiv_id: str, *, limit: int = 200) -> dict[str, list[dict[str, Any]]]:
    """Models, datasets and spaces whose `arxiv:` tags cite a paper.

    The FTS index already holds every tag, so a phrase query over the tags column finds the
    candidates without scanning the tables; `arxiv_ids` then confirms the exact id.
    """
    tokens = [t for t in arxiv_id.replace(".", " ").replace("/", " ").replace("-", " ").split() if t.isalnum()]
    if not tokens:
        return {}
    phrase = '"' + " ".join(["arxiv", *tokens]) + '"'
    found: dict[str, list[dict[str, Any]]] = {}
    keys = [row[0] for row in conn.execute(
        "SELECT rowid FROM search_fts WHERE search_fts MATCH ? LIMIT ?", (f"tags : {phrase}", limit * 4))]
    by_kind: dict[Kind, list[int]] = {}
    for key in keys:
        kind, pk = split_doc_key(key)
        if kind.is_repo:
            by_kind.setdefault(kind, []).append(pk)
    for kind, pks in by_kind.items():
        rows = conn.execute(
            f"SELECT id, downloads, likes, arxiv_ids FROM {kind.table} WHERE deleted_at IS NULL AND "
            f"pk IN ({','.join('?' * len(pks))}) ORDER BY downloads DESC LIMIT ?", [*pks, limit]).fetchall()
        matching = [{"id": r["id"], "downloads": r["downloads"], "likes": r["likes"]} for r in rows
                    if arxiv_id in orjson.loads(r["arxiv_ids"] or "[]")]
        if matching:
            found[kind.plural] = matching
    return found


def iterate_items(conn: sqlite3.Connection, kind: Kind, filters: dict[str, Any], after_pk: int,
                  batch: int) -> list[sqlite3.Row]:
    """One batch of an export in pk order; the caller loops so memory stays flat and no read
    transaction is held open across the whole stream (that would pin the WAL)."""
    clauses, args = _where(ListQuery(kind, default_sort(kind), filters=filters))
    clauses.append("pk > ?")
    return conn.execute(
        f"SELECT * FROM {kind.table} WHERE {' AND '.join(clauses)} ORDER BY pk LIMIT ?", [*args, after_pk, batch]
    ).fetchall()


def priority_items(conn: sqlite3.Connection, authors: list[str], model_ids: list[str], *,
                   limit: int) -> Iterator[sqlite3.Row]:
    """Recently modified models from the priority authors, plus the named priority models."""
    if not authors and not model_ids:
        return iter(())
    return iter(conn.execute(
        f"SELECT * FROM models WHERE deleted_at IS NULL "
        f"AND (author COLLATE NOCASE IN ({','.join('?' * len(authors)) or 'NULL'}) "
        f"OR id IN ({','.join('?' * len(model_ids)) or 'NULL'})) ORDER BY last_modified DESC LIMIT ?",
        [*authors, *model_ids, limit]).fetchall())
