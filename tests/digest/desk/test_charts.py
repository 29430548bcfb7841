"""Server-side SVG charts: right numbers, round grid values, escaped text, empty data drawn."""

import re

import pytest
from lxml import etree

from digest.desk.charts import Series, bar_chart, line_chart, nice_ceiling


@pytest.mark.parametrize("value", [0, 1, 3, 7, 24, 25, 99, 307, 1001, 54321])
def test_grid_steps_are_whole_numbers_above_the_maximum(value):
    top = nice_ceiling(value)
    assert top >= value and top % 4 == 0
    assert top <= max(8, value * 2)  # not wastefully high


def svg_of(html: str):
    return etree.fromstring(re.search(r"<svg.*</svg>", html, re.S).group(0))


def test_bar_chart_stacks_the_series_with_their_values():
    html = bar_chart(
        title="Digests <per> day",
        labels=["1 Nov", "2 Nov"],
        series=[Series("sent", [3, 5]), Series("failed", [1, 0])],
    )
    svg = svg_of(html)
    rects = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert [(r.get("data-series"), r.get("data-value")) for r in rects] == [
        ("sent", "3"),
        ("failed", "1"),
        ("sent", "5"),
    ]
    # The first bar's two segments are as tall together as the second bar (4 + … vs 5: scaled alike).
    first = sum(float(r.get("height")) for r in rects[:2])
    assert abs(first / float(rects[2].get("height")) - 4 / 5) < 0.01
    assert "Digests &lt;per&gt; day" in html and "<per>" not in html
    assert "sent (8)" in html and "failed (1)" in html  # the legend's totals
    assert svg.get("role") == "img"


def test_line_chart_has_a_point_per_label_and_empty_data_draws_axes():
    html = line_chart(title="Readers", labels=["a", "b", "c"], series=[Series("subscribed", [0, 2, 1])])
    svg = svg_of(html)
    points = svg.findall("{http://www.w3.org/2000/svg}circle")
    assert [p.get("data-value") for p in points] == ["0", "2", "1"]
    empty = svg_of(bar_chart(title="Nothing", labels=[], series=[]))
    assert empty.findall("{http://www.w3.org/2000/svg}line")  # axes and grid, no bars
