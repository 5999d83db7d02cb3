"""`python main.py watch`: manage watches (authors, tags, repos, saved queries) and see their alerts.

    watch list [--json]
    watch add author TheBloke [--mode instant|digest]
    watch add tag gguf                       (broad tags default to the hourly digest)
    watch add repo Qwen/Qwen3-8B             (alert on each new commit; datasets/…, spaces/… for other kinds)
    watch add query small-qwen --base-model Qwen/Qwen3-8B --relation quantized --max-params 9B
    watch remove author:TheBloke             (full name, slug, or the bare value when unambiguous)
    watch alerts [--watch NAME] [--status pending] [--json]
    watch run [--no-poll] [--no-send]        (the poll and the sender in the foreground; the daemon runs them)
    watch test                               (send one test message to the configured Telegram chat)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from core.cli import UsageError
from core.cli.output import print_json, print_table
from core.config import Config, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="{list,add,remove,alerts,run,test}")
    listing = sub.add_parser("list", help="list watches, when each was armed, and their alert counts")
    listing.add_argument("--json", action="store_true", help="print JSON")

    add = sub.add_parser("add", help="add a watch (armed now: existing repos never alert)")
    add.add_argument("type", choices=("author", "tag", "repo", "query"))
    add.add_argument("value", help="the author, tag, repo id or query name")
    add.add_argument("--mode", choices=("instant", "digest"),
                     help="instant message, or the hourly digest (default: digest for broad tags, else instant)")
    query = add.add_argument_group("saved query criteria (type query; all given must match)")
    query.add_argument("--author", action="append", help="author (repeatable: any of them)")
    query.add_argument("--tag", action="append", help="tag (repeatable: any of them)")
    query.add_argument("--pipeline", help="pipeline tag, e.g. text-generation")
    query.add_argument("--base-model", help="derived from this base model")
    query.add_argument("--relation", choices=("finetune", "adapter", "merge", "quantized"),
                       help="how it derives from the base model")
    query.add_argument("--min-params", help="at least this many parameters (7B, 500M)")
    query.add_argument("--max-params", help="at most this many parameters")
    query.add_argument("--text", help="words that must all appear in the id, description or tags")
    query.add_argument("--kinds", help="comma-separated kinds (default: all)")
    add.add_argument("--json", action="store_true", help="print the new watch as JSON")

    remove = sub.add_parser("remove", help="remove a watch")
    remove.add_argument("name", help="full name (author:TheBloke), slug, or bare value when unambiguous")
    remove.add_argument("--json", action="store_true", help="print the removed watch as JSON")

    alerts = sub.add_parser("alerts", help="recent alerts from the outbox")
    alerts.add_argument("--watch", help="only this watch (full name)")
    alerts.add_argument("--status", choices=("pending", "sent", "grouped", "digested", "failed"))
    alerts.add_argument("--limit", type=int, default=20)
    alerts.add_argument("--json", action="store_true", help="print JSON")

    run_parser = sub.add_parser("run", help="run the watch poll and the sender in the foreground")
    run_parser.add_argument("--no-poll", action="store_true", help="only deliver what is queued")
    run_parser.add_argument("--no-send", action="store_true", help="only detect (queue alerts)")
    run_parser.add_argument("--interval", type=float, help="seconds between polls (default: watch_interval_seconds)")

    sub.add_parser("test", help="send one test message to the configured Telegram chat")


def _arm(config: Config, name: str | None, *, remove: bool = False) -> str | None:
    from core.store import connect, write_tx
    from core.store.db import utcnow

    conn = connect(config.db_path)
    try:
        with write_tx(conn):
            if remove:
                conn.execute("DELETE FROM alert_watches WHERE name = ?", (name,))
                return None
            now = utcnow()
            conn.execute("INSERT OR REPLACE INTO alert_watches (name, added_at) VALUES (?, ?)", (name, now))
            return now
    finally:
        conn.close()


def _list(config: Config, as_json: bool) -> int:
    from core.alerts.watches import config_file, load_watches, watch_to_dict
    from core.store import connect

    watches = load_watches(config_file(config))
    conn = connect(config.db_path)
    armed = dict(conn.execute("SELECT name, added_at FROM alert_watches").fetchall())
    counts: dict[str, dict[str, int]] = {}
    for watch, status, n in conn.execute("SELECT watch, status, count(*) FROM alert_outbox GROUP BY 1, 2"):
        counts.setdefault(watch, {})[status] = n
    conn.close()
    items = []
    for watch in watches:
        data = watch_to_dict(watch, armed.get(watch.name))
        data["alerts"] = counts.get(watch.name, {})
        items.append(data)
    if as_json:
        print_json({"config": str(config_file(config)), "watches": items})
        return 0
    rows = [[w["name"], w["mode"], w["describe"], (w["added_at"] or "not yet")[:19],
             sum(w["alerts"].values())] for w in items]
    print_table(["watch", "mode", "matches", "armed", "alerts"], rows)
    print(f"\n{len(items)} watches in {config_file(config)}")
    return 0


def _add(config: Config, args: argparse.Namespace) -> int:
    from core.alerts.watches import add_watch, build_watch, config_file, watch_to_dict

    spec: dict[str, Any] = {}
    if args.type == "query":
        spec = {"author": args.author, "tag": args.tag, "pipeline": args.pipeline, "base_model": args.base_model,
                "relation": args.relation, "min_params": args.min_params, "max_params": args.max_params,
                "text": args.text, "kinds": args.kinds.split(",") if args.kinds else None}
    elif any(getattr(args, k) for k in ("author", "tag", "pipeline", "base_model", "relation", "min_params",
                                        "max_params", "text", "kinds")):
        raise UsageError("query criteria (--author, --tag, ...) only go with `watch add query NAME`")
    watch = build_watch(args.type, args.value, args.mode, spec)
    add_watch(config_file(config), watch)
    added_at = _arm(config, watch.name)
    if args.json:
        print_json(watch_to_dict(watch, added_at))
    else:
        print(f"added {watch.name} ({watch.mode}): {watch.describe()}")
    return 0


def _remove(config: Config, args: argparse.Namespace) -> int:
    from core.alerts.watches import config_file, remove_watch, watch_to_dict

    removed = remove_watch(config_file(config), args.name)
    _arm(config, removed.name, remove=True)
    if args.json:
        print_json({"removed": watch_to_dict(removed)})
    else:
        print(f"removed {removed.name}")
    return 0


def _alerts(config: Config, args: argparse.Namespace) -> int:
    from core.store import connect

    if args.limit < 1:
        raise UsageError("--limit must be ≥ 1")
    conn = connect(config.db_path)
    sql = ("SELECT id, watch, kind, item_id, event, status, created_at, sent_at, attempts, last_error "
           "FROM alert_outbox WHERE 1 = 1")
    values: list[Any] = []
    if args.watch:
        sql += " AND watch = ?"
        values.append(args.watch)
    if args.status:
        sql += " AND status = ?"
        values.append(args.status)
    sql += " ORDER BY id DESC LIMIT ?"
    values.append(args.limit)
    rows = [dict(r) for r in conn.execute(sql, values)]
    conn.close()
    if args.json:
        print_json({"alerts": rows})
        return 0
    print_table(["id", "watch", "kind", "item", "event", "status", "detected", "sent"],
                [[r["id"], r["watch"], r["kind"], r["item_id"], r["event"], r["status"], r["created_at"][:19],
                  (r["sent_at"] or "")[:19]] for r in rows])
    return 0


async def _run(config: Config, poll: bool, send: bool) -> None:
    from core.alerts import reload_watches, run_sender, run_watch_poll
    from core.hub.client import HubClient

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_watches, config)
    tasks = []
    client = HubClient.from_config(config) if poll else None
    if client is not None:
        tasks.append(run_watch_poll(config, client, stop))
    if send:
        tasks.append(run_sender(config, stop))
    try:
        await asyncio.gather(*tasks)
    finally:
        if client is not None:
            await client.close()


async def _test_message(config: Config) -> int:
    from core.alerts.settings import settings_from_config
    from core.alerts.telegram import DeliveryError, TelegramSink

    settings = settings_from_config(config)
    if not settings.telegram_enabled:
        raise UsageError("set TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID (or telegram.bot_token / chat_id)")
    sink = TelegramSink(settings.telegram_token or "", settings.telegram_chat_id or "",
                        api_base=settings.telegram_api_base, parse_mode=settings.parse_mode)
    try:
        message_id = await sink.send("✅ PROMETHEUS can reach this chat.", parse_mode=None)
    except DeliveryError as exc:
        print(f"main.py watch test: failed: {exc}")
        return 1
    finally:
        await sink.close()
    print(f"sent (message_id {message_id})")
    return 0


def run(args: argparse.Namespace) -> int:
    from core.alerts.watches import WatchError

    config = config_from_args(args)
    action = getattr(args, "action", None) or "list"
    try:
        if action == "list":
            return _list(config, getattr(args, "json", False))
        if action == "add":
            return _add(config, args)
        if action == "remove":
            return _remove(config, args)
        if action == "alerts":
            return _alerts(config, args)
    except WatchError as exc:
        raise UsageError(str(exc)) from exc
    if action == "test":
        return asyncio.run(_test_message(config))
    if action == "run":
        from core.logs import configure_logging

        if args.no_poll and args.no_send:
            raise UsageError("nothing to run: --no-poll and --no-send together")
        if args.interval is not None:
            if args.interval <= 0:
                raise UsageError("--interval must be positive")
            config.watch_interval_seconds = args.interval
        configure_logging(component="watch")
        asyncio.run(_run(config, poll=not args.no_poll, send=not args.no_send))
        return 0
    raise UsageError(f"unknown action {action!r}")
