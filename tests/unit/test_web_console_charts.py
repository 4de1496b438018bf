"""The console's SVG charts: pure functions of their series, checked by content."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from router.adapters.web.charts import WIDTH, Series, bar_chart, duration_chart, nice_ticks
from router.adapters.web.humane import duration

SVG = "{http://www.w3.org/2000/svg}"
DAYS = ["01 Mar", "02 Mar", "03 Mar", "04 Mar"]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def _all(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    found = root.iter(SVG + tag)
    return [e for e in found if cls is None or cls in (e.get("class") or "").split()]


@pytest.mark.parametrize(
    ("top", "ticks"),
    [(0, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]), (22, [0, 5, 10, 15, 20, 25]),
     (0.4, [0, 0.1, 0.2, 0.3, 0.4]), (1000, [0, 200, 400, 600, 800, 1000])],
)  # fmt: skip
def test_nice_ticks_reach_the_top_in_round_steps(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == ticks


def test_bar_chart_has_axes_ticks_legend_and_one_bar_per_value() -> None:
    svg = bar_chart(
        "Pages and incidents per day",
        DAYS,
        [Series("pages", "pages", [3, 0, 5, 2]), Series("incidents", "incidents", [1, 0, 0, 1])],
    )
    root = _parse(svg)
    assert root.get("viewBox") == f"0 0 {WIDTH} 230"
    assert root.get("role") == "img"
    assert root.find(SVG + "title").text == "Pages and incidents per day"
    assert len(_all(root, "line", "axis")) == 2
    y_ticks = [t.text for t in _all(root, "text", "y")]
    assert y_ticks == ["0", "1", "2", "3", "4", "5"]
    assert [t.text for t in _all(root, "text", "x")] == list(reversed(DAYS))
    assert [t.text for t in _all(root, "text", "legend")] == ["pages", "incidents"]
    pages = _all(root, "rect", "s-pages")
    bars = [r for r in pages if "bar" in r.get("class", "")]
    assert len(bars) == 3  # a zero draws no bar
    titles = [r.find(SVG + "title").text for r in _all(root, "rect", "bar")]
    assert titles == ["01 Mar · pages: 3", "01 Mar · incidents: 1", "03 Mar · pages: 5",
                      "04 Mar · pages: 2", "04 Mar · incidents: 1"]  # fmt: skip
    # taller bars for bigger values, all standing on the x axis at the same baseline
    heights = {r.find(SVG + "title").text: float(r.get("height")) for r in bars}
    assert (
        heights["03 Mar · pages: 5"] > heights["01 Mar · pages: 3"] > heights["04 Mar · pages: 2"]
    )
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 1) for r in bars}
    assert len(bottoms) == 1
    assert "style=" not in svg and "<script" not in svg


def test_chart_text_is_escaped() -> None:
    svg = bar_chart('<b>&"x"', ["<a>", "d&d"], [Series("x<y", 'k"><script>', [1, 2])])
    root = _parse(svg)
    assert root.find(SVG + "title").text == '<b>&"x"'
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;a&gt;" in svg and "d&amp;d" in svg


def test_empty_chart_says_so() -> None:
    for svg in (
        bar_chart("Nothing", DAYS, [Series("pages", "pages", [0, 0, 0, 0])]),
        duration_chart("Nothing", [], [Series("decide", "decide", [])], duration),
    ):
        root = _parse(svg)
        assert [t.text for t in _all(root, "text", "empty")] == ["No data in this window"]
        assert not _all(root, "rect", "bar") and not _all(root, "circle")


def test_duration_chart_picks_a_unit_and_breaks_lines_at_gaps() -> None:
    svg = duration_chart(
        "Time to decide",
        DAYS,
        [Series("decide", "decide", [120.0, 300.0, None, 1500.0])],
        duration,
    )
    root = _parse(svg)
    minutes = ["0", "5 min", "10 min", "15 min", "20 min", "25 min"]
    assert [t.text for t in _all(root, "text", "y")] == minutes
    points = _all(root, "circle", "point")
    assert [p.find(SVG + "title").text for p in points] == [
        "01 Mar · decide: 2 min", "02 Mar · decide: 5 min", "04 Mar · decide: 25 min",
    ]  # fmt: skip
    (line,) = _all(root, "polyline")  # the gap on 03 Mar ends the line; 04 Mar stands alone
    assert len(line.get("points").split()) == 2
    ys = [float(p.get("cy")) for p in points]
    assert ys[0] > ys[1] > ys[2]  # longer is higher up


@pytest.mark.parametrize(
    ("values", "ticks"),
    [([5400.0, 10800.0], ["0", "1 h", "2 h", "3 h"]), ([86400.0 * 3], ["0", "1 d", "2 d", "3 d"])],
)
def test_duration_chart_in_hours_and_days(values: list[float], ticks: list[str]) -> None:
    svg = duration_chart("t", DAYS[: len(values)], [Series("r", "resolve", values)], duration)
    assert [t.text for t in _all(_parse(svg), "text", "y")] == ticks


def test_many_days_get_few_labels_and_the_last_is_always_shown() -> None:
    days = [f"{d:02d} Mar" for d in range(1, 31)]
    svg = duration_chart("t", days, [Series("d", "decide", [60.0] * 30)], duration)
    labels = [t.text for t in _all(_parse(svg), "text", "x")]
    assert labels[0] == "30 Mar"
    assert 4 <= len(labels) <= 8


def test_series_must_fit_the_labels() -> None:
    with pytest.raises(ValueError, match="3 values, 4 labels"):
        bar_chart("t", DAYS, [Series("pages", "pages", [1, 2, 3])])


def test_coordinates_stay_inside_the_view_box() -> None:
    svg = bar_chart("t", DAYS, [Series("p", "pages", [1, 9, 4, 7])], width=900)
    for x in re.findall(r' x="([-0-9.]+)"', svg):
        assert 0 <= float(x) <= 900
    for y in re.findall(r' y="([-0-9.]+)"', svg):
        assert 0 <= float(y) <= 230
