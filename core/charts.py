"""Server-side SVG charts: a line chart with axes and a bare sparkline.

Pure functions returning SVG text, so pages need no JavaScript and no CDN and
the output can be tested as XML. Every piece of text that came from data is
escaped; numbers are formatted by us.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (x, y); x is unix seconds for time charts
    color: str | None = None


def _scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    if hi <= lo:
        return (out_lo + out_hi) / 2
    return out_lo + (value - lo) * (out_hi - out_lo) / (hi - lo)


def _compact(value: float) -> str:
    """1234567 -> 1.2M: axis labels must stay short."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.0f}" if float(value).is_integer() or magnitude >= 10 else f"{value:.2g}"


def _path(points: Sequence[tuple[float, float]], xr: tuple[float, float], yr: tuple[float, float],
          box: tuple[float, float, float, float], *, step: bool) -> str:
    """Polyline path data. `step`: counters hold their value until the next change."""
    left, top, right, bottom = box
    out: list[str] = []
    prev_y: float | None = None
    for x, y in points:
        px = _scale(x, *xr, left, right)
        py = _scale(y, *yr, bottom, top)
        if not out:
            out.append(f"M{px:.1f},{py:.1f}")
        else:
            if step and prev_y is not None:
                out.append(f"H{px:.1f}")
            out.append(f"V{py:.1f}" if step else f"L{px:.1f},{py:.1f}")
        prev_y = py
    return " ".join(out)


def sparkline(values: Sequence[float], *, width: int = 120, height: int = 24, color: str = PALETTE[0],
              label: str = "") -> str:
    """A tiny inline trend line; an empty chart (just the frame) for fewer than two points."""
    title = f"<title>{escape(label)}</title>" if label else ""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(label or "sparkline")}>{title}')
    if len(values) < 2:
        return head + "</svg>"
    lo, hi = min(values), max(values)
    pts = [(float(i), float(v)) for i, v in enumerate(values)]
    d = _path(pts, (0.0, float(len(values) - 1)), (lo, hi), (1, 2, width - 1, height - 2), step=False)
    return head + f'<path d="{d}" fill="none" stroke={quoteattr(color)} stroke-width="1.5"/></svg>'


def line_chart(series: Sequence[Series], *, title: str = "", width: int = 640, height: int = 240,
               time_axis: bool = True, step: bool = True) -> str:
    """A chart with one y axis per series (left for the first, right for the second).

    Downloads and likes differ by orders of magnitude, so sharing an axis would
    flatten likes into the floor; two axes keep both readable.
    """
    margin_l, margin_r, margin_t, margin_b = 56, 56, 28 if title else 12, 28
    box = (margin_l, margin_t, width - margin_r, height - margin_b)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(title or "chart")} '
             f'font-family="sans-serif" font-size="11">']
    if title:
        parts.append(f"<title>{escape(title)}</title>")
        parts.append(f'<text x="{width / 2:.0f}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>')
    parts.append(f'<rect x="{box[0]}" y="{box[1]}" width="{box[2] - box[0]}" height="{box[3] - box[1]}" '
                 f'fill="none" stroke="#ccc"/>')
    xs = [x for s in series for x, _ in s.points]
    if not xs:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#666">'
                     f'no history yet</text></svg>')
        return "".join(parts)
    xr = (min(xs), max(xs))
    for i, s in enumerate(series[:2]):
        ys = [y for _, y in s.points] or [0.0]
        # Counters start at zero: anchor the axis there unless the values are far above it.
        lo, hi = min(ys), max(ys)
        lo = 0.0 if lo >= 0 and lo < (hi - lo) * 4 else lo
        if hi == lo:
            hi = lo + 1
        color = s.color or PALETTE[i % len(PALETTE)]
        if len(s.points) == 1:
            cx = _scale(s.points[0][0], *xr, box[0], box[2])
            cy = _scale(s.points[0][1], lo, hi, box[3], box[1])
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill={quoteattr(color)}/>')
        elif s.points:
            d = _path(s.points, xr, (lo, hi), box, step=step)
            parts.append(f'<path d="{d}" fill="none" stroke={quoteattr(color)} stroke-width="1.8"/>')
        axis_x, anchor = (box[0] - 4, "end") if i == 0 else (box[2] + 4, "start")
        for value in (lo, (lo + hi) / 2, hi):
            y = _scale(value, lo, hi, box[3], box[1])
            parts.append(f'<text x="{axis_x}" y="{y + 4:.1f}" text-anchor="{anchor}" fill={quoteattr(color)}>'
                         f"{escape(_compact(value))}</text>")
        legend_x = box[0] + 8 + i * 140
        parts.append(f'<text x="{legend_x}" y="{box[1] + 14}" fill={quoteattr(color)}>{escape(s.label)}</text>')
    if time_axis:
        for x in (xr[0], xr[1]):
            label = datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%d %H:%M")
            px = _scale(x, *xr, box[0], box[2])
            anchor = "start" if x == xr[0] else "end"
            parts.append(f'<text x="{px:.1f}" y="{height - 8}" text-anchor="{anchor}" fill="#666">'
                         f"{escape(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)
