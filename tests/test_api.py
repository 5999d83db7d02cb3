"""The REST API against a real server (`python main.py serve`) on loopback, over a mirror made by
really crawling the fake Hub: every endpoint, auth, rate limit, CORS, problem+json errors,
pagination, export, tasks, health, metrics, the search page, and injection attempts."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from core.kinds import ALL_KINDS
from tests.conftest import PROJECT_ROOT, HubThread, cli_env, run_cli

API_KEY = "test-key-5d1e"
PLANT_WORD = "quokkafrost"  # appears only in the planted items
BASE = "acme-research/zephyrine-7b"
QUANT = "quantfolk/zephyrine-7b-GGUF"
TUNE = "tuners/zephyrine-7b-chat"
XSS = "evil/xss-model"
FORMULA = "evil/formula-model"
PROBLEM = "application/problem+json"


@dataclass
class Mirror:
    data_dir: Path
    env: dict[str, str]
    paper_id: str
    counts: dict[str, int] = field(default_factory=dict)


def build_mirror(root: Path, *, models: int = 240, seed: int = 11) -> Mirror:
    """Crawl a small fake Hub, then plant a lineage family citing one of its papers and crawl again."""
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    hub = HubThread(models=models, datasets=60, spaces=40, papers=40, seed=seed)
    try:
        env = cli_env(data_dir, hub.url)
        first = run_cli("crawl", "--mode", "full", env=env)
        assert first.returncode == 0, first.stderr
        conn = sqlite3.connect(data_dir / "prometheus.db")
        paper_id = conn.execute("SELECT id FROM papers ORDER BY id LIMIT 1").fetchone()[0]
        conn.close()
        # Models carry no description on the wire: the planted word travels as a tag.
        hub.call("create_repo", "models", BASE, tags=["text-generation", "transformers", f"arxiv:{paper_id}",
                                                      PLANT_WORD])
        hub.call("create_repo", "models", QUANT, tags=["gguf", f"base_model:quantized:{BASE}", PLANT_WORD])
        hub.call("create_repo", "models", TUNE, tags=[f"base_model:finetune:{BASE}", PLANT_WORD])
        hub.call("create_repo", "models", XSS, tags=["<script>alert('xss')</script>", "<b>bold</b>", PLANT_WORD])
        hub.call("create_repo", "models", FORMULA, tags=["=HYPERLINK(\"http://x\")"])
        second = run_cli("crawl", "--type", "models", env=env)
        assert second.returncode == 0, second.stderr
    finally:
        hub.stop()
    conn = sqlite3.connect(data_dir / "prometheus.db")
    counts = {k.plural: conn.execute(f"SELECT count(*) FROM {k.table} WHERE deleted_at IS NULL").fetchone()[0]
              for k in ALL_KINDS}
    conn.close()
    return Mirror(data_dir, cli_env(data_dir), paper_id, counts)


class ApiServer:
    """`python main.py serve --port 0` in a subprocess; the URL is read from its first stdout line."""

    def __init__(self, mirror: Mirror, *, config: dict[str, Any] | None = None, api_key: str | None = API_KEY,
                 extra_args: tuple[str, ...] = ()) -> None:
        env = dict(mirror.env)
        if api_key:
            env["PROMETHEUS_API_KEY"] = api_key
        config_path = mirror.data_dir.parent / f"api-config-{id(self)}.json"
        config = config or {"api": {"rate_limit": {"requests": 100000}}}
        # One process unless a test asks for more (`--workers`): per-process rate limits and caches stay exact.
        config = {**config, "api": {"workers": 1, **config.get("api", {})}}
        config_path.write_text(json.dumps(config))
        env["PROMETHEUS_CONFIG"] = str(config_path)
        self.stderr_lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "main.py"), "serve", "--port", "0", *extra_args],
            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "http://" not in line:
            self.process.kill()
            raise RuntimeError(f"server did not start: {line!r} {''.join(self.stderr_lines)[-2000:]}")
        self.url = line.split(" on ", 1)[1].split()[0]
        self.session = requests.Session()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=60, **kwargs)

    def stop(self) -> int:
        self.session.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(5)
        return self.process.returncode


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Mirror:
    return build_mirror(tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def api(mirror: Mirror) -> Iterator[ApiServer]:
    server = ApiServer(mirror)
    yield server
    assert server.stop() == 0, "".join(server.stderr_lines)[-3000:]


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith(PROBLEM), response.headers["Content-Type"]
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# -- service --------------------------------------------------------------------------------


def test_index_health_stats(api: ApiServer, mirror: Mirror) -> None:
    index = api.get("/").json()
    assert index["items"] == mirror.counts
    health = api.get("/health")
    assert health.status_code == 200, health.text
    report = health.json()
    assert report["checks"]["database"]["status"] == "ok"
    assert report["checks"]["crawl"]["status"] == "ok", report
    for kind in ALL_KINDS:
        assert report["checks"]["crawl"][kind.plural]["last_success_age_seconds"] < 3600
    assert report["checks"]["embedding_queue"]["queue_pending"] >= sum(mirror.counts.values())
    assert report["checks"]["search"]["available"] is True
    stats = api.get("/stats").json()
    assert stats["counts"] == mirror.counts
    assert stats["last_crawl"]["models"]["status"] == "ok"


def test_health_is_503_when_a_child_was_given_up(api: ApiServer, mirror: Mirror) -> None:
    from core.store import connect, write_tx

    conn = connect(mirror.data_dir / "prometheus.db")
    try:
        with write_tx(conn):
            # supervisor_pid: this test process, alive, so the row is current state, not history.
            conn.execute("INSERT INTO supervisor_children (child, pid, state, restarts, last_reason, supervisor_pid, "
                         "updated_at) VALUES ('crawler', 1, 'gave_up', 5, 'exited', ?, '2025-01-01T00:00:00.000Z')",
                         (os.getpid(),))
        response = api.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert any("crawler" in p for p in body["problems"])
    finally:
        with write_tx(conn):
            conn.execute("DELETE FROM supervisor_children")
        conn.close()
    assert api.get("/health").status_code == 200


def test_metrics_exposition(api: ApiServer) -> None:
    api.get(f"/search/{PLANT_WORD}")
    text = api.get("/metrics").text
    assert 'hubmirror_items{kind="models"}' in text
    assert 'hubmirror_crawl_runs_total{kind="model",mode="full",status="ok"} 1.0' in text
    assert 'hubmirror_crawl_items_total{change="new",kind="model"}' in text
    assert 'hubmirror_embed_queue_depth{state="pending"}' in text
    assert 'hubmirror_search_seconds_bucket{le="0.1",mode="keyword"}' in text
    assert "hubmirror_http_request_seconds_bucket" in text
    for family in ("hubmirror_alerts gauge", "hubmirror_child_restarts_total counter", "hubmirror_tasks gauge"):
        assert f"# TYPE {family}" in text


# -- items ----------------------------------------------------------------------------------


def _follow(api: ApiServer, path: str) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    pages = 0
    url: str | None = api.url + path
    while url:
        response = api.session.get(url, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        pages += 1
        url = response.links.get("next", {}).get("url")
        assert (url is None) == (body["next_cursor"] is None)
    return items, pages


@pytest.mark.parametrize("sort,order", [("downloads", "desc"), ("created", "asc"), ("id", "asc")])
def test_cursor_pagination_walks_every_item_once(api: ApiServer, mirror: Mirror, sort: str, order: str) -> None:
    items, pages = _follow(api, f"/models?limit=37&sort={sort}&order={order}")
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == mirror.counts["models"]
    assert pages == -(-mirror.counts["models"] // 37)
    column = {"downloads": "downloads", "created": "created_at", "id": "id"}[sort]
    values = [item[column] for item in items]
    non_null = [v for v in values if v is not None]
    assert non_null == sorted(non_null, reverse=order == "desc")


def test_list_filters_and_limits(api: ApiServer) -> None:
    quantized = api.get("/models", params={"base_model": BASE}).json()["items"]
    assert {i["id"] for i in quantized} == {QUANT, TUNE}
    assert [i["id"] for i in api.get("/models", params={"quant_format": "gguf", "author": "quantfolk"}).json()
            ["items"]] == [QUANT]
    assert [i["id"] for i in api.get("/models", params={"tag": "gguf", "relation": "quantized",
                                                         "author": "quantfolk"}).json()["items"]] == [QUANT]
    # Hub names are unique regardless of case, so the filter ignores it.
    assert [i["id"] for i in api.get("/models", params={"quant_format": "gguf", "author": "QuantFolk"}).json()
            ["items"]] == [QUANT]
    assert len(api.get("/datasets?limit=5").json()["items"]) == 5
    assert len(api.get("/papers?limit=1000").json()["items"]) > 0
    assert_problem(api.get("/models?limit=1001"), 400)
    assert_problem(api.get("/models?limit=0"), 400)
    assert_problem(api.get("/models?sdk=gradio"), 400)  # a spaces-only filter on models: unknown, not ignored
    cursor = api.get("/models?limit=2").json()["next_cursor"]
    assert_problem(api.get(f"/models?limit=2&sort=likes&cursor={cursor}"), 400)


def test_item_detail_lineage_and_papers(api: ApiServer, mirror: Mirror) -> None:
    base = api.get(f"/models/{BASE}").json()
    assert base["url"] == f"https://huggingface.co/{BASE}"
    assert base["lineage"]["children"]["quantized"][0]["id"] == QUANT
    assert base["lineage"]["children"]["finetune"][0]["id"] == TUNE
    assert [p["id"] for p in base["papers"]] == [mirror.paper_id] and base["papers"][0]["mirrored"]
    quant = api.get("/models/" + quote(QUANT, safe="")).json()  # the slash sent as %2F works too
    assert quant["lineage"]["bases"] == [{"id": BASE, "relation": "quantized", "mirrored": True}]
    assert "raw" not in quant and isinstance(api.get(f"/models/{QUANT}?raw=true").json()["raw"], dict)
    assert_problem(api.get("/models/nobody/nothing"), 404)
    dataset_id = api.get("/datasets?limit=1").json()["items"][0]["id"]
    assert api.get(f"/datasets/{dataset_id}").json()["url"] == f"https://huggingface.co/datasets/{dataset_id}"
    space_id = api.get("/spaces?limit=1").json()["items"][0]["id"]
    assert api.get(f"/spaces/{space_id}").json()["url"].startswith("https://huggingface.co/spaces/")


def test_paper_shows_the_models_citing_it(api: ApiServer, mirror: Mirror) -> None:
    paper = api.get(f"/papers/{mirror.paper_id}").json()
    assert paper["title"]
    assert BASE in [m["id"] for m in paper["cited_by"]["models"]]


def test_priority(api: ApiServer) -> None:
    body = api.get("/priority?limit=5").json()
    assert "TheBloke" in body["authors"] and len(body["items"]) <= 5


def test_export_ndjson_and_csv_stream_everything(api: ApiServer, mirror: Mirror) -> None:
    response = api.session.get(api.url + "/export?type=models", stream=True, timeout=60)
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    rows = [json.loads(line) for line in response.iter_lines() if line]
    assert len(rows) == mirror.counts["models"] and len({r["id"] for r in rows}) == len(rows)
    text = api.get("/export?type=models&format=csv&fields=id,downloads,tags").text
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["id", "downloads", "tags"] and len(table) == mirror.counts["models"] + 1
    formula = next(row for row in table if row[0] == FORMULA)
    assert formula[2].startswith("'=")  # neutralised for spreadsheets
    papers = api.get("/export?type=papers&limit=3").text.strip().splitlines()
    assert len(papers) == 3 and "title" in json.loads(papers[0])
    filtered = api.get("/export", params={"type": "models", "base_model": BASE}).text.strip().splitlines()
    assert {json.loads(line)["id"] for line in filtered} == {QUANT, TUNE}
    assert_problem(api.get("/export?format=xml"), 400)
    assert_problem(api.get("/export?fields=id,secret"), 400)


# -- search ---------------------------------------------------------------------------------


def test_search_get_post_and_all_kinds(api: ApiServer) -> None:
    hits = api.get(f"/search/{PLANT_WORD}?type=models&limit=10").json()["results"]
    assert {h["id"] for h in hits} >= {BASE, QUANT, TUNE}
    everywhere = api.get("/search/model?type=all&limit=50")  # the seed crashed on search over all kinds
    assert everywhere.status_code == 200 and everywhere.json()["results"]
    body = {"query": PLANT_WORD, "filters": {"quant_format": "gguf"}, "limit": 5}
    assert [h["id"] for h in api.post("/search", json=body).json()["results"]] == [QUANT]
    browse = api.post("/search", json={"type": "models", "sort": "downloads", "limit": 3}).json()["results"]
    assert len(browse) == 3
    page = api.get(f"/search/{PLANT_WORD}?limit=2")
    assert 'rel="next"' in page.headers["Link"] and "offset=2" in page.headers["Link"]
    semantic = api.get(f"/search/{PLANT_WORD}?mode=semantic")
    assert semantic.status_code == 200 and "warning" in semantic.json()  # no index built in this mirror
    assert_problem(api.get("/search/x?mode=fuzzy"), 400)
    assert_problem(api.get("/search/x?sort=random"), 400)
    assert_problem(api.post("/search", data=b"{not json"), 400)
    assert_problem(api.post("/search", json=[1, 2]), 400)
    assert_problem(api.post("/search", json={"query": "x", "filters": {"min_params": "lots"}}), 400)


def test_similar(api: ApiServer) -> None:
    assert_problem(api.get("/similar/models/nobody/nothing"), 404)
    assert_problem(api.get(f"/similar/widgets/{BASE}"), 400)
    response = api.get(f"/similar/models/{BASE}?limit=3")
    assert response.status_code == 200 and response.json()["id"] == BASE


# -- tasks and auth -------------------------------------------------------------------------


def test_write_routes_need_the_key(api: ApiServer) -> None:
    for path in ("/crawl", "/index/build"):
        missing = assert_problem(api.post(path, json={}), 401)
        assert "Bearer" in missing["detail"]
        assert api.post(path, json={}).headers["WWW-Authenticate"].startswith("Bearer")
        assert_problem(api.post(path, json={}, headers={"Authorization": "Bearer wrong"}), 401)
        assert_problem(api.post(path, json={}, headers={"Authorization": f"Basic {API_KEY}"}), 401)
    assert api.get("/tasks").status_code == 200  # reads stay open


def test_crawl_task_lifecycle(api: ApiServer, mirror: Mirror) -> None:
    from core.store import connect
    from core.tasks import claim_task, finish_task, report_progress

    created = api.post("/crawl", json={"type": "models", "mode": "full", "limit": 50}, headers=auth())
    assert created.status_code == 202, created.text
    task = created.json()
    assert created.headers["Location"] == f"/tasks/{task['id']}"
    assert task["status"] == "queued" and task["params"] == {"type": "models", "mode": "full", "limit": 50}
    again = api.post("/crawl", json={"type": "models", "mode": "full", "limit": 50}, headers=auth()).json()
    assert again["id"] == task["id"] and again["created"] is False
    assert api.get(f"/tasks/{task['id']}").json()["status"] == "queued"
    assert task["id"] in [t["id"] for t in api.get("/crawl/models").json()["tasks"]]
    assert_problem(api.post("/crawl", json={"type": "widgets"}, headers=auth()), 400)
    assert_problem(api.post("/crawl", json={"mode": "everything"}, headers=auth()), 400)
    assert_problem(api.post("/crawl", json={"limit": -1}, headers=auth()), 400)

    # What the crawler child does with it, seen through the API.
    conn = connect(mirror.data_dir / "prometheus.db")
    claimed = claim_task(conn, "crawl")
    assert claimed is not None and claimed.id == task["id"]
    report_progress(conn, claimed.id, {"models": 20})
    running = api.get(f"/tasks/{task['id']}").json()
    assert running["status"] == "running" and running["progress"] == {"models": 20}
    finish_task(conn, claimed.id, result={"models": {"new": 0}})
    conn.close()
    done = api.get(f"/tasks/{task['id']}").json()
    assert done["status"] == "done" and done["result"] == {"models": {"new": 0}}

    build = api.post("/index/build", headers=auth())
    assert build.status_code == 202 and build.json()["type"] == "index_build"
    listed = api.get("/tasks?type=index_build").json()["items"]
    assert listed[0]["id"] == build.json()["id"]
    assert_problem(api.get("/tasks/999999"), 404)
    assert_problem(api.get("/tasks/abc"), 404)
    status = api.get("/crawl/all").json()
    assert {h["kind"] for h in status["history"]} >= {"model"}


def test_task_list_pages_with_link_headers(api: ApiServer) -> None:
    for mode in ("incremental", "full"):
        for kind in ("datasets", "spaces"):
            api.post("/crawl", json={"type": kind, "mode": mode}, headers=auth())
    items, pages = _follow(api, "/tasks?limit=2")
    ids = [t["id"] for t in items]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids)) >= 4 and pages >= 2


# -- errors and injection -------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1", "1; DROP TABLE models; --", '" OR ""="', "models WHERE 1=1 --", "id DESC; DELETE FROM tasks",
    "*", '"unterminated', "NEAR(a b)", "name:foo OR author:*", "^start", "a AND OR NOT", "(", "%", "_", "\\",
    "-1", "1e309", "9" * 40, "NaN", "[]", "{}", "../../etc/passwd", "<script>alert(1)</script>", "ünïcödé 日本",
    "x" * 600, "\u202e\u0000",
]


def _table_counts(data_dir: Path) -> dict[str, int]:
    conn = sqlite3.connect(data_dir / "prometheus.db")
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("models", "datasets", "spaces", "papers", "lineage", "tasks")}
    finally:
        conn.close()


def test_injection_in_every_parameter_never_errors_or_leaks(api: ApiServer, mirror: Mirror) -> None:
    document = api.get("/openapi.json").json()
    before = _table_counts(mirror.data_dir)
    tried = 0
    for path, item in document["paths"].items():
        if path.startswith(("/webhooks", "/watches", "/feeds")):
            continue  # another part's routes: their own tests cover them
        for method, op in item.items():
            for payload in INJECTIONS:
                for param in op.get("parameters", []):
                    url_path = path
                    query: dict[str, str] = {}
                    for other in op.get("parameters", []):
                        if other["in"] == "path":
                            value = payload if other is param else "x"
                            url_path = url_path.replace("{" + other["name"] + "}", quote(value, safe=""))
                    if param["in"] == "query":
                        query[param["name"]] = payload
                    response = api.session.request(method.upper(), api.url + url_path, params=query,
                                                   headers=auth(), timeout=60)
                    tried += 1
                    assert response.status_code < 500, (method, path, param["name"], payload, response.text[:300])
                    if response.status_code >= 400 and not path.startswith("/ui"):
                        assert response.headers["Content-Type"].startswith(PROBLEM), (path, param["name"])
                if method == "post":
                    for body in ({"query": payload}, {"type": payload}, {"mode": payload},
                                 {"filters": {"author": payload, "tag": payload}}, {"limit": payload}):
                        response = api.session.post(api.url + path, json=body, headers=auth(), timeout=60)
                        tried += 1
                        assert response.status_code < 500, (path, body, response.text[:300])
    assert tried > 500
    after = _table_counts(mirror.data_dir)
    assert {k: v for k, v in after.items() if k != "tasks"} == {k: v for k, v in before.items() if k != "tasks"}
    # A classic tautology matches nothing instead of everything.
    assert api.get("/models", params={"author": "' OR '1'='1"}).json()["items"] == []
    assert api.get("/search/' OR '1'='1").status_code == 200


def test_bad_input_is_a_4xx_problem(api: ApiServer) -> None:
    for path in ("/models?limit=abc", "/models?limit=1_000", "/models?cursor=%%%", "/models?cursor=WzFd",
                 "/models?order=sideways", "/models?min_downloads=-5", "/models?bogus=1", "/papers?author=x",
                 "/crawl/widgets", "/tasks?status=sleeping", "/search/x?limit=100000", "/search/x?offset=-1",
                 "/export?type=widgets", "/search/x?min_params=12Q", "/search/x?relation=cousin",
                 "/search/x?min_params=1_000", "/crawl/model", "/export?type=Model", "/alerts?status=",
                 "/alerts?status=lost", "/alerts?limit=5000", "/trends?by=stars"):
        assert_problem(api.get(path), 400)
    assert api.get("/ui?sort=sideways").status_code == 400  # the page, with the problem shown
    assert_problem(api.post("/search", json={"filters": 0}), 400)
    assert_problem(api.get("/no/such/route"), 404)
    assert_problem(api.session.delete(api.url + "/models", timeout=30), 405)
    assert_problem(api.post("/search", data=b"x" * (2 << 20), headers={"Content-Type": "application/json"}), 413)


def test_over_long_requests_are_a_documented_problem(api: ApiServer) -> None:
    """Long but bounded parameters reach validation; what aiohttp's parser itself refuses (a request line over
    64 KiB, a header over 16 KiB) is still a 400 problem document, never aiohttp's text/plain."""
    assert_problem(api.get("/export", params={"fields": "a" * 9000}), 400)  # past aiohttp's default 8190
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    for request in (f"GET /export?fields={'a' * 70000} HTTP/1.1\r\nHost: x\r\n\r\n",
                    f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 20000}\r\n\r\n"):
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(request.encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0], head
        assert b"content-type: application/problem+json" in head.lower(), head
        assert json.loads(body)["status"] == 400


# -- CORS, rate limit, binding, shutdown ----------------------------------------------------


def test_cors_is_off_by_default(api: ApiServer) -> None:
    response = api.get("/models?limit=1", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = api.session.options(api.url + "/crawl", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, timeout=30)
    assert "Access-Control-Allow-Origin" not in preflight.headers and preflight.status_code >= 400


def test_rate_limit_cors_and_restart(mirror: Mirror, api: ApiServer) -> None:
    """A second server on the same data: strict quota, one allowed origin; it sees the first server's tasks."""
    tasks_before = api.get("/tasks?limit=1000").json()["items"]
    server = ApiServer(mirror, config={"api": {"rate_limit": {"requests": 5, "window_seconds": 60},
                                               "cors_origins": ["https://ok.example"]}})
    try:
        ok = server.get("/models?limit=1", headers={"Origin": "https://ok.example"})
        assert ok.headers["Access-Control-Allow-Origin"] == "https://ok.example"
        assert ok.headers["RateLimit"] == '"default";r=4;t=60'
        assert ok.headers["RateLimit-Policy"] == '"default";q=5;w=60'
        assert "Access-Control-Allow-Origin" not in server.get("/", headers={"Origin": "https://no.example"}).headers
        preflight = server.session.options(server.url + "/crawl", headers={
            "Origin": "https://ok.example", "Access-Control-Request-Method": "POST"}, timeout=30)
        assert preflight.status_code == 204 and "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        # Tasks survive the restart: the new process serves what the other one recorded.
        assert tasks_before and server.get(f"/tasks/{tasks_before[0]['id']}").status_code == 200
        statuses = [server.get("/models?limit=1") for _ in range(2)]  # 5 allowed, preflight included
        assert [r.status_code for r in statuses] == [200, 429]
        limited = statuses[1]
        assert_problem(limited, 429)
        assert limited.headers["RateLimit"].startswith('"default";r=0;t=')
        assert int(limited.headers["Retry-After"]) > 0
        assert server.get("/health").status_code == 200  # monitoring is not rate limited
    finally:
        assert server.stop() == 0


def test_refuses_public_bind_without_key(mirror: Mirror) -> None:
    env = {k: v for k, v in mirror.env.items() if k != "PROMETHEUS_API_KEY"}
    result = run_cli("serve", "--host", "0.0.0.0", "--port", "0", env=env, timeout=60)
    assert result.returncode == 2
    assert "PROMETHEUS_API_KEY" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_sigterm_finishes_in_flight_requests(mirror: Mirror) -> None:
    server = ApiServer(mirror, api_key=None)
    try:
        response = server.session.get(server.url + "/export?type=models", stream=True, timeout=60)
        lines = response.iter_lines()
        first = next(lines)
        server.process.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line]
        assert len(rest) + 1 == mirror.counts["models"] and json.loads(first)["id"]
        assert server.process.wait(20) == 0
    finally:
        server.stop()
    assert any("api_stopped" in line for line in server.stderr_lines)


# -- docs and the search page ---------------------------------------------------------------


def test_docs_and_openapi_served_locally(api: ApiServer) -> None:
    document = api.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    page = api.get("/docs")
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text and "//cdn" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs-init.js"):
        assert api.get(f"/docs/static/{asset}").status_code == 200
    assert_problem(api.get("/docs/static/..%2F..%2Fconfig.py"), 404)
    assert_problem(api.get("/ui/static/..%2Fapp.py"), 404)


def test_search_page_renders_and_escapes(api: ApiServer, mirror: Mirror) -> None:
    empty = api.get("/ui")
    assert empty.status_code == 200 and 'name="q"' in empty.text and "<script" not in empty.text
    page = api.get("/ui", params={"q": PLANT_WORD, "type": "models"})
    assert page.status_code == 200
    assert f'href="/ui/models/{BASE}"' in page.text and f'href="https://huggingface.co/{BASE}"' in page.text
    assert XSS in page.text and "<script>alert" not in page.text  # the planted XSS tag, never raw
    assert "Content-Security-Policy" in page.headers
    filtered = api.get("/ui", params={"q": PLANT_WORD, "quant_format": "gguf"}).text
    assert QUANT in filtered and TUNE not in filtered
    bad = api.get("/ui", params={"q": "x", "mode": "fuzzy"})
    assert bad.status_code == 400 and 'id="error"' in bad.text
    item = api.get(f"/ui/models/{BASE}").text
    assert "Quantizations of it" in item and f'href="/ui/models/{QUANT}"' in item
    assert "Fine-tunes of it" in item and f'href="/ui/papers/{mirror.paper_id}"' in item
    quant = api.get(f"/ui/models/{QUANT}").text
    assert "Base models" in quant and f'href="/ui/models/{BASE}"' in quant
    paper = api.get(f"/ui/papers/{mirror.paper_id}").text
    assert "Cited by" in paper and f'href="/ui/models/{BASE}"' in paper
    dataset_id = api.get("/datasets?limit=1").json()["items"][0]["id"]
    assert f"https://huggingface.co/datasets/{dataset_id}" in api.get(f"/ui/datasets/{dataset_id}").text
    xss = api.get(f"/ui/models/{XSS}").text
    assert "<script>alert" not in xss and "<b>bold</b>" not in xss and "&lt;script&gt;alert" in xss
    assert api.get("/ui/models/nobody/nothing").status_code == 404


def test_every_route_is_documented_and_every_write_is_guarded(mirror: Mirror) -> None:
    from core.api.app import create_app
    from core.api.auth import auth_of
    from core.config import load_config

    app = create_app(load_config(str(mirror.data_dir), env={}))
    document = app["openapi"]
    registered = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        path = route.resource.canonical
        registered.add((path, route.method.lower()))
        assert path in document["paths"], f"{route.method} {path} is not in /openapi.json"
        assert route.method.lower() in document["paths"][path], f"{route.method} {path} is not documented"
        if route.method not in ("GET", "HEAD", "OPTIONS"):
            assert auth_of(route.handler), f"{route.method} {path} needs @require_api_key or @auth_exempt"
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == registered
