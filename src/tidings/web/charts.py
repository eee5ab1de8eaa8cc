"""Charts drawn on the server as inline SVG: no JavaScript, no CDN, readable without colour
(each chart has a title, a description, and the same figures in a table beside it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

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


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def line_chart(days: Sequence[date], series: Sequence[tuple[str, Sequence[int], str]]) -> LineChart:
    """Lines over days: ``series`` is (label, values, css class) each, one value per day."""
    peak = _nice_max(max((max(values, default=0) for _, values, _ in series), default=0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    n = len(days)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return TOP + plot_h - plot_h * v / peak

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
