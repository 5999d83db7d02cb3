"""Atom feeds: one per watch (`/feeds/{watch}.atom`), built from the outbox. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from core.alerts.message import PLAIN, Alert, alert_lines, item_url, render
from core.alerts.rules import Watch

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_TYPE = "application/atom+xml; charset=utf-8"


def _title(alert: Alert) -> str:
    if alert.kind == "paper":
        return f"New paper: {alert.payload.get('title') or alert.item_id}"
    if alert.event == "commit":
        return f"New commit on {alert.kind} {alert.item_id}" + (f" ({alert.sha[:7]})" if alert.sha else "")
    return f"New {alert.kind}: {alert.item_id}"


def atom_feed(watch: Watch, alerts: Sequence[Alert], self_url: str, now: str) -> bytes:
    """The feed for `watch`; entries newest first. Entry ids are the outbox dedup keys, so stable."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    sub(feed, "id", f"urn:prometheus:watch:{watch.slug}")
    sub(feed, "title", f"PROMETHEUS: {watch.describe()}")
    sub(feed, "updated", alerts[0].created_at if alerts else now)
    sub(feed, "link", rel="self", href=self_url)
    author = sub(feed, "author")
    sub(author, "name", "PROMETHEUS")
    sub(feed, "generator", "PROMETHEUS")
    for alert in alerts:
        entry = sub(feed, "entry")
        key = f"{alert.watch}|{alert.kind}|{alert.item_id}" + (f"|{alert.sha}" if alert.event == "commit" else "")
        sub(entry, "id", "urn:prometheus:alert:" + key.replace(" ", "%20"))
        sub(entry, "title", _title(alert))
        sub(entry, "updated", alert.created_at)
        sub(entry, "published", alert.payload.get("created_at") or alert.created_at)
        sub(entry, "link", rel="alternate", href=item_url(alert.kind, alert.item_id))
        if alert.payload.get("author"):
            sub(sub(entry, "author"), "name", str(alert.payload["author"]))
        sub(entry, "summary", render(alert_lines([alert]), PLAIN))
        sub(entry, "category", term=alert.kind)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")
