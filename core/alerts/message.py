"""Pure message formatting and batching: alerts in, text for a parse mode out.

A message is built once as lines of spans (plain, bold, italic, code, link) and
rendered for the target: Telegram `HTML` (default) or `MarkdownV2`, Discord or
Slack markdown, or plain text. Escaping happens only in the renderer, so a repo
called `a_b*c[1].gguf` can never break a message.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.alerts.rules import format_size, repo_path
from core.kinds import Kind

HUB_URL = "https://huggingface.co"
HTML = "HTML"
MARKDOWN_V2 = "MarkdownV2"
DISCORD = "discord"
SLACK = "slack"
PLAIN = "plain"
PARSE_MODES = (HTML, MARKDOWN_V2)
# Telegram's limit is 4096 characters after entity parsing; stay clear of it.
MAX_CHARS = 3800
GROUP_LIST_LIMIT = 15
DIGEST_ITEMS_PER_WATCH = 5


@dataclass(frozen=True)
class Span:
    text: str
    style: str | None = None  # bold | italic | code | link
    url: str | None = None


Line = list[Span]


def _md_escape(text: str, entity: str | None = None) -> str:
    # python-telegram-bot's own escaping; imported late so stats and the API need not load PTB.
    from telegram.helpers import escape_markdown

    return escape_markdown(text, version=2, entity_type=entity)


def _render_span(span: Span, target: str) -> str:
    text = span.text
    if target == HTML:
        body = html.escape(text, quote=False)
        if span.style == "link":
            return f'<a href="{html.escape(span.url or "", quote=True)}">{body}</a>'
        tag = {"bold": "b", "italic": "i", "code": "code"}.get(span.style or "")
        return f"<{tag}>{body}</{tag}>" if tag else body
    if target == MARKDOWN_V2:
        if span.style == "link":
            return f"[{_md_escape(text)}]({_md_escape(span.url or '', 'text_link')})"
        if span.style == "code":
            return f"`{_md_escape(text, 'code')}`"
        mark = {"bold": "*", "italic": "_"}.get(span.style or "", "")
        return f"{mark}{_md_escape(text)}{mark}"
    if target == DISCORD:
        body = "".join("\\" + c if c in "\\*_~`|>[]()#-" else c for c in text)
        if span.style == "link":
            return f"[{body}](<{span.url}>)"
        if span.style == "code":
            return f"`{text.replace('`', '')}`"
        mark = {"bold": "**", "italic": "*"}.get(span.style or "", "")
        return f"{mark}{body}{mark}"
    if target == SLACK:
        body = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if span.style == "link":
            return f"<{span.url}|{body.replace('|', '¦')}>"
        mark = {"bold": "*", "italic": "_", "code": "`"}.get(span.style or "", "")
        return f"{mark}{body}{mark}"
    if span.style == "link":
        return f"{text} ({span.url})" if span.url and span.url not in text else text
    return text


def render(lines: Sequence[Line], target: str = HTML) -> str:
    return "\n".join("".join(_render_span(s, target) for s in line) for line in lines)


def render_limited(lines: Sequence[Line], target: str, more: str = "…", limit: int = MAX_CHARS) -> str:
    """Drop whole lines from the end (keeping the last `footer` line) until the text fits."""
    text = render(lines, target)
    if len(text) <= limit:
        return text
    kept = list(lines[:-1])
    footer = lines[-1]
    while kept and len(render([*kept, [Span(more)], footer], target)) > limit:
        kept.pop()
    return render([*kept, [Span(more)], footer], target)


# -- what an alert carries --------------------------------------------------------

@dataclass
class Alert:
    """An outbox row, as the formatter and the batcher see it."""

    id: int
    watch: str
    mode: str
    kind: str
    item_id: str
    event: str  # new | commit
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)
    sha: str | None = None
    group_key: str | None = None
    created_at: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str | None]:
        """Several watches matching one release make one message."""
        return self.kind, self.item_id, self.event, self.sha


def item_url(kind: str, item_id: str) -> str:
    k = Kind(kind)
    if k is Kind.PAPER:
        return f"{HUB_URL}/papers/{item_id}"
    return f"{HUB_URL}/{repo_path(k, item_id)}"


def lineage_text(payload: dict[str, Any]) -> tuple[str, list[str]] | None:
    """("GGUF quantization of", [base ids]) for a model with a base, else None."""
    bases = [b for b in payload.get("base_models") or [] if b and b[0]]
    if not bases:
        return None
    relation = bases[0][1]
    ids = [b[0] for b in bases]
    if relation == "quantized":
        fmt = (payload.get("quant_format") or "").upper()
        return (f"{fmt} quantization of" if fmt else "Quantization of"), ids[:1]
    if relation == "finetune":
        return "Fine-tune of", ids[:1]
    if relation == "adapter":
        return "Adapter for", ids[:1]
    if relation == "merge" or len(ids) > 1:
        return "Merge of", ids
    return "Based on", ids[:1]


def _facts(payload: dict[str, Any]) -> list[str]:
    facts = []
    for key in ("pipeline_tag", "library_name"):
        if payload.get(key):
            facts.append(str(payload[key]))
    if payload.get("sdk"):
        facts.append(f"{payload['sdk']} Space")
    size = format_size(payload.get("num_parameters"))
    if size:
        facts.append(f"{size} params")
    if payload.get("gated"):
        facts.append("gated")
    return facts


def alert_lines(alerts: Sequence[Alert]) -> list[Line]:
    """One release (possibly matched by several watches) as message lines."""
    first = alerts[0]
    p = first.payload
    url = item_url(first.kind, first.item_id)
    lines: list[Line] = []
    if first.kind == Kind.PAPER.value:
        lines.append([Span("📄 New paper: "), Span(p.get("title") or first.item_id, "link", url)])
        authors = p.get("authors") or []
        if authors:
            shown = ", ".join(authors[:4]) + (" et al." if len(authors) > 4 else "")
            lines.append([Span(f"by {shown}")])
    else:
        if first.event == "commit":
            head = [Span(f"🔄 New commit on {first.kind} "), Span(first.item_id, "link", url)]
            if first.sha:
                head += [Span(" "), Span(first.sha[:7], "code")]
            lines.append(head)
        else:
            lines.append([Span(f"🆕 New {first.kind}: "), Span(first.item_id, "link", url)])
        facts = [f"by {p['author']}"] if p.get("author") else []
        facts += _facts(p)
        if facts:
            lines.append([Span(" · ".join(facts))])
        lineage = lineage_text(p)
        if lineage:
            label, ids = lineage
            line: Line = [Span(label + " ")]
            for i, base in enumerate(ids[:4]):
                if i:
                    line.append(Span(", "))
                line.append(Span(base, "link", item_url(Kind.MODEL.value, base)))
            lines.append(line)
    reasons = list(dict.fromkeys(a.reason for a in alerts))
    lines.append([Span("matched: " + "; ".join(reasons), "italic")])
    return lines


def group_title(key: str | None, count: int) -> str:
    if key and key.startswith("base:"):
        return f"📦 {count} new repos based on {key[5:]}"
    if key and key.startswith("author:"):
        return f"📦 {count} new repos by {key[7:]}"
    return f"📦 {count} new releases"


def group_lines(key: str | None, alerts: Sequence[Alert]) -> list[Line]:
    """One message for a flood from one base model or author."""
    releases = _by_identity(alerts)
    lines: list[Line] = [[Span(group_title(key, len(releases)), "bold")]]
    for members in releases[:GROUP_LIST_LIMIT]:
        a = members[0]
        extra = " · ".join(f for f in (_lineage_short(a.payload), format_size(a.payload.get("num_parameters"))) if f)
        line: Line = [Span("• "), Span(a.item_id, "link", item_url(a.kind, a.item_id))]
        if a.event == "commit":
            line.append(Span(" (new commit)"))
        if extra:
            line.append(Span(f" — {extra}"))
        lines.append(line)
    if len(releases) > GROUP_LIST_LIMIT:
        lines.append([Span(f"… and {len(releases) - GROUP_LIST_LIMIT} more")])
    reasons = list(dict.fromkeys(a.reason for a in alerts))
    lines.append([Span("matched: " + "; ".join(reasons[:5]), "italic")])
    return lines


def _lineage_short(payload: dict[str, Any]) -> str | None:
    if payload.get("quant_format"):
        return str(payload["quant_format"]).upper()
    lineage = lineage_text(payload)
    return lineage[0].split(" ")[0].lower() if lineage else None


def _by_identity(alerts: Sequence[Alert]) -> list[list[Alert]]:
    merged: dict[tuple, list[Alert]] = {}
    for alert in alerts:
        merged.setdefault(alert.identity, []).append(alert)
    return list(merged.values())


def digest_lines(alerts: Sequence[Alert], window_text: str, describe: dict[str, str] | None = None) -> list[Line]:
    """The periodic digest of `digest`-mode watches: counts per watch and the first few items."""
    describe = describe or {}
    by_watch: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_watch.setdefault(alert.watch, []).append(alert)
    total = len({a.identity for a in alerts})
    lines: list[Line] = [[Span(f"🗞 Digest: {total} new match{'es' if total != 1 else ''} {window_text}", "bold")]]
    for watch, members in sorted(by_watch.items(), key=lambda kv: -len(kv[1])):
        lines.append([Span(f"{describe.get(watch, watch)}: {len(members)}", "bold")])
        for a in members[:DIGEST_ITEMS_PER_WATCH]:
            label = a.payload.get("title") or a.item_id
            lines.append([Span("• "), Span(label, "link", item_url(a.kind, a.item_id))])
        if len(members) > DIGEST_ITEMS_PER_WATCH:
            lines.append([Span(f"… and {len(members) - DIGEST_ITEMS_PER_WATCH} more")])
    lines.append([Span("digest of watches in digest mode", "italic")])
    return lines


# -- batching ---------------------------------------------------------------------

@dataclass
class Batch:
    """What one outgoing message covers."""

    alerts: list[Alert]
    group_key: str | None = None
    grouped: bool = False

    @property
    def ids(self) -> list[int]:
        return [a.id for a in self.alerts]

    def lines(self) -> list[Line]:
        if self.grouped:
            return group_lines(self.group_key, self.alerts)
        return alert_lines(self.alerts)


@dataclass(frozen=True)
class GroupPolicy:
    threshold: int = 3  # more than this many from one base/author in the window → one grouped message
    window_seconds: float = 600.0
    hold_seconds: float = 60.0  # once a source is flooding, gather its next alerts this long


def plan_batches(pending: Sequence[Alert], recent: dict[str, int], ages: dict[int, float],
                 policy: GroupPolicy) -> list[Batch]:
    """Split pending instant alerts into messages, oldest first.

    `recent` counts alerts per group key already delivered inside the window;
    `ages` is each pending alert's age in seconds. A group with more than
    `threshold` pending goes out as one message now; a group that already sent
    `threshold` in the window waits `hold_seconds` to gather its followers.
    Returns only batches that are ready.
    """
    releases = _by_identity(pending)
    by_group: dict[str | None, list[list[Alert]]] = {}
    for members in releases:
        by_group.setdefault(members[0].group_key, []).append(members)
    batches: list[Batch] = []
    for key, group in by_group.items():
        if key is None:
            batches.extend(Batch(members) for members in group)
            continue
        flat = [a for members in group for a in members]
        if len(group) > policy.threshold:
            batches.append(Batch(flat, key, grouped=True))
        elif recent.get(key, 0) >= policy.threshold:
            oldest = max(ages.get(a.id, 0.0) for a in flat)
            if oldest >= policy.hold_seconds:
                batches.append(Batch(flat, key, grouped=len(group) > 1) if len(group) > 1 else Batch(flat, key))
        else:
            batches.extend(Batch(members, key) for members in group)
    batches.sort(key=lambda b: min(b.ids))
    return batches
