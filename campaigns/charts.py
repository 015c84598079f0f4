"""A stacked bar chart of bounces over time, laid out here and drawn as inline SVG.

No JavaScript and no CDN: the template only places rectangles and labels computed here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Bootstrap-like colours per kind (also used by the legend).
KIND_COLOURS = {
    "hard": "#dc3545",
    "soft": "#fd7e14",
    "blocked": "#6f42c1",
    "complaint": "#d63384",
    "autoreply": "#20c997",
    "delay": "#0dcaf0",
    "unknown": "#6c757d",
}


@dataclass
class Bar:
    x: float
    width: float
    segments: list[dict] = field(default_factory=list)  # {y, height, colour, kind, n}
    title: str = ""


@dataclass
class Chart:
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    bars: list[Bar]
    y_ticks: list[dict]  # {y, label}
    x_labels: list[dict]  # {x, label}
    legend: list[dict]  # {kind, colour}
    total: int
    unit: str


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 x 10^n at or above value (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def bounce_chart(
    timeline: list[tuple[dt.datetime, dict[str, int]]], unit: str, *, width: int = 900, height: int = 220
) -> Chart:
    """Lay out the timeline (bucket start, {kind: n}) as stacked bars, one per bucket."""
    left, right, top, bottom = 44, 8, 8, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((sum(c.values()) for _, c in timeline), default=0)
    y_max = _nice_max(peak)
    n = max(len(timeline), 1)
    slot = plot_w / n
    bar_w = max(slot * 0.8, 1.0)
    bars: list[Bar] = []
    total = 0
    for i, (start, counts) in enumerate(timeline):
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h
        bar = Bar(x=round(x, 2), width=round(bar_w, 2))
        parts = []
        for kind, colour in KIND_COLOURS.items():
            value = counts.get(kind, 0)
            if not value:
                continue
            total += value
            h = plot_h * value / y_max
            y -= h
            bar.segments.append({"y": round(y, 2), "height": round(h, 2), "colour": colour, "kind": kind,
                                 "n": value})
            parts.append(f"{value} {kind}")
        label = start.strftime("%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d")
        bar.title = f"{label}: " + (", ".join(parts) if parts else "no bounces")
        bars.append(bar)
    y_ticks = [
        {"y": round(top + plot_h - plot_h * f, 2), "label": str(round(y_max * f))}
        for f in (0, 0.5, 1)
        if y_max * f == int(y_max * f)
    ]
    every = max(1, n // 8)
    x_labels = [
        {
            "x": round(left + i * slot + slot / 2, 2),
            "label": start.strftime("%d %b %H:00" if unit == "hour" else "%d %b"),
        }
        for i, (start, _) in enumerate(timeline)
        if i % every == 0
    ]
    legend = [{"kind": k, "colour": c} for k, c in KIND_COLOURS.items()]
    return Chart(width=width, height=height, plot_left=left, plot_bottom=top + plot_h, bars=bars,
                 y_ticks=y_ticks, x_labels=x_labels, legend=legend, total=total, unit=unit)
