"""Charts as SVG strings, drawn on the server: no JavaScript, no chart library.

Pure functions of their series. Every text is escaped; colours come from CSS classes
(``s-<series>``) in the console's stylesheet, so the page's Content-Security-Policy
needs no inline styles. Each bar and point carries a ``<title>``, which browsers show
on hover and screen readers read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from router.adapters.web.humane import time_unit

WIDTH = 560
HEIGHT = 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 24, 32, 34
_MAX_X_LABELS = 8
WIDE = 1100  # a chart across the whole page


@dataclass(frozen=True)
class Series:
    name: str  # shown in the legend and the hover titles
    key: str  # css class suffix: s-<key>
    values: Sequence[float | None]  # one per label; None: nothing that day


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 up to a round number at or above ``top``, in about ``count`` round steps (at
    most one more): 1, 2, 2.5 or 5 times a power of ten."""
    if top <= 0:
        return [0.0, 1.0]
    magnitude = 10 ** math.floor(math.log10(top / count))
    for m in (1, 2, 2.5, 5, 10, 20):
        step = m * magnitude
        steps = math.ceil(top / step - 1e-9)
        if steps <= count + 1:
            return [round(i * step, 10) for i in range(steps + 1)]
    raise AssertionError("unreachable: 20 x magnitude always fits")


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") if value != int(value) else f"{int(value)}"


class _Frame:
    """The plot area, the axes and the legend shared by both kinds of chart."""

    def __init__(
        self, title: str, labels: Sequence[str], ticks: list[float], unit: str, width: int
    ) -> None:
        self.title = title
        self.labels = labels
        self.ticks = ticks
        self.unit = unit
        self.width = width
        self.x0, self.x1 = _LEFT, width - _RIGHT
        self.y0, self.y1 = HEIGHT - _BOTTOM, _TOP  # y grows downwards in SVG

    def y(self, value: float) -> float:
        top = self.ticks[-1] or 1.0
        return self.y0 - (self.y0 - self.y1) * (value / top)

    def slot(self, index: int) -> tuple[float, float]:
        """Left edge and width of the index-th label's slot on the x axis."""
        width = (self.x1 - self.x0) / max(len(self.labels), 1)
        return self.x0 + index * width, width

    def open(self, series: Sequence[Series]) -> list[str]:
        chart_id = "chart-" + "".join(c for c in self.title.lower() if c.isalnum())[:24]
        out = [
            f'<svg class="chart" viewBox="0 0 {self.width} {HEIGHT}" role="img" '
            f'aria-labelledby="{chart_id}" xmlns="http://www.w3.org/2000/svg">',
            f'<title id="{chart_id}">{escape(self.title)}</title>',
        ]
        # y axis: grid lines with their values
        for tick in self.ticks:
            y = self.y(tick)
            out.append(
                f'<line class="grid" x1="{self.x0}" x2="{self.x1}" y1="{y:.1f}" y2="{y:.1f}"/>'
            )
            label = _number(tick) + (f" {self.unit}" if self.unit and tick else "")
            out.append(
                f'<text class="tick y" x="{self.x0 - 6}" y="{y + 4:.1f}" '
                f'text-anchor="end">{escape(label)}</text>'
            )
        out.append(
            f'<line class="axis" x1="{self.x0}" x2="{self.x0}" y1="{self.y1}" y2="{self.y0}"/>'
        )
        out.append(
            f'<line class="axis" x1="{self.x0}" x2="{self.x1}" y1="{self.y0}" y2="{self.y0}"/>'
        )
        # x axis: at most a handful of labels, evenly spread back from the last one
        most = _MAX_X_LABELS * self.width // WIDTH
        every = max(1, math.ceil(len(self.labels) / most))
        for i in range(len(self.labels) - 1, -1, -every):
            label = self.labels[i]
            left, width = self.slot(i)
            out.append(
                f'<text class="tick x" x="{left + width / 2:.1f}" y="{self.y0 + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
        # legend
        x = self.x0
        for s in series:
            out.append(
                f'<rect class="key s-{escape(s.key)}" x="{x}" y="8" width="10" height="10"/>'
            )
            out.append(f'<text class="legend" x="{x + 14}" y="17">{escape(s.name)}</text>')
            x += 30 + 9 * len(s.name)  # room for the name at a phone's larger type
        return out

    def empty(self) -> str:
        x = (self.x0 + self.x1) / 2
        y = (self.y0 + self.y1) / 2
        return (
            f'<text class="empty" x="{x:.1f}" y="{y:.1f}" text-anchor="middle">'
            "No data in this window</text>"
        )


def bar_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], width: int = WIDTH
) -> str:
    """Grouped bars, one group per label (a day), one bar per series (counts)."""
    _check(labels, series)
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    frame = _Frame(title, labels, nice_ticks(top), "", width)
    out = frame.open(series)
    if top <= 0:
        out.append(frame.empty())
    for i, label in enumerate(labels):
        left, span = frame.slot(i)
        gap = span * 0.15
        bar = (span - 2 * gap) / max(len(series), 1)
        for j, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            y = frame.y(value)
            out.append(
                f'<rect class="bar s-{escape(s.key)}" x="{left + gap + j * bar:.1f}" '
                f'y="{y:.1f}" width="{max(bar - 1, 1):.1f}" height="{frame.y0 - y:.1f}">'
                f"<title>{escape(label)} · {escape(s.name)}: {_number(value)}</title></rect>"
            )
    out.append("</svg>")
    return "\n".join(out)


def duration_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    describe: Callable[[float], str],
    width: int = WIDTH,
) -> str:
    """Lines of durations in seconds (gaps where a day has none), in a unit that fits
    the largest; each point's title says its value in words (``describe``)."""
    _check(labels, series)
    top = max((v for s in series for v in s.values if v is not None), default=0.0)
    unit, per = time_unit(top)
    frame = _Frame(title, labels, nice_ticks(top / per), unit, width)
    out = frame.open(series)
    if top <= 0:
        out.append(frame.empty())
    for s in series:
        runs: list[list[tuple[float, float, int, float]]] = [[]]
        for i, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            left, span = frame.slot(i)
            runs[-1].append((left + span / 2, frame.y(value / per), i, value))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in run)
                out.append(f'<polyline class="line s-{escape(s.key)}" points="{points}"/>')
            for x, y, i, value in run:
                out.append(
                    f'<circle class="point s-{escape(s.key)}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                    f"<title>{escape(labels[i])} · {escape(s.name)}: "
                    f"{escape(describe(value))}</title></circle>"
                )
    out.append("</svg>")
    return "\n".join(out)


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r}: {len(s.values)} values, {len(labels)} labels")
