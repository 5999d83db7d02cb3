"""The fake Hub over real loopback HTTP: wire shapes, keyset paging, errors, rate limits, faults, admin."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp
import pytest
import pytest_asyncio

from core.hub.fake import FakeHub, FaultConfig
from core.hub.fake.faults import FaultInjector
from core.hub.fake.wire import DEFAULT_FIELDS, EXPAND_VALUES, FULL_FIELDS, SORT_FIELDS

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "hub" / "fixtures"
SIZES = {"models": 1500, "datasets": 300, "spaces": 300}


@pytest_asyncio.fixture
async def hub():
    hub = FakeHub(**SIZES, papers=120, seed=3)
    await hub.start()
    yield hub
    await hub.close()


@pytest_asyncio.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, Any]:
    async with http.get(url, allow_redirects=False) as response:
        body = await response.read()
        try:
            data = json.loads(body)
        except ValueError:
            data = body.decode()
        return response.status, response.headers, data


def next_link(headers: Any) -> str | None:
    link = headers.get("Link")
    if not link:
        return None
    assert link.endswith('>; rel="next"'), link
    return link[1:link.index(">")]


async def walk(http: aiohttp.ClientSession, url: str, between=None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    pages = 0
    while url:
        status, headers, page = await get(http, url)
        assert status == 200, page
        items.extend(page)
        url = next_link(headers)
        pages += 1
        assert pages < 1000
        if between is not None and url:
            between(pages)
    return items


# --- shapes -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_default_items_carry_the_real_keys_in_order(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    for kind in ("models", "datasets", "spaces"):
        status, headers, items = await get(http, f"{hub.url}/api/{kind}?limit=1000")
        assert status == 200 and isinstance(items, list) and len(items) == min(1000, SIZES[kind])
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        for item in items:
            expected = [k for k in DEFAULT_FIELDS[kind] if k in item]
            assert list(item) == expected
            missing = set(DEFAULT_FIELDS[kind]) - set(item)
            assert missing <= ({"pipeline_tag", "library_name"} if kind == "models" else set()), missing
        if kind == "models":
            # The real Hub leaves pipeline_tag/library_name out when a model has none.
            assert any("pipeline_tag" not in i for i in items) and any("pipeline_tag" in i for i in items)
            assert all(i["modelId"] == i["id"] for i in items)
        assert all(len(i["_id"]) == 24 and int(i["_id"], 16) >= 0 for i in items)
        assert all(i["createdAt"].endswith(".000Z") for i in items)


@pytest.mark.asyncio
async def test_full_expand_and_their_conflicts(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    _, _, items = await get(http, f"{hub.url}/api/models?full=true&limit=20")
    for item in items:
        assert list(item) == [k for k in FULL_FIELDS["models"] if k in item]
        assert {"author", "gated", "lastModified", "sha", "siblings"} <= set(item)
        assert item["lastModified"] >= item["createdAt"]
    _, _, items = await get(http, f"{hub.url}/api/models?expand=author&expand[]=likes&expand=safetensors&limit=50")
    assert all(set(i) <= {"_id", "id", "author", "likes", "safetensors"} for i in items)
    assert all({"_id", "id", "author", "likes"} <= set(i) for i in items)
    params = [i["safetensors"] for i in items if "safetensors" in i]
    assert params and all(p["total"] == sum(p["parameters"].values()) or p["total"] > 0 for p in params)
    _, _, items = await get(http, f"{hub.url}/api/spaces?expand[]=cardData&expand[]=runtime&limit=5")
    for item in items:
        assert list(item) == ["_id", "id", "cardData", "runtime"]
        assert {"title", "emoji", "sdk", "short_description"} <= set(item["cardData"])
    _, _, items = await get(http, f"{hub.url}/api/datasets?expand=description&limit=5")
    assert all(i["description"].lstrip().startswith("Dataset Card for") and i["description"][0].isspace()
               for i in items)
    _, _, items = await get(http, f"{hub.url}/api/models?cardData=true&limit=5")
    assert all("cardData" in i for i in items)
    for query in ("expand=likes&full=true", "expand=likes&cardData=true", "expand[]=likes&config=true",
                  "expand=nonsense", "sort=bogus", "direction=2", "limit=abc"):
        status, _, body = await get(http, f"{hub.url}/api/models?{query}")
        assert status == 400 and isinstance(body.get("error"), str), query
    status, _, body = await get(http, f"{hub.url}/api/spaces?sort=downloads")
    assert status == 400 and "error" in body
    for kind in ("models", "datasets", "spaces"):  # every expand value the Hub documents renders
        every = "&".join(f"expand[]={name}" for name in sorted(EXPAND_VALUES[kind]))
        status, _, items = await get(http, f"{hub.url}/api/{kind}?{every}&limit=200")
        assert status == 200 and len(items) == 200
        assert all(set(i) <= EXPAND_VALUES[kind] | {"_id", "id"} for i in items)
        assert all({"author", "tags", "likes", "sha", "lastModified", "createdAt"} <= set(i) for i in items)
    status, _, items = await get(http, f"{hub.url}/api/models?limit=5000")
    assert status == 200 and len(items) == 1000  # larger limits are capped


# --- keyset paging ----------------------------------------------------------------------------


def _cursor_of(url: str) -> dict[str, Any]:
    params = dict(parse_qsl(urlsplit(url).query))
    return json.loads(base64.b64decode(params["cursor"]))


@pytest.mark.asyncio
async def test_link_keeps_every_parameter_and_cursor_has_the_real_shape(hub: FakeHub,
                                                                         http: aiohttp.ClientSession) -> None:
    query = "filter=region:us&filter=endpoints_compatible&expand[]=likes&expand[]=downloads&sort=likes&limit=7"
    status, headers, _ = await get(http, f"{hub.url}/api/models?{query}")
    assert status == 200
    url = next_link(headers)
    assert url.startswith(f"{hub.url}/api/models?")
    pairs = parse_qsl(urlsplit(url).query)
    assert pairs[:-1] == parse_qsl(query) and pairs[-1][0] == "cursor"  # every parameter, in order
    raw = urlsplit(url).query.rsplit("cursor=", 1)[1]
    assert "%" in raw or raw.isalnum()  # URL-encoded base64
    cursor = json.loads(base64.b64decode(unquote(raw)))
    (first, second) = cursor["$or"]
    assert set(first) == {"likes", "_id"} and set(first["_id"]) == {"$gt"} and len(first["_id"]["$gt"]) == 24
    assert second == {"likes": {"$lt": first["likes"]}}
    _, headers, _ = await get(http, f"{hub.url}/api/models?sort=downloads&direction=1&limit=3")
    (first, second) = _cursor_of(next_link(headers))["$or"]
    assert second == {"downloads": {"$gt": first["downloads"]}}
    _, headers, _ = await get(http, f"{hub.url}/api/models?sort=downloads&limit=3")
    assert _cursor_of(next_link(headers))["$or"][2] == {"downloads": None}
    _, headers, _ = await get(http, f"{hub.url}/api/models?sort=createdAt&limit=3")
    assert _cursor_of(next_link(headers))["$or"][0]["createdAt"].endswith("Z")
    for bad in ("abc", "eyJ4IjoxfQ%3D%3D", next_link(headers).split("cursor=")[1] + "&sort=likes"):
        status, _, body = await get(http, f"{hub.url}/api/models?cursor={bad}")
        assert status == 400 and "error" in body


def _walk_key(item: dict[str, Any], sort: str, desc: bool) -> tuple[Any, str]:
    value = item[sort]
    if isinstance(value, str):  # ISO timestamps sort as text
        return (value, item["_id"]) if not desc else ("".join(chr(0x10FFFF - ord(c)) for c in value), item["_id"])
    return (-value if desc else value, item["_id"])


@pytest.mark.asyncio
async def test_full_walk_returns_every_id_once_for_every_sort(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    for kind in ("models", "datasets", "spaces"):
        expected = hub.ids(kind)
        assert len(expected) == SIZES[kind]
        for sort in SORT_FIELDS[kind]:
            for direction in ("-1", "1"):
                items = await walk(http, f"{hub.url}/api/{kind}?sort={sort}&direction={direction}&limit=100"
                                         f"&expand={sort}")
                ids = [i["id"] for i in items]
                assert len(ids) == len(set(ids)) == len(expected), (kind, sort, direction)
                assert set(ids) == expected
                keys = [_walk_key(i, sort, direction == "-1") for i in items]
                assert keys == sorted(keys), (kind, sort, direction)  # ties broken by _id ascending
    # Exactly one page: no Link header.
    status, headers, items = await get(http, f"{hub.url}/api/spaces?limit=1000")
    assert status == 200 and len(items) == SIZES["spaces"] and "Link" not in headers


def _mutator(hub: FakeHub, sort: str, initial: list[str], touched: set[str], created: set[str]):
    """Between pages: update (content and counters), delete, rename and create models."""
    step = iter(range(0, len(initial), 7))

    def mutate(page: int) -> None:
        for _ in range(3):
            victim = initial[next(step)]
            if victim in touched:
                continue
            touched.add(victim)
            action = page % 4
            if action == 0:
                hub.update_repo("models", victim, tags=["retagged", "region:us"])
            elif action == 1:
                hub.update_repo("models", victim, likes=(hub.item("models", victim) or {})["likes"] + 50)
            elif action == 2:
                hub.delete_repo("models", victim)
            else:
                hub.rename_repo("models", victim, f"renamed/{sort}-{page}-{victim.replace('/', '-')}")
        new_id = f"acme/{sort}-new-{page}"
        hub.create_repo("models", new_id, tags=["text-generation"], likes=page)
        created.add(new_id)

    return mutate


@pytest.mark.asyncio
async def test_walk_stays_exact_while_repos_change(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    for sort in ("lastModified", "likes", "createdAt"):
        initial = sorted(hub.ids("models"))
        touched: set[str] = set()
        created: set[str] = set()
        mutate = _mutator(hub, sort, initial, touched, created)
        items = await walk(http, f"{hub.url}/api/models?sort={sort}&limit=100", between=mutate)
        seen = Counter(i["id"] for i in items)
        untouched = set(initial) - touched
        assert all(seen[i] == 1 for i in untouched), sort
        assert len(touched) > 20 and len(created) > 5
        allowed = set(initial) | created | hub.ids("models")
        assert set(seen) <= allowed
        for repo_id in created:
            hub.delete_repo("models", repo_id)


@pytest.mark.asyncio
async def test_filters_search_and_author_match_ground_truth(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    details = {i: hub.item("models", i) for i in hub.ids("models")}

    async def listed(query: str, kind: str = "models") -> set[str]:
        return {i["id"] for i in await walk(http, f"{hub.url}/api/{kind}?limit=1000&{query}")}

    gguf = {i for i, d in details.items() if "gguf" in d["tags"]}
    assert gguf and await listed("filter=gguf") == gguf
    both = {i for i, d in details.items() if {"license:mit", "text-generation"} <= set(d["tags"])}
    assert both and await listed("filter=license:mit&filter=text-generation") == both
    quantized = next(t for d in details.values() for t in d["tags"] if t.startswith("base_model:quantized:"))
    assert await listed(f"filter={quantized}") == {i for i, d in details.items() if quantized in d["tags"]}
    pipeline = {i for i, d in details.items() if d.get("pipeline_tag") == "text-generation"}
    assert await listed("pipeline_tag=text-generation") == pipeline
    author = Counter(i.split("/")[0] for i in details).most_common(1)[0][0]
    assert await listed(f"author={author}") == {i for i in details if i.split("/")[0] == author}
    assert await listed("search=GGUF") == {i for i in details if "gguf" in i.lower()}
    assert await listed("search=no-such-thing-anywhere") == set()
    # A created repo is found by the same filters.
    hub.create_repo("models", "acme/Special-Coder-GGUF", tags=["gguf", "region:us"])
    assert "acme/Special-Coder-GGUF" in await listed("filter=gguf&search=special-coder")
    data = {i: hub.item("datasets", i) for i in hub.ids("datasets")}
    tag = next(t for d in data.values() for t in d["tags"] if t.startswith("task_categories:"))
    assert await listed(f"filter={tag}", "datasets") == {i for i, d in data.items() if tag in d["tags"]}
    spaces = {i: hub.item("spaces", i) for i in hub.ids("spaces")}
    assert await listed("filter=docker", "spaces") == {i for i, d in spaces.items() if d["sdk"] == "docker"}


# --- details ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_detail_found_missing_and_renamed(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    repo_id = sorted(hub.ids("models"))[5]
    status, _, body = await get(http, f"{hub.url}/api/models/{repo_id}")
    assert status == 200 and body["id"] == repo_id and body == hub.item("models", repo_id)
    status, _, again = await get(http, f"{hub.url}/api/models/{repo_id}/revision/main")
    assert status == 200 and again == body
    status, headers, missing = await get(http, f"{hub.url}/api/models/nobody/nothing-here")
    assert status == 404 and missing == {"error": "Repository not found"}
    assert headers["X-Error-Code"] == "RepoNotFound" and headers["X-Error-Message"]
    hub.rename_repo("models", repo_id, "acme/moved-model")
    status, headers, text = await get(http, f"{hub.url}/api/models/{repo_id}")
    assert status == 307 and headers["Location"] == "/api/models/acme/moved-model"
    assert text.startswith("Temporary Redirect")
    status, _, moved = await get(http, f"{hub.url}{headers['Location']}")
    assert status == 200 and moved["_id"] == body["_id"] and moved["author"] == "acme"
    listed = await walk(http, f"{hub.url}/api/models?limit=1000")
    assert repo_id not in {i["id"] for i in listed} and "acme/moved-model" in {i["id"] for i in listed}
    # Counter-only updates keep lastModified and sha; content changes bump both.
    before = hub.item("models", "acme/moved-model")
    after = hub.update_repo("models", "acme/moved-model", downloads=123456)
    assert (after["lastModified"], after["sha"]) == (before["lastModified"], before["sha"])
    after = hub.update_repo("models", "acme/moved-model", tags=["new-tag"])
    assert after["sha"] != before["sha"] and after["lastModified"] >= before["lastModified"]
    hub.delete_repo("models", "acme/moved-model")
    assert (await get(http, f"{hub.url}/api/models/acme/moved-model"))[0] == 404
    assert (await get(http, f"{hub.url}/api/models/{repo_id}"))[0] == 404


def _fixture_bodies(kind: str) -> list[dict[str, Any]]:
    bodies = []
    for path in sorted((FIXTURES / kind).glob("*.json")):
        data = json.loads(path.read_text())
        if "response" in data:
            bodies.append(data["response"]["body"])
        elif kind == "spaces" and "spaces" in data:
            bodies.extend(data["spaces"].values())
        elif kind == "papers":
            bodies.append(data["paper"])
        elif "_id" in data:
            bodies.append(data)
    return [{k: v for k, v in b.items() if k != "_source"} for b in bodies]


def _json_type(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "str", list: "list", dict: "dict"}.get(
        type(value), "null")


def _compare_types(fake: dict[str, Any], real: dict[str, Any], where: str) -> None:
    for key in set(fake) & set(real):
        if fake[key] is None or real[key] is None:
            continue
        assert _json_type(fake[key]) == _json_type(real[key]), f"{where}: {key}"


@pytest.mark.asyncio
async def test_details_match_the_recorded_fixtures(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    if not FIXTURES.is_dir():
        pytest.skip("shared/hub/fixtures not present")
    optional = {
        "models": {"pipeline_tag", "library_name", "mask_token", "widgetData", "transformersInfo", "safetensors",
                   "gguf"},
        "datasets": set(),
        "spaces": {"datasets", "models", "createdAt", "usedStorage"},
    }
    for kind in ("models", "datasets", "spaces"):
        real = _fixture_bodies(kind)
        assert real, kind
        common = set.intersection(*(set(b) for b in real))
        union = set.union(*(set(b) for b in real))
        for repo_id in sorted(hub.ids(kind))[::25]:
            status, headers, fake = await get(http, f"{hub.url}/api/{kind}/{repo_id}")
            assert status == 200
            assert common - optional[kind] <= set(fake), (kind, common - set(fake))
            assert set(fake) <= union | optional[kind], (kind, set(fake) - union)
            for body in real:
                _compare_types(fake, body, f"{kind} {repo_id}")
            if kind == "spaces":
                _compare_types(fake["cardData"], real[0]["cardData"], "space cardData")
                _compare_types(fake["runtime"], real[0]["runtime"], "space runtime")
            if kind == "models":
                for nested in ("cardData", "config"):
                    for body in real:
                        _compare_types(fake[nested], body[nested], f"model {nested}")
    recorded = json.loads((FIXTURES / "models" / "detail_deepset_roberta-base-squad2.json").read_text())
    for header in ("Content-Type", "Access-Control-Expose-Headers", "Access-Control-Allow-Origin", "X-Powered-By"):
        assert headers[header] == recorded["response"]["headers"][header]
    # The inner `paper` of a daily item.
    real_paper = _fixture_bodies("papers")[0]
    _, _, daily = await get(http, f"{hub.url}/api/daily_papers?limit=5")
    for item in daily:
        assert set(real_paper) <= set(item["paper"]) | {"ai_summary", "ai_keywords"}
        _compare_types(item["paper"], real_paper, "paper")
        _compare_types(item["paper"]["authors"][0], real_paper["authors"][0], "paper author")


# --- papers -----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_daily_papers_paging_and_limits(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    status, headers, first = await get(http, f"{hub.url}/api/daily_papers?limit=50")
    assert status == 200 and len(first) == 50
    assert next_link(headers) == f"{hub.url}/api/daily_papers?limit=50&p=1"
    items = await walk(http, f"{hub.url}/api/daily_papers?limit=50")
    assert len(items) == 120 and len({i["paper"]["id"] for i in items}) == 120
    assert {i["paper"]["id"] for i in items} == hub.ids("papers")
    required = {"paper", "publishedAt", "title", "summary", "thumbnail", "numComments", "submittedBy",
                "isAuthorParticipating"}
    assert all(required <= set(i) for i in items)
    assert all({"id", "authors", "publishedAt", "title", "summary", "upvotes", "discussionId"} <= set(i["paper"])
               for i in items)
    days = Counter(i["paper"]["submittedOnDailyAt"][:10] for i in items)
    for day in days:
        assert time.strptime(day, "%Y-%m-%d").tm_wday < 5, day
    oldest = min(days)
    assert all(23 <= c <= 25 for d, c in days.items() if d != oldest)
    newest = max(days)
    _, _, one_day = await get(http, f"{hub.url}/api/daily_papers?date={newest}&limit=100")
    assert len(one_day) == days[newest]
    status, _, body = await get(http, f"{hub.url}/api/daily_papers?limit=101")
    assert status == 400 and "Too big" in body["error"]
    _, _, trending = await get(http, f"{hub.url}/api/daily_papers?sort=trending&limit=100")
    upvotes = [i["paper"]["upvotes"] for i in trending]
    assert upvotes == sorted(upvotes, reverse=True)


@pytest.mark.asyncio
async def test_papers_cursor_walk_and_detail(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    hub.add_paper("2611.99999", title="A Brand New Paper", summary="About speech.", authors=["Ada Lovelace"])
    items = await walk(http, f"{hub.url}/api/papers?limit=25")
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 121 and set(ids) == hub.ids("papers")
    assert ids[0] == "2611.99999"  # newest publishedAt first
    published = [i["publishedAt"] for i in items]
    assert published == sorted(published, reverse=True)
    assert all({"id", "title", "upvotes", "publishedAt", "authors", "summary"} <= set(i) for i in items)
    assert (await get(http, f"{hub.url}/api/papers?limit=101"))[0] == 400
    cited = next(t[6:] for i in hub.ids("models") for t in hub.item("models", i)["tags"] if t.startswith("arxiv:"))
    status, _, paper = await get(http, f"{hub.url}/api/papers/{cited}")
    assert status == 200 and paper["id"] == cited and paper["numTotalModels"] >= 1
    assert {"linkedModels", "linkedDatasets", "linkedSpaces", "numTotalDatasets", "numTotalSpaces"} <= set(paper)
    assert {"author", "downloads", "id", "likes", "repoType", "gated"} <= set(paper["linkedModels"][0])
    assert (await get(http, f"{hub.url}/api/papers/0000.00000"))[0] == 404


# --- rate limit and faults --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_rate_limit_headers_429_and_window_reset(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    _, headers, _ = await get(http, f"{hub.url}/api/spaces?limit=1")
    assert headers["RateLimit"].startswith('"api";r=') and headers["RateLimit-Policy"].startswith('"fixed window"')
    hub.set_rate_limit(4, 1.0)
    remaining = []
    for _ in range(4):
        status, headers, _ = await get(http, f"{hub.url}/api/spaces?limit=1")
        assert status == 200
        assert headers["RateLimit-Policy"] == '"fixed window";"api";q=4;w=1'
        parts = dict(p.split("=") for p in headers["RateLimit"].split(";")[1:])
        remaining.append(int(parts["r"]))
        assert int(parts["t"]) >= 1
    assert remaining == [3, 2, 1, 0]
    limited_before = hub.rate_limited_count
    status, headers, body = await get(http, f"{hub.url}/api/models?limit=1")
    assert status == 429 and '"api";r=0;' in headers["RateLimit"] and "Retry-After" not in headers
    assert "error" in body and hub.rate_limited_count == limited_before + 1
    # The admin endpoint is exempt.
    status, _, _ = await get(http, f"{hub.url}/_fake/admin/stats")
    assert status == 200
    wait = int(headers["RateLimit"].rsplit("t=", 1)[1])
    await asyncio.sleep(min(wait, 1.0) + 0.05)
    status, headers, _ = await get(http, f"{hub.url}/api/models?limit=1")
    assert status == 200 and '"api";r=3;' in headers["RateLimit"]


@pytest.mark.asyncio
async def test_faults_are_produced_and_detectable(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    count = hub.request_count
    hub.set_faults(FaultConfig(error_rate=1.0, seed=2))
    for _ in range(3):
        status, headers, body = await get(http, f"{hub.url}/api/models?limit=10")
        assert status in (500, 502, 503) and "error" in body and "RateLimit" in headers
    hub.set_faults(FaultConfig(truncate_rate=1.0))
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(f"{hub.url}/api/models?limit=100") as response:
            assert response.status == 200 and int(response.headers["Content-Length"]) > 0
            await response.read()
    hub.set_faults(FaultConfig(drop_rate=1.0))
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        async with http.get(f"{hub.url}/api/datasets?limit=10") as response:
            await response.read()
    hub.set_faults(FaultConfig(slow_rate=1.0, slow_seconds=0.2))
    started = time.monotonic()
    assert (await get(http, f"{hub.url}/api/spaces?limit=1"))[0] == 200
    assert time.monotonic() - started >= 0.2
    hub.set_faults(FaultConfig(error_rate=1.0, drop_rate=1.0))
    assert (await get(http, f"{hub.url}/_fake/admin/stats"))[0] == 200  # admin: no faults
    hub.set_faults(FaultConfig())
    assert (await get(http, f"{hub.url}/api/models?limit=1"))[0] == 200
    assert hub.request_count >= count + 7  # aiohttp retries a GET once when a reused connection drops
    # Deterministic for a seed.
    config = FaultConfig(error_rate=0.3, drop_rate=0.2, truncate_rate=0.2, slow_rate=0.5, slow_seconds=1, seed=9)
    a, b = FaultInjector(config), FaultInjector(config)
    assert [a.draw() for _ in range(200)] == [b.draw() for _ in range(200)]
    with pytest.raises(ValueError):
        FaultConfig(error_rate=1.5)


# --- admin, determinism, CLI ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_admin_endpoint(hub: FakeHub, http: aiohttp.ClientSession) -> None:
    async def post(action: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with http.post(f"{hub.url}/_fake/admin/{action}", json=body) as response:
            return response.status, await response.json()

    status, body = await post("create", {"kind": "datasets", "repo_id": "acme/fresh-data",
                                         "fields": {"description": "A fresh corpus of legal contracts"}})
    assert status == 200 and body["item"]["id"] == "acme/fresh-data" and body["item"]["author"] == "acme"
    assert "acme/fresh-data" in hub.ids("datasets")
    status, body = await post("update", {"kind": "datasets", "repo_id": "acme/fresh-data", "fields": {"likes": 9}})
    assert status == 200 and body["item"]["likes"] == 9
    status, _ = await post("rename", {"kind": "datasets", "repo_id": "acme/fresh-data", "new_id": "acme/renamed"})
    assert status == 200 and "acme/renamed" in hub.ids("datasets")
    status, _ = await post("delete", {"kind": "datasets", "repo_id": "acme/renamed"})
    assert status == 200 and "acme/renamed" not in hub.ids("datasets")
    assert (await post("delete", {"kind": "datasets", "repo_id": "acme/renamed"}))[0] == 404
    assert (await post("create", {"kind": "datasets"}))[0] == 400
    assert (await post("create", {"kind": "nope", "repo_id": "a/b"}))[0] == 400
    status, body = await post("add_paper", {"arxiv_id": "2611.12345", "title": "T", "summary": "S",
                                            "authors": ["A B"]})
    assert status == 200 and body["paper"]["id"] == "2611.12345" and "2611.12345" in hub.ids("papers")
    status, body = await post("rate_limit", {"quota": 100, "window": 60})
    assert status == 200 and hub.limiter.quota == 100
    status, body = await post("faults", {"error_rate": 0.5, "seed": 4})
    assert status == 200 and hub.faults.error_rate == 0.5
    assert (await post("faults", {"error_rate": 3}))[0] == 400
    await post("faults", {})
    status, _, ids = await get(http, f"{hub.url}/_fake/admin/ids/spaces")
    assert status == 200 and set(ids["ids"]) == hub.ids("spaces") and ids["count"] == SIZES["spaces"]


def test_corpus_is_deterministic_and_realistic() -> None:
    a = FakeHub(models=3000, datasets=50, spaces=50, papers=30, seed=11)
    b = FakeHub(models=3000, datasets=50, spaces=50, papers=30, seed=11)
    assert a.ids("models") == b.ids("models") and a.ids("papers") == b.ids("papers")
    some = sorted(a.ids("models"))[:50]
    assert all(a.item("models", i) == b.item("models", i) for i in some)
    assert FakeHub(models=300, datasets=0, spaces=0, papers=0, seed=12).ids("models") != a.ids("models")
    items = [a.item("models", i) for i in a.ids("models")]
    zero = sum(1 for i in items if i["downloads"] == 0 and i["likes"] == 0) / len(items)
    assert 0.35 < zero < 0.65
    with_pipeline = sum(1 for i in items if "pipeline_tag" in i) / len(items)
    assert 0.2 < with_pipeline < 0.5
    authors = Counter(i["author"] for i in items)
    assert {"mradermacher", "bartowski", "TheBloke", "unsloth", "meta-llama", "Qwen"} <= set(authors)
    tags = Counter(t.split(":")[0] if ":" in t else t for i in items for t in i["tags"])
    for expected in ("gguf", "base_model", "license", "arxiv", "region", "endpoints_compatible"):
        assert tags[expected] > 0, expected
    for relation in ("finetune", "adapter", "merge", "quantized"):
        assert any(t.startswith(f"base_model:{relation}:") for i in items for t in i["tags"]), relation
    assert any(i["createdAt"] == "2022-03-02T23:29:04.000Z" for i in items)
    assert all(i["lastModified"] >= i["createdAt"] for i in items)
    assert any(i["id"].endswith("-GGUF") for i in items) and any(i["id"].endswith("-AWQ") for i in items)


def test_cli_serves_until_sigterm_and_rejects_bad_arguments() -> None:
    bad = subprocess.run([sys.executable, str(ROOT / "main.py"), "fakehub", "--drop-rate", "1.5"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "drop-rate" in bad.stderr
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "fakehub", "--port", "0", "--models", "200",
                             "--datasets", "10", "--spaces", "10", "--papers", "10", "--quota", "50"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake hub listening on http://127.0.0.1:"), line
        url = line.split()[4]

        async def fetch() -> tuple[int, str]:
            async with aiohttp.ClientSession() as session, session.get(f"{url}/api/models?limit=5") as response:
                return response.status, response.headers["RateLimit-Policy"]

        assert asyncio.run(fetch()) == (200, '"fixed window";"api";q=50;w=300')
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
