"""The crawler's parsers over the real recorded Hub responses in shared/hub/fixtures."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from core.hub.records import (
    EXPAND_FIELDS,
    BaseModelRef,
    ParseError,
    RepoRecord,
    parse_listed_repos,
    parse_paper,
    parse_repo,
    project,
)
from core.itemtext import item_text, source_hash
from core.kinds import Kind
from tests.conftest import FIXTURES, HubThread


def _load(path: Path) -> dict:
    data = json.loads(path.read_text())
    data.pop("_source", None)
    return data


MODEL_FIXTURES = sorted((FIXTURES / "models").glob("detail_*.json"))


def test_fixtures_present() -> None:
    assert len(MODEL_FIXTURES) == 4, "shared/hub/fixtures must be beside the project"


@pytest.mark.parametrize("path", MODEL_FIXTURES, ids=lambda p: p.stem)
def test_model_details_parse(path: Path) -> None:
    body = _load(path)["response"]["body"]
    record = parse_repo(Kind.MODEL, body)
    assert record.id == body["id"]
    assert record.author == body["author"]
    assert record.hub_oid == body["_id"]
    assert record.downloads == body["downloads"]
    assert record.likes == body["likes"]
    assert record.created_at == body["createdAt"]
    assert record.last_modified == body["lastModified"]
    assert record.sha == body["sha"]
    assert record.tags == body["tags"]
    assert record.pipeline_tag == body.get("pipeline_tag")
    if "safetensors" in body:
        assert record.num_parameters == body["safetensors"]["total"]
    assert record.name.replace("-", " ") in item_text(record)


def test_roberta_lineage_and_license() -> None:
    body = _load(FIXTURES / "models" / "detail_deepset_roberta-base-squad2.json")["response"]["body"]
    record = parse_repo(Kind.MODEL, body)
    assert record.base_models == [BaseModelRef("FacebookAI/roberta-base", "finetune")]
    assert record.license == "cc-by-4.0"
    assert record.gated is None and record.disabled is False


def test_bert_arxiv() -> None:
    body = _load(FIXTURES / "models" / "detail_google-bert_bert-base-uncased.json")["response"]["body"]
    record = parse_repo(Kind.MODEL, body)
    assert record.arxiv_ids == ["1810.04805"]
    assert record.num_parameters == 110106428
    assert record.license == "apache-2.0"


def test_dataset_detail_parses() -> None:
    body = _load(FIXTURES / "datasets" / "detail_hendrycks_competition_math.json")
    record = parse_repo(Kind.DATASET, body)
    assert record.id == "hendrycks/competition_math"
    assert record.disabled is True
    assert record.description and record.description.startswith("The Mathematics Aptitude Test")
    assert "Mathematics Aptitude" in item_text(record)


def test_space_bodies_parse() -> None:
    bodies = _load(FIXTURES / "spaces" / "detail_bodies.json")["spaces"]
    assert bodies
    for body in bodies.values():
        record = parse_repo(Kind.SPACE, body)
        assert record.id == body["id"]
        assert record.sdk == body["sdk"]
        title = (body.get("cardData") or {}).get("title")
        if title:
            assert record.description and title in record.description
        projected = project(Kind.SPACE, body)
        assert "siblings" not in projected and projected["id"] == body["id"]


def test_daily_paper_inner_parses() -> None:
    inner = _load(FIXTURES / "papers" / "daily_paper_inner_2509.04664.json")["paper"]
    record = parse_paper(inner)
    assert record.id == "2509.04664"
    assert record.title == inner["title"].strip()
    assert record.authors and all(isinstance(a, str) for a in record.authors)
    # The outer daily-papers shape wraps the same object.
    assert parse_paper({"paper": inner, "title": inner["title"], "numComments": 3}).id == "2509.04664"


def test_webhook_payload_repo_names_are_parseable_ids() -> None:
    for path in (FIXTURES / "webhooks").glob("*.json"):
        payload = _load(path)["payload"]
        repo = payload["repo"]
        kind = Kind(repo["type"]) if repo["type"] in ("model", "dataset", "space") else Kind.MODEL
        assert parse_repo(kind, {"id": repo["name"], "_id": repo["id"]}).id == repo["name"]


def test_bad_items_raise_parse_error() -> None:
    for bad in ({}, {"id": ""}, {"id": 5}, []):
        with pytest.raises(ParseError):
            parse_repo(Kind.MODEL, bad)  # type: ignore[arg-type]
    with pytest.raises(ParseError):
        parse_paper({"id": "1"})


def test_base_models_from_tags() -> None:
    tags = ["base_model:Qwen/Qwen3-8B", "base_model:quantized:Qwen/Qwen3-8B", "gguf",
            "base_model:merge:a/b", "base_model:c/d"]
    assert parse_repo(Kind.MODEL, {"id": "x/y", "tags": tags}).base_models == [
        BaseModelRef("Qwen/Qwen3-8B", "quantized"), BaseModelRef("a/b", "merge"), BaseModelRef("c/d", None),
    ]


@pytest.mark.parametrize(("repo_id", "tags", "expected"), [
    ("TheBloke/Llama-2-7B-GGUF", [], "gguf"),
    ("x/y", ["gguf"], "gguf"),
    ("x/model-AWQ", [], "awq"),
    ("x/model-4bit-gptq", [], "gptq"),
    ("turboderp/Llama-exl2", [], "exl2"),
    ("x/plain-model", ["text-generation"], None),
    ("x/both", ["awq", "gguf"], "gguf"),
])
def test_quant_format(repo_id: str, tags: list[str], expected: str | None) -> None:
    assert parse_repo(Kind.MODEL, {"id": repo_id, "tags": tags}).quant_format == expected


def test_source_hash_follows_the_search_text() -> None:
    base = {"id": "org/llama-7b", "author": "org", "tags": ["text-generation", "license:mit"],
            "pipeline_tag": "text-generation", "downloads": 5}
    record = parse_repo(Kind.MODEL, base)
    # Counters and timestamps are not in the text: the hash stays.
    same = parse_repo(Kind.MODEL, {**base, "downloads": 500, "lastModified": "2026-01-01T00:00:00.000Z"})
    assert item_text(same) == item_text(record) and source_hash(same) == source_hash(record)
    # Anything the text is built from moves it.
    for change in ({"tags": ["text-generation", "license:mit", "gguf"]}, {"library_name": "mlx"},
                   {"id": "org/llama-8b"}, {"description": "chat"}, {"tags": ["base_model:finetune:a/b"]}):
        other = parse_repo(Kind.MODEL, {**base, **change})
        assert item_text(other) != item_text(record) and source_hash(other) != source_hash(record), change


def _fixture_items(kind: Kind) -> list[dict]:
    if kind is Kind.MODEL:
        return [_load(path)["response"]["body"] for path in MODEL_FIXTURES]
    if kind is Kind.DATASET:
        return [_load(FIXTURES / "datasets" / "detail_hendrycks_competition_math.json")]
    return list(_load(FIXTURES / "spaces" / "detail_bodies.json")["spaces"].values())


def _same_as_parse_repo(kind: Kind, body: bytes) -> list[RepoRecord]:
    """`parse_listed_repos` reads `body` as `parse_repo` reads each item; its records carry no `raw`."""
    listed = parse_listed_repos(kind, body)
    assert listed is not None
    expected = [parse_repo(kind, item) for item in orjson.loads(body)]
    assert [dataclasses.replace(record, raw=None) for record in expected] == listed
    return listed


@pytest.mark.parametrize("kind", [Kind.MODEL, Kind.DATASET, Kind.SPACE], ids=lambda k: k.value)
def test_listed_pages_parse_like_items(kind: Kind) -> None:
    """Real recordings, as a list call with the crawler's `expand` returns them."""
    items = [project(kind, item) for item in _fixture_items(kind)]
    listed = _same_as_parse_repo(kind, orjson.dumps(items))
    assert [record.id for record in listed] == [item["id"] for item in items]


@pytest.mark.parametrize("kind", [Kind.MODEL, Kind.DATASET, Kind.SPACE], ids=lambda k: k.value)
def test_fake_hub_pages_parse_like_items(kind: Kind, hub_thread: Callable[..., HubThread]) -> None:
    hub = hub_thread(models=300, datasets=300, spaces=300, papers=0, seed=7)
    expand = "&".join(f"expand[]={field}" for field in EXPAND_FIELDS[kind])
    with urllib.request.urlopen(f"{hub.url}/api/{kind.plural}?limit=300&{expand}", timeout=30) as response:
        body = response.read()
    listed = _same_as_parse_repo(kind, body)
    assert len(listed) == 300
    if kind is Kind.MODEL:
        assert any(r.base_models for r in listed) and any(r.num_parameters for r in listed)
        assert any(r.quant_format for r in listed) and any(r.license for r in listed)


@pytest.mark.parametrize("odd", [
    {"downloads": None}, {"tags": ["ok", 3]}, {"private": "yes"}, {"safetensors": [1]}, {"id": ""},
    {"_source": "a recording"},
], ids=lambda odd: next(iter(odd)))
def test_odd_items_leave_the_page_to_parse_repo(odd: dict) -> None:
    """An item `parse_repo` reads differently from its type (or at all) sends the whole page there."""
    items = [{"id": "a/b", "downloads": 3, "tags": ["gguf"]}, {"id": "c/d", **odd}]
    assert parse_listed_repos(Kind.MODEL, orjson.dumps(items)) is None
    assert parse_listed_repos(Kind.MODEL, orjson.dumps(items[:1])) is not None
