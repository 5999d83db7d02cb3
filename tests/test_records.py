"""The crawler's parsers over the real recorded Hub responses in shared/hub/fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.hub.records import (
    BaseModelRef,
    ParseError,
    parse_paper,
    parse_repo,
    project,
)
from core.itemtext import item_text, source_hash
from core.kinds import Kind
from tests.conftest import FIXTURES


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
