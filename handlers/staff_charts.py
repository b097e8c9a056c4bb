"""Server-rendered SVG charts for the console (no script, no CDN): stacked day bars, horizontal bars and
a share bar. Each chart scales to its container (``viewBox``, width 100%), labels every element in a
``<title>`` (hover or long-press), and is always shown next to a table with the numbers behind it."""

from __future__ import annotations

from collections.abc import Sequence

from handlers.staff_html import Markup, e, join

FONT = 13
GREEN, AMBER, RED, BLUE, GREY = "#2e8540", "#d68a00", "#b3121b", "#0b4f9c", "#8a96a3"


def _svg(width: int, height: int, body: Markup, label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{e(label)}" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{e(label)}</title>{body}</svg>"
    )


def _text(
    x: float, y: float, text: object, anchor: str = "start", size: int = FONT, fill: str = "#1f2329"
) -> Markup:
    return Markup(
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">{e(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str) -> Markup:
    return Markup(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" fill="{fill}">'
        f"<title>{e(title)}</title></rect>"
    )


def legend(series: Sequence[tuple[str, str]], x: float = 0, y: float = 14) -> Markup:
    """Coloured squares with names, in a row."""
    parts, cx = [], x
    for name, color in series:
        parts.append(_rect(cx, y - 10, 12, 12, color, name))
        parts.append(_text(cx + 16, y, name))
        cx += 16 + FONT * len(name) + 18
    return join(parts)


def stacked_days(
    days: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], label: str, width: int = 640
) -> Markup:
    """One stacked bar per day (``series``: name, colour, one value per day)."""
    height, top, bottom, left = 240, 30, 36, 34
    plot_h, plot_w = height - top - bottom, width - left - 6
    totals = [sum(values[i] for _, _, values in series) for i in range(len(days))]
    peak = max([*totals, 1])
    step = plot_w / max(len(days), 1)
    bar = step * 0.7
    parts = [legend([(n, c) for n, c, _ in series], left)]
    for frac in (0.0, 0.5, 1.0):  # value grid
        y = top + plot_h * (1 - frac)
        parts.append(
            Markup(f'<line x1="{left}" x2="{width - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d5dbe3"/>')
        )
        parts.append(_text(left - 4, y + 4, round(peak * frac), "end", 11, "#5c6670"))
    every = 1 if len(days) <= 10 else 2
    for i, day in enumerate(days):
        x, y = left + i * step + (step - bar) / 2, top + plot_h
        for name, color, values in series:
            h = plot_h * values[i] / peak
            y -= h
            if values[i]:
                parts.append(_rect(x, y, bar, h, color, f"{day} {name} {values[i]}"))
        if totals[i]:
            parts.append(_text(x + bar / 2, y - 3, totals[i], "middle", 11))
        if i % every == 0 or i == len(days) - 1:
            parts.append(_text(x + bar / 2, height - bottom + 16, day[5:], "middle", 11, "#5c6670"))
    return _svg(width, height, join(parts), label)


def hbars(rows: Sequence[tuple[str, float, str]], label: str, color: str = BLUE, width: int = 640) -> Markup:
    """Horizontal bars: (name, value, the value as text), largest scale first row's unit."""
    row_h, left = 30, 150
    height = max(len(rows), 1) * row_h + 8
    peak = max([v for _, v, _ in rows] + [1e-9])
    parts = []
    for i, (name, value, text) in enumerate(rows):
        y = 4 + i * row_h
        parts.append(_text(left - 8, y + 18, name[:11], "end"))
        w = (width - left - 130) * value / peak
        parts.append(_rect(left, y + 4, w, row_h - 10, color, f"{name} {text}"))
        parts.append(_text(left + w + 6, y + 18, text))
    return _svg(width, height, join(parts), label)


def share_bar(parts_: Sequence[tuple[str, str, int]], label: str, width: int = 640) -> Markup:
    """One 100% bar split by share (name, colour, count), with the percentages written under it."""
    height = 64
    if not sum(n for _, _, n in parts_):
        return _svg(width, 30, _text(0, 20, "（暂无数据）", fill="#5c6670"), label)
    total = sum(n for _, _, n in parts_)
    out, x = [], 0.0
    for name, color, n in parts_:
        w = width * n / total
        if n:
            out.append(_rect(x, 4, w, 26, color, f"{name} {n}（{n / total:.0%}）"))
        x += w
    captions, cx = [], 0.0
    for name, color, n in parts_:
        text = f"{name} {n / total:.0%}"
        captions.append(_rect(cx, 42, 12, 12, color, name))
        captions.append(_text(cx + 16, 53, text))
        cx += 16 + FONT * len(text) * 0.75 + 20
    return _svg(width, height, join([*out, *captions]), label)
