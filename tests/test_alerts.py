"""Watch and alert: rules, watches in the config, detection in the page transaction, messages,
grouping, and delivery to a fake Telegram Bot API over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.alerts import detection_hook
from core.alerts.message import (
    HTML,
    MARKDOWN_V2,
    PLAIN,
    Alert,
    GroupPolicy,
    alert_lines,
    group_lines,
    plan_batches,
    render,
)
from core.alerts.outbox import pending
from core.alerts.rules import (
    DIGEST,
    INSTANT,
    Query,
    author_watch,
    decide,
    format_size,
    match_query,
    parse_size,
    query_watch,
    repo_watch,
    tag_watch,
)
from core.alerts.sender import TelegramSender
from core.alerts.settings import AlertSettings
from core.alerts.watches import (
    WatchError,
    add_watch,
    load_watches,
    register_watches,
    remove_watch,
    use_watches,
    watches_from_mapping,
    watches_to_mapping,
)
from core.hub.records import parse_paper, parse_repo
from core.kinds import Kind
from core.store import connect, write_tx
from core.store.db import format_ts, utcnow
from core.store.items import Previous, write_page
from tests.fake_telegram import FakeTelegram, parse_html, parse_markdown_v2

OLD = "2020-01-01T00:00:00.000Z"


def model(repo_id: str, created: str | None = None, **fields) -> dict:
    now = created or utcnow()
    item = {"_id": "0" * 24, "id": repo_id, "likes": 0, "downloads": 0, "tags": [], "createdAt": now,
            "lastModified": now, "sha": "a" * 40}
    item.update(fields)
    return item


def rec(repo_id: str, **fields):
    return parse_repo(Kind.MODEL, model(repo_id, **fields))


@pytest.fixture(autouse=True)
def _pinned_watches():
    yield
    use_watches(None)


# -- rules ---------------------------------------------------------------------

def test_sizes() -> None:
    assert parse_size("7B") == 7_000_000_000
    assert parse_size("500m") == 500_000_000
    assert parse_size("1.5e9") == 1_500_000_000
    assert parse_size(None) is None
    assert format_size(7_241_000_000) == "7.2B"
    assert format_size(500_000_000) == "500M"
    assert format_size(8_000_000_000) == "8B"
    with pytest.raises(ValueError):
        parse_size("big")


def test_rule_matching() -> None:
    tags = ["gguf", "text-generation", "base_model:quantized:meta-llama/Llama-3-8B"]
    quant = rec("TheBloke/Llama-3-8B-GGUF", tags=tags,
                pipeline_tag="text-generation", library_name="gguf", safetensors={"total": 8_030_000_000})
    assert match_query(Query(authors=("thebloke",)), quant)
    assert not match_query(Query(authors=("unsloth",)), quant)
    assert match_query(Query(tags=("GGUF",)), quant)
    assert match_query(Query(tags=("text-generation",)), quant)
    assert match_query(Query(pipeline="text-generation"), quant)
    assert match_query(Query(base_model="meta-llama/Llama-3-8B", relation="quantized"), quant)
    assert not match_query(Query(base_model="meta-llama/Llama-3-8B", relation="finetune"), quant)
    assert match_query(Query(relation="quantized"), quant)
    assert match_query(Query(min_params=7_000_000_000, max_params=9_000_000_000), quant)
    assert not match_query(Query(max_params=7_000_000_000), quant)
    assert not match_query(Query(min_params=1), rec("x/no-size"))  # unknown size never matches a range
    assert match_query(Query(text="llama gguf"), quant)
    assert not match_query(Query(text="mistral"), quant)
    assert match_query(Query(authors=("TheBloke",), tags=("gguf",), text="8b"), quant)
    assert not match_query(Query(authors=("TheBloke",), kinds=(Kind.DATASET,)), quant)

    paper = parse_paper({"paper": {"id": "2509.04664", "title": "Why Language Models Hallucinate",
                                   "authors": [{"name": "Adam Kalai"}], "ai_keywords": ["LLM", "hallucination"],
                                   "publishedAt": "2025-09-04T00:00:00.000Z"}})
    assert match_query(Query(authors=("adam kalai",)), paper)
    assert match_query(Query(tags=("llm",)), paper)
    assert match_query(Query(text="hallucinate"), paper)
    assert not match_query(Query(pipeline="text-generation"), paper)


def test_decide_arming_and_commits() -> None:
    armed = "2025-06-01T00:00:00.000Z"
    watch = author_watch("TheBloke")
    before = rec("TheBloke/old-GGUF", created="2025-05-31T23:59:59.000Z")
    after = rec("TheBloke/new-GGUF", created="2025-06-01T00:00:01.000Z")
    assert decide(watch, armed, before, None) is None  # existed before the watch: never alerts
    decision = decide(watch, armed, after, None)
    assert decision and decision.key == "author:TheBloke|model|TheBloke/new-GGUF" and decision.event == "new"
    assert decide(watch, armed, rec("TheBloke/private", private=True), None) is None

    watched = repo_watch(Kind.MODEL, "Qwen/Qwen3-8B")
    repo = rec("Qwen/Qwen3-8B", created=OLD, sha="b" * 40)
    assert decide(watched, armed, repo, None) is None  # first sighting is a baseline
    prev = Previous(0, 0, None, "a" * 40, False)
    commit = decide(watched, armed, repo, prev)
    assert commit and commit.event == "commit" and commit.key.endswith("|" + "b" * 40)
    assert decide(watched, armed, repo, Previous(0, 0, None, "b" * 40, False)) is None


def test_broad_tags_default_to_digest() -> None:
    assert tag_watch("text-generation").mode == DIGEST
    assert tag_watch("qwen3").mode == INSTANT
    assert tag_watch("gguf", INSTANT).mode == INSTANT
    assert author_watch("TheBloke").mode == INSTANT
    assert query_watch("q", Query(tags=("gguf",))).mode == DIGEST
    assert query_watch("q", Query(tags=("gguf",), authors=("x",))).mode == INSTANT


# -- watches in the config file --------------------------------------------------

def test_watches_from_config_and_round_trip(tmp_path: Path) -> None:
    defaults = watches_from_mapping({})
    names = {w.name for w in defaults}
    assert "author:TheBloke" in names and "tag:text-generation" in names
    data = {
        "priority_authors": ["TheBloke", {"author": "Qwen", "mode": "digest"}],
        "priority_tags": ["gguf", {"tag": "qwen3", "mode": "digest"}],
        "priority_models": ["Qwen/Qwen3-8B", "datasets/HuggingFaceFW/fineweb"],
        "saved_queries": [{"name": "qwen-quants", "base_model": "Qwen/Qwen3-8B", "relation": "quantized",
                           "max_params": "9B", "kinds": ["models"]}],
    }
    watches = watches_from_mapping(data)
    by_name = {w.name: w for w in watches}
    assert by_name["author:Qwen"].mode == DIGEST
    assert by_name["repo:datasets/HuggingFaceFW/fineweb"].repo_kind is Kind.DATASET
    assert by_name["query:qwen-quants"].query.max_params == 9_000_000_000
    assert watches_from_mapping(watches_to_mapping(watches)) == watches
    with pytest.raises(WatchError):
        watches_from_mapping({"saved_queries": [{"name": "empty"}]})
    with pytest.raises(WatchError):
        watches_from_mapping({"priority_tags": [{"tag": "x", "mode": "sometimes"}]})

    path = tmp_path / "agent_config.json"
    path.write_text(json.dumps({"api": {"port": 9000}, "priority_authors": ["TheBloke"]}))
    add_watch(path, author_watch("unsloth"))
    add_watch(path, query_watch("small", Query(max_params=3_000_000_000)))
    with pytest.raises(WatchError):
        add_watch(path, author_watch("unsloth"))
    saved = json.loads(path.read_text())
    assert saved["api"] == {"port": 9000}  # other sections untouched
    assert saved["priority_authors"] == ["TheBloke", "unsloth"]
    assert remove_watch(path, "unsloth").name == "author:unsloth"
    assert remove_watch(path, "query:small").type == "query"
    assert [w.name for w in load_watches(path) if w.type == "author"] == ["author:TheBloke"]
    assert not list(tmp_path.glob("*.tmp"))


# -- detection inside the page transaction ----------------------------------------

def _write(conn: sqlite3.Connection, items: list[dict], kind: Kind = Kind.MODEL) -> None:
    with write_tx(conn):
        records = [parse_paper(i) if kind is Kind.PAPER else parse_repo(kind, i) for i in items]
        write_page(conn, kind, records, utcnow(), [detection_hook])


def _outbox(conn: sqlite3.Connection) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT watch, item_id, event, mode FROM alert_outbox ORDER BY id")]


def test_detection_no_flood_then_exactly_once(tmp_path: Path) -> None:
    use_watches([author_watch("TheBloke"), tag_watch("gguf"), repo_watch(Kind.MODEL, "Qwen/Qwen3-8B")])
    conn = connect(tmp_path / "db.sqlite")
    # First run: the back catalogue (created before the watches were armed) is mirrored silently.
    _write(conn, [model(f"TheBloke/old-{i}-GGUF", created=OLD, tags=["gguf"]) for i in range(50)]
           + [model("Qwen/Qwen3-8B", created=OLD)])
    assert _outbox(conn) == []
    time.sleep(0.01)
    fresh = model("TheBloke/New_Model*v2[1].5-GGUF", tags=["gguf"])
    _write(conn, [fresh, model("someone/else")])
    assert _outbox(conn) == [("author:TheBloke", fresh["id"], "new", INSTANT),
                             ("tag:gguf", fresh["id"], "new", DIGEST)]
    # Seen again by the crawler, the poll or a webhook: no second alert.
    _write(conn, [dict(fresh, likes=5)])
    _write(conn, [dict(fresh, tags=["gguf", "4-bit"])])
    assert len(_outbox(conn)) == 2
    # A watched repo's new commit alerts once per sha.
    _write(conn, [model("Qwen/Qwen3-8B", created=OLD, sha="c" * 40)])
    _write(conn, [model("Qwen/Qwen3-8B", created=OLD, sha="c" * 40, likes=3)])
    assert _outbox(conn)[-1] == ("repo:Qwen/Qwen3-8B", "Qwen/Qwen3-8B", "commit", INSTANT)
    assert len(_outbox(conn)) == 3


def test_repo_gaining_a_tag_later_alerts_once(tmp_path: Path) -> None:
    use_watches([tag_watch("qwen3")])
    conn = connect(tmp_path / "db.sqlite")
    with write_tx(conn):
        register_watches(conn, [tag_watch("qwen3")], "2020-01-01T00:00:00.000Z")
    created = utcnow()
    _write(conn, [model("a/empty", created=created)])  # created empty, tags arrive with the first push
    assert _outbox(conn) == []
    _write(conn, [model("a/empty", created=created, tags=["qwen3"], sha="b" * 40)])
    assert _outbox(conn) == [("tag:qwen3", "a/empty", "new", INSTANT)]


def test_removed_and_readded_watch_is_rearmed(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    with write_tx(conn):
        first = register_watches(conn, [author_watch("x")], "2025-01-01T00:00:00.000Z")
        register_watches(conn, [], "2025-02-01T00:00:00.000Z")
        again = register_watches(conn, [author_watch("x")], "2025-03-01T00:00:00.000Z")
    assert first["author:x"] < again["author:x"]


# -- messages ------------------------------------------------------------------------

def _alert(i: int, repo_id: str, watch: str = "author:TheBloke", group: str | None = None, **payload) -> Alert:
    base = {"author": repo_id.split("/")[0], "pipeline_tag": "text-generation", "library_name": "gguf",
            "num_parameters": 8_030_000_000, "quant_format": "gguf",
            "base_models": [["meta-llama/Llama-3_1-8B*[x].v2", "quantized"]]}
    base.update(payload)
    return Alert(i, watch, INSTANT, "model", repo_id, "new", watch.replace(":", " "), base, "a" * 40, group,
                 format_ts(datetime.now(UTC)))


NASTY = "The_Bloke/Llama*3[1].5_x-GGUF"


def test_message_escaping_html_and_markdown() -> None:
    lines = alert_lines([_alert(1, NASTY)])
    html_text = render(lines, HTML)
    plain, links = parse_html(html_text)
    assert NASTY in plain
    assert f"https://huggingface.co/{NASTY}" in links
    assert "GGUF quantization of meta-llama/Llama-3_1-8B*[x].v2" in plain
    assert "8B params" in plain and "by The_Bloke" in plain and "matched: author TheBloke" in plain
    md = render(lines, MARKDOWN_V2)
    md_plain, md_links = parse_markdown_v2(md)
    assert NASTY in md_plain and f"https://huggingface.co/{NASTY}" in md_links
    assert md_plain == plain
    assert NASTY in render(lines, PLAIN)
    # A dataset links with its prefix.
    dataset = Alert(2, "tag:x", INSTANT, "dataset", "a/b_c", "new", "tag x", {"author": "a"})
    assert "https://huggingface.co/datasets/a/b_c" in parse_html(render(alert_lines([dataset]), HTML))[1]


def test_grouping_plan() -> None:
    policy = GroupPolicy(threshold=3, window_seconds=600, hold_seconds=60)
    flood = [_alert(i, f"q/quant-{i}", group="base:X") for i in range(1, 6)]
    single = _alert(10, "other/model", group="author:other")
    batches = plan_batches([*flood, single], {}, {}, policy)
    assert [b.grouped for b in batches] == [True, False]
    assert batches[0].ids == [1, 2, 3, 4, 5]
    text, _ = parse_html(render(group_lines("base:X", flood), HTML))
    assert text.startswith("📦 5 new repos based on X")
    # Two watches matching one release: one message naming both rules.
    both = [_alert(20, "a/b", "author:a", group="author:a"), _alert(21, "a/b", "tag:qwen3", group="author:a")]
    (batch,) = plan_batches(both, {}, {}, policy)
    assert batch.ids == [20, 21] and not batch.grouped
    assert "author a; tag qwen3" in parse_html(render(batch.lines(), HTML))[0]
    # A source that already sent `threshold` messages in the window is held to gather its followers.
    held = [_alert(30, "q/late", group="base:X")]
    assert plan_batches(held, {"base:X": 3}, {30: 5.0}, policy) == []
    assert plan_batches(held, {"base:X": 3}, {30: 61.0}, policy)[0].ids == [30]


# -- delivery to a fake Telegram ---------------------------------------------------

def _settings(url: str, **overrides) -> AlertSettings:
    settings = AlertSettings(telegram_token="123:ABC", telegram_chat_id="42", telegram_api_base=url,
                             min_interval_seconds=0.0, send_timeout_seconds=1.0, backoff_base_seconds=0.05,
                             backoff_cap_seconds=0.3, idle_poll_seconds=0.05, daily_digest_hour_utc=None)
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


def _queue(db: Path, ids: list[str], watch=None) -> None:
    watch = watch or author_watch("TheBloke")
    use_watches([watch])
    conn = connect(db)
    with write_tx(conn):
        register_watches(conn, [watch], OLD)
    _write(conn, [model(i, author=i.split("/")[0]) for i in ids])
    conn.close()


async def _drain(sender: TelegramSender, fake: FakeTelegram, expect: int, timeout: float = 15) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    deadline = time.monotonic() + timeout
    while len(fake.messages) < expect and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_sender_delivers_once_and_marks_sent(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, ["TheBloke/a_b*c[1].d-GGUF", "TheBloke/second"])
    async with FakeTelegram() as fake:
        await _drain(TelegramSender(db, _settings(fake.url)), fake, 2)
        assert [m.parse_mode for m in fake.messages] == [HTML, HTML]
        assert "TheBloke/a_b*c[1].d-GGUF" in fake.messages[0].plain
        # A restart finds nothing left to send.
        await _drain(TelegramSender(db, _settings(fake.url)), fake, 3, timeout=0.5)
        assert len(fake.messages) == 2
    conn = connect(db)
    statuses = [tuple(r) for r in conn.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status")]
    assert statuses == [("sent", 2)]


async def test_sender_markdown_v2(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, ["TheBloke/x_y*z[2].gguf"])
    async with FakeTelegram() as fake:
        await _drain(TelegramSender(db, _settings(fake.url, parse_mode=MARKDOWN_V2)), fake, 1)
        assert fake.messages[0].parse_mode == MARKDOWN_V2
        assert "TheBloke/x_y*z[2].gguf" in fake.messages[0].plain


async def test_429_retry_after_is_honoured(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, ["TheBloke/one"])
    async with FakeTelegram() as fake:
        fake.rate_limit_next(1, retry_after=1)
        started = time.time()
        await _drain(TelegramSender(db, _settings(fake.url)), fake, 1)
        assert fake.attempts == 2 and len(fake.messages) == 1
        assert fake.messages[0].at - started >= 1.0  # waited retry_after, not the short backoff


async def test_5xx_and_timeouts_are_retried(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, ["TheBloke/one", "TheBloke/two"])
    async with FakeTelegram(hang_seconds=3) as fake:
        fake.fail_next(2, status=502)
        fake.fail_next(1, status=500)
        fake.hang_next(1)
        await _drain(TelegramSender(db, _settings(fake.url)), fake, 2)
        assert len(fake.messages) == 2 and fake.attempts == 6
        assert [m.plain.splitlines()[0] for m in fake.messages] == ["🆕 New model: TheBloke/one",
                                                                   "🆕 New model: TheBloke/two"]


async def test_outage_then_delivery_in_order(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, [f"TheBloke/m{i}" for i in range(3)])
    fake = FakeTelegram()
    await fake.start()
    fake.set_down(True)
    stop = asyncio.Event()
    sender = TelegramSender(db, _settings(fake.url))
    task = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(1.5)  # several failed attempts, capped backoff
    assert fake.attempts >= 3 and not fake.messages
    conn = connect(db)
    assert len(pending(conn, INSTANT)) == 3
    assert conn.execute("SELECT max(attempts) FROM alert_outbox").fetchone()[0] >= 1
    fake.set_down(False)
    deadline = time.monotonic() + 10
    while len(fake.messages) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    await fake.close()
    assert [m.plain.splitlines()[0].rsplit(" ", 1)[1] for m in fake.messages] == [
        "TheBloke/m0", "TheBloke/m1", "TheBloke/m2"]


async def test_stop_returns_promptly_during_retry_wait(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, ["TheBloke/one"])
    async with FakeTelegram() as fake:
        fake.rate_limit_next(1, retry_after=30)
        stop = asyncio.Event()
        task = asyncio.create_task(TelegramSender(db, _settings(fake.url)).run(stop))
        while fake.attempts < 1:
            await asyncio.sleep(0.02)
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 1.0
    assert len(pending(connect(db), INSTANT)) == 1  # still queued, not lost


async def test_flood_is_grouped_into_one_message(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    watch = author_watch("TheBloke")
    use_watches([watch])
    conn = connect(db)
    with write_tx(conn):
        register_watches(conn, [watch], OLD)
    _write(conn, [model(f"TheBloke/Qwen3-8B-{q}-GGUF", tags=["gguf", "base_model:quantized:Qwen/Qwen3-8B"])
                  for q in ("Q2_K", "Q3_K", "Q4_K_M", "Q5_K_M", "Q8_0")])
    async with FakeTelegram() as fake:
        await _drain(TelegramSender(db, _settings(fake.url)), fake, 1)
        await asyncio.sleep(0)
        assert len(fake.messages) == 1
        assert fake.messages[0].plain.startswith("📦 5 new repos based on Qwen/Qwen3-8B")
        assert "TheBloke/Qwen3-8B-Q4_K_M-GGUF" in fake.messages[0].plain
    assert [r[0] for r in conn.execute("SELECT DISTINCT status FROM alert_outbox")] == ["grouped"]


async def test_digest_collects_digest_mode_watches(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    watch = tag_watch("text-generation")
    assert watch.mode == DIGEST
    use_watches([watch])
    conn = connect(db)
    with write_tx(conn):
        register_watches(conn, [watch], OLD)
        conn.execute("INSERT INTO alert_state VALUES ('digest:last_at', ?)",
                     (format_ts(datetime.now(UTC) - timedelta(hours=2)),))
    _write(conn, [model(f"org/tg-{i}", tags=["text-generation"]) for i in range(8)])
    async with FakeTelegram() as fake:
        await _drain(TelegramSender(db, _settings(fake.url)), fake, 1)
        assert len(fake.messages) == 1
        text = fake.messages[0].plain
        assert text.startswith("🗞 Digest: 8 new matches") and "tag text-generation: 8" in text
    assert [r[0] for r in conn.execute("SELECT DISTINCT status FROM alert_outbox")] == ["digested"]


async def test_pacing_allows_a_burst_then_one_per_interval(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    _queue(db, [f"TheBloke/p{i}" for i in range(4)])
    async with FakeTelegram() as fake:
        await _drain(TelegramSender(db, _settings(fake.url, min_interval_seconds=0.3, burst=2,
                                                           group=GroupPolicy(threshold=100))), fake, 4)
        at = [m.at for m in fake.messages]
        assert at[1] - at[0] < 0.2  # the burst
        assert at[2] - at[1] >= 0.2 and at[3] - at[2] >= 0.25  # then paced


async def test_json_webhook_sink_discord_and_slack_compatible(tmp_path: Path) -> None:
    from aiohttp import web

    from core.alerts.sender import WebhookSender
    from core.alerts.settings import WebhookTarget

    received: list[dict] = []
    calls = {"n": 0}

    async def hook(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:  # Discord's 429: seconds in the body
            return web.json_response({"message": "rate limited", "retry_after": 0.3}, status=429)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    db = tmp_path / "db.sqlite"
    connect(db).close()
    sender = WebhookSender(db, WebhookTarget(url), _settings("http://unused"))
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(0.2)  # the cursor starts at the current end: history is not replayed
    _queue(db, ["TheBloke/a_b*c-GGUF"])
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    await runner.cleanup()
    assert calls["n"] == 2 and len(received) == 1
    body = received[0]
    assert "TheBloke/a\\_b\\*c\\-GGUF" in body["content"]  # Discord markdown, escaped
    assert "<https://huggingface.co/TheBloke/a_b*c-GGUF|TheBloke/a_b*c-GGUF>" in body["text"]  # Slack mrkdwn
    assert body["alert"]["id"] == "TheBloke/a_b*c-GGUF" and body["alert"]["watches"] == ["author:TheBloke"]


async def test_daily_digest_with_trends_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.trends

    monkeypatch.setattr(core.trends, "digest_section", lambda conn: "models  org/rising_model*1  (+50 likes/day)",
                        raising=False)
    db = tmp_path / "db.sqlite"
    _queue(db, ["TheBloke/daily-one"])
    conn = connect(db)
    with write_tx(conn):
        conn.execute("UPDATE alert_outbox SET status = 'sent'")
        conn.execute("INSERT INTO alert_state VALUES ('daily:last_date', '2000-01-01')")
    async with FakeTelegram() as fake:
        await _drain(TelegramSender(db, _settings(fake.url, daily_digest_hour_utc=0)), fake, 1)
        text = fake.messages[0].plain
    assert text.startswith("📅 Daily digest") and "author TheBloke: 1" in text
    assert "org/rising_model*1" in text and "TheBloke/daily-one" in text
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert conn.execute("SELECT value FROM alert_state WHERE key = 'daily:last_date'").fetchone()[0] == today


def test_a_broken_watch_never_blocks_the_crawl(tmp_path: Path) -> None:
    broken = query_watch("broken", Query(text=5))  # type: ignore[arg-type]  # what validation would refuse
    use_watches([broken, author_watch("TheBloke")])
    conn = connect(tmp_path / "db.sqlite")
    _write(conn, [model("TheBloke/x")])  # the hook fails inside; the page still commits
    assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == 1
    assert _outbox(conn) == []
    use_watches([author_watch("TheBloke")])
    _write(conn, [model("TheBloke/y")])
    assert [r[1] for r in _outbox(conn)] == ["TheBloke/y"]
