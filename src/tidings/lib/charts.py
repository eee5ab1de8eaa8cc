"""Charts drawn on the server as inline SVG: no JavaScript, no CDN, readable without colour
(each chart has a title, a description, and the same figures in a table beside it).

Two forms share the geometry below: ``line_chart`` (and ``bars``) give a template the figures to
draw (the statistics dashboard), ``svg_line_chart`` gives the finished ``<figure>`` (the campaign
report)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # "x,y x,y ..." for <polyline>
    css: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    lines: tuple[Line, ...]
    y_ticks: tuple[tuple[float, str], ...]  # (y, label)
    x_ticks: tuple[tuple[float, str], ...]
    plot_left: int
    plot_right: int
    plot_bottom: int


def nice_max(value: int) -> int:
    """The top of a chart's value axis: ``value`` rounded up to 1, 2, 2.5 or 5 times a power of
    ten (at least 5)."""
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def series_peak(series: Sequence[tuple[str, Sequence[int], str]]) -> int:
    """The value axis' top for (label, values, css class) series."""
    return nice_max(max((max(values, default=0) for _, values, _ in series), default=0))


def x_position(left: float, inner_w: float, i: int, n: int) -> float:
    """The x of the ``i``-th of ``n`` evenly spaced points (one point: in the middle)."""
    return left + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)


def y_position(top: float, inner_h: float, value: float, peak: int) -> float:
    """The y of ``value`` on an axis from 0 (bottom) to ``peak`` (top)."""
    return top + inner_h - inner_h * value / peak


def line_chart(days: Sequence[date], series: Sequence[tuple[str, Sequence[int], str]]) -> LineChart:
    """Lines over days: ``series`` is (label, values, css class) each, one value per day."""
    peak = series_peak(series)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    n = len(days)

    def x(i: int) -> float:
        return x_position(LEFT, plot_w, i, n)

    def y(v: int) -> float:
        return y_position(TOP, plot_h, v, peak)

    lines = tuple(
        Line(label, " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values)), css)
        for label, values, css in series
    )
    y_ticks = tuple((y(peak * k // 4), f"{peak * k // 4:,}") for k in range(5))
    step = max(1, n // 6)
    x_ticks = tuple((x(i), days[i].strftime("%-d %b")) for i in range(0, n, step))
    return LineChart(WIDTH, HEIGHT, lines, y_ticks, x_ticks, LEFT, WIDTH - RIGHT, TOP + plot_h)


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    width: float  # percent of the longest bar


def bars(rows: Sequence[tuple[str, int]]) -> list[Bar]:
    peak = max((v for _, v in rows), default=0) or 1
    return [Bar(label, value, round(100 * value / peak, 1)) for label, value in rows]


def svg_line_chart(
    labels: list[str], series: list[tuple[str, list[int], str]], *, title: str
) -> SafeString:
    """A line chart as inline SVG (no script, no external file), with a title for screen
    readers; the page shows the same numbers in a table too.  ``series``: (name, values, CSS
    class)."""
    width, height = 720, 240
    left, right, top, bottom = 48, 12, 12, 36
    inner_w, inner_h = width - left - right, height - top - bottom
    n = len(labels)
    peak = series_peak(series)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        value = peak * i / 4
        y = top + inner_h - inner_h * i / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{value:g}</text>"
        )

    def x_of(i: int) -> float:
        return x_position(left, inner_w, i, n)

    if n:
        ticks = sorted({0, n - 1, *range(0, n, max(1, n // 6))})
        for i in ticks:
            if i < n and (i == n - 1 or n - 1 - i >= max(1, n // 12)):
                parts.append(
                    f'<text class="axis" x="{x_of(i):.1f}" y="{height - 12}" '
                    f'text-anchor="middle">{escape(labels[i])}</text>'
                )
    for name, values, css in series:
        points = " ".join(
            f"{x_of(i):.1f},{y_position(top, inner_h, v, peak):.1f}" for i, v in enumerate(values)
        )
        if n == 1:
            x, y = x_of(0), y_position(top, inner_h, values[0], peak)
            parts.append(f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
        elif n:
            parts.append(
                f'<polyline class="{css}" fill="none" points="{points}">'
                f"<title>{escape(name)}</title></polyline>"
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {css}" aria-hidden="true"></span>{escape(name)}</li>'
        for name, _, css in series
    )
    svg = "".join(parts)
    figure = f'<figure class="chart-figure">{svg}<ul class="legend">{legend}</ul></figure>'
    return mark_safe(figure)  # noqa: S308 - every value in it was escaped above
