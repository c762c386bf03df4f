"""Small inline-SVG charts: the report must be one self-contained file (no scripts, no
network), readable in any browser and printable to PNG by headless Chromium."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 300
MARGIN = {"left": 56, "right": 16, "top": 28, "bottom": 40}
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass(frozen=True)
class Frame:
    """Maps data coordinates to pixels inside the plot area."""

    x0: float
    x1: float
    y0: float
    y1: float
    height: int = HEIGHT

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return MARGIN["left"] + (value - self.x0) / span * (
            WIDTH - MARGIN["left"] - MARGIN["right"]
        )

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        inner = self.height - MARGIN["top"] - MARGIN["bottom"]
        return self.height - MARGIN["bottom"] - (value - self.y0) / span * inner


def svg(chart_id: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">'
        f"<title>{escape(title)}</title>"
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" class="title">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def axes(frame: Frame, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[float],
         x_label: str, y_label: str, y_format: str = "{:.2f}") -> list[str]:  # fmt: skip
    out = []
    left, bottom = MARGIN["left"], frame.height - MARGIN["bottom"]
    out.append(
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - MARGIN["right"]}" y2="{bottom}" class="axis"/>'
    )
    out.append(f'<line x1="{left}" y1="{MARGIN["top"]}" x2="{left}" y2="{bottom}" class="axis"/>')
    for i, (value, label) in enumerate(x_ticks):
        x = frame.x(value)
        # The last label ends at its tick so it is not clipped at the chart's edge.
        anchor = "end" if i == len(x_ticks) - 1 and len(label) > 4 else "middle"
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" class="axis"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    for value in y_ticks:
        y = frame.y(value)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - MARGIN["right"]}" y2="{y:.1f}" class="grid"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{y_format.format(value)}</text>'
        )
    out.append(
        f'<text x="{(left + WIDTH - MARGIN["right"]) / 2}" y="{frame.height - 6}" text-anchor="middle" class="label">{escape(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{(MARGIN["top"] + bottom) / 2}" text-anchor="middle" class="label" transform="rotate(-90 14 {(MARGIN["top"] + bottom) / 2})">{escape(y_label)}</text>'
    )
    return out


def polyline(
    frame: Frame, points: Sequence[tuple[float, float]], colour: str, css: str = "line"
) -> str:
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
    return f'<polyline points="{coords}" stroke="{colour}" class="{css}"/>'


def legend(items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for i, (label, colour) in enumerate(items):
        x = MARGIN["left"] + 8 + i * 130
        out.append(
            f'<rect x="{x}" y="{MARGIN["top"] + 2}" width="10" height="10" fill="{colour}"/>'
        )
        out.append(f'<text x="{x + 14}" y="{MARGIN["top"] + 11}">{escape(label)}</text>')
    return out


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1.0
    step = (high - low) / count
    return [low + i * step for i in range(count + 1)]
