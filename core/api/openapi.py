"""Building the OpenAPI 3.1 document: helpers for route modules, and the assembly.

Each route module exports `OPENAPI = {path: {method: operation}}`, usually written with
`operation(...)` below, which adds the error responses every route can give (400 problem,
429 rate limited, 401 for write routes) so the document matches what the server really
answers. Shared schemas live in `SCHEMAS` (refer to them with `ref("Name")`); a module can add
its own in `COMPONENTS = {"schemas": {...}}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from core.api.auth import BEARER_SECURITY
from core.api.errors import PROBLEM_SCHEMA, PROBLEM_TYPE

JSON = "application/json"
API_VERSION = "1.0.0"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema_type: str) -> dict[str, Any]:
    return {"type": [schema_type, "null"]}


NO_NUL_PATTERN = "^[^\\u0000]*$"


def text_schema(max_length: int, *, min_length: int = 0) -> dict[str, Any]:
    """A free-text parameter as `core.api.params.text` reads it: at most `max_length` characters, no NUL."""
    schema: dict[str, Any] = {"type": "string", "maxLength": max_length, "pattern": NO_NUL_PATTERN}
    if min_length:
        schema["minLength"] = min_length
    return schema


def _bounded(schema: dict[str, Any]) -> bool:
    """A string schema that cannot grow a request line without bound (enum, const or maxLength)."""
    for branch in schema.get("oneOf", schema.get("anyOf", [])):
        if not _bounded(branch):
            return False
    types = schema.get("type", [])
    if "string" not in (types if isinstance(types, list) else [types]):
        return True
    return "enum" in schema or "const" in schema or "maxLength" in schema


def query(name: str, schema: dict[str, Any], description: str = "", *, required: bool = False,
          allow_empty: bool = True) -> dict[str, Any]:
    """A query parameter. `allow_empty` documents what `core.api.params` does by default: `?name=` (an empty
    HTML form field) is the same as leaving the parameter out. Pass False for a route that rejects it.

    Every string must be bounded (`maxLength` or `enum`): a generated or hostile value must not push the
    request line past the server's limit (`core.api.server.MAX_REQUEST_LINE`)."""
    if not _bounded(schema):
        raise ValueError(f"query parameter {name!r}: a string schema needs maxLength or enum")
    param: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema,
                             "description": description}
    if allow_empty and not required:
        param["allowEmptyValue"] = True
    return param


def path_param(name: str, description: str = "", schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"},
            "description": description}


def content(schema: dict[str, Any], media_type: str = JSON) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def response(description: str, schema: dict[str, Any] | None = None, *, media_type: str = JSON,
             headers: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"description": description}
    if schema is not None:
        result["content"] = content(schema, media_type)
    if headers:
        result["headers"] = headers
    return result


def problem(description: str) -> dict[str, Any]:
    return {"$ref": f"#/components/responses/{_PROBLEM_RESPONSES[description]}"} if description in \
        _PROBLEM_RESPONSES else response(description, ref("Problem"), media_type=PROBLEM_TYPE)


_PROBLEM_RESPONSES = {"bad request": "BadRequest", "not found": "NotFound", "rate limited": "RateLimited",
                      "unauthorized": "Unauthorized", "unavailable": "Unavailable"}


def operation(
    summary: str,
    *,
    tags: Sequence[str],
    responses: dict[int, dict[str, Any]],
    parameters: Iterable[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    body_required: bool = False,
    write: bool = False,
    description: str | None = None,
    operation_id: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": list(tags)}
    if description:
        op["description"] = description
    if operation_id:
        op["operationId"] = operation_id
    params = list(parameters)
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": content(body)}
    all_responses: dict[str, Any] = {str(code): value for code, value in responses.items()}
    # Every route can refuse bad input (params or path), and the limiter can answer 429 anywhere.
    all_responses.setdefault("400", problem("bad request"))
    all_responses.setdefault("429", problem("rate limited"))
    if any(p["in"] == "path" for p in params):
        all_responses.setdefault("404", problem("not found"))
    if write:
        op["security"] = BEARER_SECURITY
        all_responses.setdefault("401", problem("unauthorized"))
    op["responses"] = all_responses
    return op


_RATE_HEADERS = {
    "RateLimit": {"schema": {"type": "string"}, "description": 'remaining quota: "default";r=<left>;t=<seconds>'},
    "RateLimit-Policy": {"schema": {"type": "string"}, "description": '"default";q=<quota>;w=<window seconds>'},
}

STRINGS = {"type": "array", "items": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "Problem": PROBLEM_SCHEMA,
    "RepoItem": {
        "type": "object",
        "required": ["kind", "id", "url"],
        "properties": {
            "kind": {"type": "string", "enum": ["model", "dataset", "space"]},
            "id": {"type": "string"},
            "url": {"type": "string"},
            "author": nullable("string"),
            "downloads": {"type": "integer"},
            "likes": {"type": "integer"},
            "tags": STRINGS,
            "pipeline_tag": nullable("string"),
            "library_name": nullable("string"),
            "license": nullable("string"),
            "base_model": nullable("string"),
            "quant_format": nullable("string"),
            "arxiv_ids": STRINGS,
            "created_at": nullable("string"),
            "last_modified": nullable("string"),
        },
    },
    "Paper": {
        "type": "object",
        "required": ["kind", "id", "url", "title"],
        "properties": {
            "kind": {"type": "string", "enum": ["paper"]},
            "id": {"type": "string"},
            "url": {"type": "string"},
            "title": {"type": "string"},
            "authors": STRINGS,
            "upvotes": {"type": "integer"},
            "published_at": nullable("string"),
        },
    },
    "Item": {"oneOf": [ref("RepoItem"), ref("Paper")]},
    "ItemPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref("Item")},
            "next_cursor": nullable("string"),
        },
    },
    "Task": {
        "type": "object",
        "required": ["id", "type", "status", "params", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "type": {"type": "string", "enum": ["crawl", "index_build"]},
            "params": {"type": "object"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "progress": {"type": ["object", "null"]},
            "result": {"type": ["object", "null"]},
            "error": nullable("string"),
            "created_at": {"type": "string"},
            "started_at": nullable("string"),
            "finished_at": nullable("string"),
        },
    },
    "SearchHit": {
        "type": "object",
        "required": ["kind", "id"],
        "properties": {
            "kind": {"type": "string"}, "id": {"type": "string"},
            "score": {"type": "number", "description": "relevance: BM25 (keyword), cosine similarity (semantic), "
                      "reciprocal-rank fusion (hybrid); keyword results sorted by a column carry 0"},
        },
    },
    "SearchResults": {
        "type": "object",
        "required": ["query", "mode", "results"],
        "properties": {
            "query": {"type": "string"},
            "mode": {"type": "string"},
            "sort": {"type": "string"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "results": {"type": "array", "items": ref("SearchHit")},
        },
    },
}


def build_document(modules: Iterable[ModuleType], *, title: str = "PROMETHEUS API") -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = dict(SCHEMAS)
    for module in modules:
        for path, item in getattr(module, "OPENAPI", {}).items():
            target = paths.setdefault(path, {})
            for method, op in item.items():
                if method in target:
                    raise ValueError(f"{module.__name__}: {method.upper()} {path} is documented twice")
                target[method] = op
        schemas.update((getattr(module, "COMPONENTS", {}) or {}).get("schemas", {}))
    problem_response = {"description": "", "content": content(ref("Problem"), PROBLEM_TYPE)}
    responses = {
        "BadRequest": {**problem_response, "description": "bad input (a problem document names the parameter)"},
        "NotFound": {**problem_response, "description": "no such item"},
        "Unauthorized": {**problem_response, "description": "missing or wrong `Authorization: Bearer <key>`"},
        "Unavailable": {**problem_response, "description": "a dependency is not ready (search index, database)"},
        "RateLimited": {**problem_response, "description": "over the per-client quota",
                        "headers": {**_RATE_HEADERS, "Retry-After": {"schema": {"type": "string"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": API_VERSION,
            "description": "A self-hosted mirror of the Hugging Face Hub's public metadata. Routes that write or "
                           "start work need `Authorization: Bearer <key>` when the server has an API key. "
                           "Errors are `application/problem+json`. Lists page with a `cursor` and a "
                           '`Link: <...>; rel="next"` header.',
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
