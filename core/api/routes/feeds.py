"""`GET /feeds/{watch}.atom`: an Atom feed of one watch's alerts (any feed reader can follow a watch)."""

from __future__ import annotations

import sqlite3

from aiohttp import web

from core.alerts.feeds import FEED_TYPE, atom_feed
from core.alerts.message import Alert
from core.alerts.outbox import alerts_for_watch
from core.alerts.watches import WatchError, config_file, load_watches, resolve_name
from core.api.db import table_exists
from core.api.errors import not_found
from core.api.openapi import operation, path_param, response
from core.store.db import utcnow

routes = web.RouteTableDef()
FEED_SIZE = 50


def _entries(conn: sqlite3.Connection, watch_name: str) -> list[Alert]:
    if not table_exists(conn, "alert_outbox"):
        return []
    return alerts_for_watch(conn, watch_name, FEED_SIZE)


@routes.get("/feeds/{watch}.atom")
async def watch_feed(request: web.Request) -> web.Response:
    try:
        watch = resolve_name(load_watches(config_file(request.app["config"])), request.match_info["watch"])
    except WatchError as exc:
        raise not_found(str(exc)) from None
    alerts = await request.app["db"].read(_entries, watch.name)
    body = atom_feed(watch, alerts, str(request.url), utcnow())
    return web.Response(body=body, headers={"Content-Type": FEED_TYPE})


OPENAPI = {
    "/feeds/{watch}.atom": {"get": operation(
        "Atom feed of a watch", tags=["alerts"],
        parameters=[path_param("watch", "the watch's slug (author-TheBloke) or name (see GET /watches)")],
        responses={200: response("Atom 1.0, newest first", {"type": "string"},
                                 media_type="application/atom+xml")},
    )},
}
