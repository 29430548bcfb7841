"""Charts for the editors' dashboard, drawn on the server as inline SVG.

No JavaScript and no chart library: the admin works without a CDN, on a phone, in a
browser with scripts off, and a test can read the numbers in the markup. Every value
is escaped; each bar and point carries a <title> (its tooltip) with its exact figure.
"""

from dataclasses import dataclass
from math import ceil, log10

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# Colours that stay distinct for the common kinds of colour blindness (Okabe–Ito), and read on
# the admin's light and dark themes alike. Okabe–Ito's black is the page's text colour instead
# (currentColor): black on the light theme, near white on the dark one, never black on black.
INK = "currentColor"
PALETTE = {
    "active": "#009E73",
    "pending": "#56B4E9",
    "paused": "#E69F00",
    "suppressed": INK,
    "sent": "#009E73",
    "deferred": "#E69F00",
    "failed": "#D55E00",
    "skipped": "#999999",
    "queued": "#56B4E9",
    "subscribed": "#0072B2",
    "confirmed": "#009E73",
    "unsubscribed": "#D55E00",
    "immediate": "#CC79A7",
    "daily": "#0072B2",
    "weekly": "#E69F00",
    "fortnightly": "#009E73",
    "monthly": "#D55E00",
}

WIDTH, HEIGHT = 480, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 30


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]

    @property
    def colour(self) -> str:
        return PALETTE.get(self.name, INK)


def nice_ceiling(value: int) -> int:
    """Round a maximum up so that each of the four grid steps is a round whole number (1, 2, 2.5, 5 × 10ⁿ…)."""
    quarter = max(value, 1) / 4
    power = 10 ** int(log10(quarter)) if quarter >= 1 else 1
    for step in (1, 2, 2.5, 3, 4, 5, 6, 8, 10):
        candidate = step * power
        if candidate >= quarter and candidate == int(candidate):
            return int(candidate) * 4
    return 40 * power  # unreachable: 10 * power >= quarter


def _axes(top_value: int, labels: list[str], *, label_every: int) -> list[str]:
    """Horizontal grid lines with their values, and the x labels under the plot."""
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = top_value * i / 4
        y = TOP + plot_h - plot_h * i / 4
        text = f"{value:,.0f}"
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd" stroke-width="1" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{text}</text>'
        )
    plot_w = WIDTH - LEFT - RIGHT
    slot = plot_w / max(1, len(labels))
    for i, label in enumerate(labels):
        if i % label_every == 0:
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" class="tick">{escape(label)}</text>'
            )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{HEIGHT - BOTTOM}" y2="{HEIGHT - BOTTOM}" stroke="#666" class="axis"/>'
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#666" class="axis"/>'
    )
    return parts


def _legend(series: list[Series]) -> str:
    items = [
        format_html(
            '<span class="legend-item"><span class="swatch" style="background:{}"></span>{} ({})</span>',
            s.colour,
            s.name,
            f"{sum(s.values):,}",
        )
        for s in series
    ]
    return format_html('<p class="chart-legend">{}</p>', mark_safe("".join(items)))


def _svg(title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _label_every(count: int) -> int:
    # About six labels fit under a phone-width chart without overlapping.
    return max(1, ceil(count / 6))


def bar_chart(*, title: str, labels: list[str], series: list[Series]) -> SafeString:
    """Draw stacked bars, one per label, with axes, grid values, a legend and a tooltip per segment."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top_value = nice_ceiling(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    bar_w = max(1.0, slot * 0.7)
    body = _axes(top_value, labels, label_every=_label_every(len(labels)))
    for i, label in enumerate(labels):
        x = LEFT + slot * i + (slot - bar_w) / 2
        base = 0
        for s in series:
            value = s.values[i]
            if not value:
                continue
            y = TOP + plot_h - plot_h * (base + value) / top_value
            h = plot_h * value / top_value
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}" '
                f'data-series="{escape(s.name)}" data-value="{value}">'
                f"<title>{escape(label)}: {value:,} {escape(s.name)}</title></rect>"
            )
            base += value
    return format_html('<figure class="chart-box">{}{}</figure>', mark_safe(_svg(title, body)), _legend(series))


def line_chart(*, title: str, labels: list[str], series: list[Series]) -> SafeString:
    """Draw one line per series over the labels, with a dot and tooltip on every point."""
    top_value = nice_ceiling(max((v for s in series for v in s.values), default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    body = _axes(top_value, labels, label_every=_label_every(len(labels)))
    for s in series:
        points = [
            (LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value / top_value) for i, value in enumerate(s.values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2" '
            f'data-series="{escape(s.name)}"/>'
        )
        for (x, y), label, value in zip(points, labels, s.values, strict=True):
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.colour}" data-value="{value}">'
                f"<title>{escape(label)}: {value:,} {escape(s.name)}</title></circle>"
            )
    return format_html('<figure class="chart-box">{}{}</figure>', mark_safe(_svg(title, body)), _legend(series))
