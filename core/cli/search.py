"""`python main.py search "llama gguf"`: keyword, semantic or hybrid search with filters."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli import UsageError
from core.cli.output import format_table, print_json
from core.config import config_from_args
from core.kinds import parse_kind
from core.search import RELATIONS, SORTS, SearchFilters, SearchHit, parse_param_count


def add_filter_arguments(parser: argparse.ArgumentParser, *, kind: bool = True) -> None:
    if kind:
        parser.add_argument("--type", dest="kind", help="models|datasets|spaces|papers (default: all)")
    parser.add_argument("--author", help="only this author / organisation")
    parser.add_argument("--tag", help="only items with this tag")
    parser.add_argument("--pipeline", dest="pipeline_tag", help="pipeline tag, e.g. text-generation")
    parser.add_argument("--library", help="library, e.g. transformers, gguf, diffusers")
    parser.add_argument("--license", help="licence, e.g. apache-2.0, mit")
    parser.add_argument("--min-downloads", type=int, help="at least N downloads (last 30 days)")
    parser.add_argument("--base-model", help="children of this base model (finetunes, quantizations, ...)")
    parser.add_argument("--relation", choices=RELATIONS, help="with --base-model: only this relation")
    parser.add_argument("--quant", dest="quant_format", help="quantisation format: gguf, awq, gptq, exl2, mlx")
    parser.add_argument("--min-params", help="at least this many parameters, e.g. 7B, 500M")
    parser.add_argument("--max-params", help="at most this many parameters, e.g. 13B")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="*", help="search text (empty: browse the filtered items)")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--semantic", action="store_true", help="nearest neighbours of the query's embedding")
    modes.add_argument("--hybrid", action="store_true", help="keyword and semantic, fused by rank")
    add_filter_arguments(parser)
    parser.add_argument("--sort", choices=SORTS, default="relevance")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print JSON")


def filters_from_args(args: argparse.Namespace) -> SearchFilters:
    try:
        kind = parse_kind(args.kind) if getattr(args, "kind", None) else None
        min_params = parse_param_count(args.min_params) if args.min_params else None
        max_params = parse_param_count(args.max_params) if args.max_params else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.min_downloads is not None and args.min_downloads < 0:
        raise UsageError("--min-downloads must be ≥ 0")
    return SearchFilters(
        kind=kind, author=args.author, tag=args.tag, pipeline_tag=args.pipeline_tag, library=args.library,
        license=args.license, min_downloads=args.min_downloads, base_model=args.base_model,
        relation=args.relation, quant_format=args.quant_format, min_params=min_params, max_params=max_params,
    )


def human_count(value: int | None) -> str:
    if value is None:
        return ""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(value)


def hits_table(hits: list[SearchHit]) -> str:
    rows: list[list[Any]] = []
    for rank, hit in enumerate(hits, 1):
        what = hit.pipeline_tag or hit.quant_format or hit.library_name or ""
        if hit.kind.value == "paper":
            what = (hit.title or "")[:60]
        rows.append([rank, hit.kind.value, hit.id[:60], what, human_count(hit.downloads), human_count(hit.likes),
                     human_count(hit.num_parameters), f"{hit.score:.3f}"])
    return format_table(["#", "kind", "id", "task / title", "downloads", "likes", "params", "score"], rows)


def print_hits(hits: list[SearchHit], as_json: bool, empty_hint: str | None = None) -> None:
    if as_json:
        print_json({"results": [hit.to_json() for hit in hits]})
        return
    if not hits:
        print("no results" + (f" ({empty_hint})" if empty_hint else ""))
        return
    print(hits_table(hits))


def run(args: argparse.Namespace) -> int:
    from core.logs import configure_logging
    from core.search import SearchEngine

    configure_logging("WARNING")  # info lines (index loaded) belong in the daemon's log, not here
    if args.limit < 1 or args.offset < 0:
        raise UsageError("--limit must be ≥ 1 and --offset ≥ 0")
    filters = filters_from_args(args)
    mode = "semantic" if args.semantic else "hybrid" if args.hybrid else "keyword"
    engine = SearchEngine(config_from_args(args))
    try:
        query = " ".join(args.query)
        hits = engine.search(query, filters, mode=mode, sort=args.sort, limit=args.limit, offset=args.offset)
        hint = None
        if not hits and mode != "keyword" and engine.index.get() is None:
            hint = "the semantic index is empty: run `python main.py embed --until-idle`"
            if args.json:  # the text output says it in its "no results" line
                print(f"main.py search: {hint}", file=sys.stderr)
        print_hits(hits, args.json, hint)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        engine.close()
    return 0
