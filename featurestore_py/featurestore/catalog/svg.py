"""Small inline SVG plots for the catalog: no library, no network, readable without JavaScript.

Every text that reaches the SVG is escaped; every number is formatted here."""

from __future__ import annotations

from html import escape
from typing import Sequence

WIDTH, HEIGHT, PAD = 520, 180, 36
INK, BAR, LINE, LIMIT = "#1d2330", "#5477c4", "#5477c4", "#c0392b"


def _number(value: float) -> str:
    return f"{value:,.4g}"


def _frame(body: str, title: str) -> str:
    return (f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{body}</svg>')


def histogram(edges: Sequence[float], counts: Sequence[int], title: str) -> str:
    """Bars for len(counts) bins between edges[0] and edges[-1]."""
    if not counts or not sum(counts):
        return _empty(title)
    top = max(counts)
    width = (WIDTH - 2 * PAD) / len(counts)
    bars = []
    for index, count in enumerate(counts):
        height = (HEIGHT - 2 * PAD) * count / top
        x, y = PAD + index * width, HEIGHT - PAD - height
        bars.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" height="{height:.1f}" fill="{BAR}">'
                    f'<title>{_number(edges[index])} to {_number(edges[index + 1])}: {count:,}</title></rect>')
    axis = (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="{INK}"/>'
            f'<text x="{PAD}" y="{HEIGHT - PAD + 16}" font-size="11">{_number(edges[0])}</text>'
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" font-size="11" text-anchor="end">{_number(edges[-1])}</text>'
            f'<text x="{PAD}" y="{PAD - 8}" font-size="11">{top:,} rows in the fullest bin</text>')
    return _frame("".join(bars) + axis, title)


def top_values(values: Sequence[tuple[str, int]], title: str) -> str:
    """Horizontal bars for the most frequent values."""
    if not values:
        return _empty(title)
    top = max(count for _, count in values) or 1
    rows, row_height = [], min(28, (HEIGHT - 2 * 8) / len(values))
    for index, (value, count) in enumerate(values):
        y = 8 + index * row_height
        width = (WIDTH - 200) * count / top
        rows.append(f'<text x="150" y="{y + row_height * 0.65:.1f}" font-size="12" text-anchor="end">'
                    f'{escape(str(value)[:24])}</text>'
                    f'<rect x="158" y="{y + 2:.1f}" width="{width:.1f}" height="{row_height - 6:.1f}" fill="{BAR}"/>'
                    f'<text x="{162 + width:.1f}" y="{y + row_height * 0.65:.1f}" font-size="11">{count:,}</text>')
    return _frame("".join(rows), title)


def series(points: Sequence[tuple[str, float | None]], title: str, limit: float | None = None,
           percent: bool = False) -> str:
    """A line over time (x: the points' labels in order, usually dates), a dot per point, and a
    dashed threshold when given. Missing values leave a gap."""
    present = [value for _, value in points if value is not None]
    if not present:
        return _empty(title)
    low, high = min(present + ([limit] if limit is not None else [])), max(present + ([limit] if limit is not None else []))
    if high == low:  # a flat line: a small range around it (a share never below 0)
        pad = 0.05 if percent else max(abs(low) * 0.1, 1.0)
        low, high = (max(low - pad, 0.0) if percent else low - pad), high + pad
    span_x = max(len(points) - 1, 1)

    def xy(index, value):
        return (PAD + (WIDTH - 2 * PAD) * index / span_x,
                HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value - low) / (high - low))

    def label(value):
        return f"{value:.1%}" if percent else _number(value)

    dots, path = [], []
    for index, (name, value) in enumerate(points):
        if value is None:
            continue
        x, y = xy(index, value)
        path.append(f"{x:.1f},{y:.1f}")
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE}"><title>{escape(name)}: {label(value)}'
                    f'</title></circle>')
    body = f'<polyline points="{" ".join(path)}" fill="none" stroke="{LINE}" stroke-width="2"/>' + "".join(dots)
    if limit is not None:
        _, y = xy(0, limit)
        body += (f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" stroke="{LIMIT}" stroke-dasharray="5 4"/>'
                 f'<text x="{WIDTH - PAD}" y="{y - 4:.1f}" font-size="11" text-anchor="end" fill="{LIMIT}">'
                 f'threshold {label(limit)}</text>')
    body += (f'<text x="{PAD}" y="{HEIGHT - PAD + 16}" font-size="11">{escape(points[0][0])}</text>'
             f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 16}" font-size="11" text-anchor="end">'
             f'{escape(points[-1][0])}</text>'
             f'<text x="4" y="{PAD}" font-size="11">{label(high)}</text>'
             f'<text x="4" y="{HEIGHT - PAD}" font-size="11">{label(low)}</text>')
    return _frame(body, title)


def _empty(title: str) -> str:
    return _frame(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="13" fill="#5b6475">'
                  "no data yet</text>", title)
