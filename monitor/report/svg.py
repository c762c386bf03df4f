"""Small inline-SVG charts: the report must be one self-contained file (no scripts, no
network), readable in any browser. Charts scale to their column (viewBox); every text
from data goes through :func:`html.escape`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 330
MARGIN = {"left": 62, "right": 20, "top": 30, "bottom": 44}
#: Legend rows sit under the x-axis label.
LEGEND_ROW = 16
CHAR_WIDTH = 6.6


@dataclass(frozen=True)
class Frame:
    """Maps data coordinates to pixels inside the plot area."""

    x0: float
    x1: float
    y0: float
    y1: float
    plot_height: int = HEIGHT - MARGIN["top"] - MARGIN["bottom"]

    @property
    def bottom(self) -> float:
        return MARGIN["top"] + self.plot_height

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return MARGIN["left"] + (value - self.x0) / span * (
            WIDTH - MARGIN["left"] - MARGIN["right"]
        )

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.bottom - (value - self.y0) / span * self.plot_height


def svg(chart_id: str, title: str, body: Sequence[str], height: int = HEIGHT) -> str:
    return (
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {height}" role="img">'
        f"<title>{escape(title)}</title>"
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" class="title">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def empty(chart_id: str, title: str, message: str) -> str:
    return svg(
        chart_id,
        title,
        [
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
            f"{escape(message)}</text>"
        ],
    )


def axes(
    frame: Frame,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    left, right, bottom = MARGIN["left"], WIDTH - MARGIN["right"], frame.bottom
    out = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>',
        f'<line x1="{left}" y1="{MARGIN["top"]}" x2="{left}" y2="{bottom}" class="axis"/>',
    ]
    for i, (value, label) in enumerate(x_ticks):
        x = frame.x(value)
        # The last label ends at its tick so it is not clipped at the chart's edge.
        anchor = (
            "end" if i == len(x_ticks) - 1 and x + len(label) * CHAR_WIDTH / 2 > WIDTH else "middle"
        )
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" class="axis"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="{anchor}" class="tick">{escape(label)}</text>'
        )
    for value, label in y_ticks:
        y = frame.y(value)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{escape(label)}</text>'
        )
    middle = (MARGIN["top"] + bottom) / 2
    out.append(
        f'<text x="{(left + right) / 2}" y="{bottom + 34}" text-anchor="middle" class="label">{escape(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{middle}" text-anchor="middle" class="label" '
        f'transform="rotate(-90 14 {middle})">{escape(y_label)}</text>'
    )
    return out


def polyline(
    frame: Frame,
    points: Sequence[tuple[float, float]],
    colour: str,
    css: str = "line",
    dashed: bool = False,
) -> str:
    if len(points) == 1:  # one evaluation: a dot, a line needs two
        ((x, y),) = points
        return f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{colour}" class="{css}"/>'
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return f'<polyline points="{coords}" stroke="{colour}" class="{css}"{dash}/>'


def band(frame: Frame, points: Sequence[tuple[float, float, float]], colour: str, css: str) -> str:
    """A shaded area between a lower and an upper edge."""
    edge = [(x, low) for x, low, _ in points] + [(x, high) for x, _, high in reversed(points)]
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in edge)
    return f'<polygon points="{coords}" fill="{colour}" class="{css}"/>'


def hline(frame: Frame, value: float, colour: str, css: str, label: str = "") -> list[str]:
    y = frame.y(value)
    left, right = MARGIN["left"], WIDTH - MARGIN["right"]
    out = [
        f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{colour}" class="{css}"/>'
    ]
    if label:
        out.append(
            f'<text x="{right - 2}" y="{y - 3:.1f}" text-anchor="end" fill="{colour}" class="note">{escape(label)}</text>'
        )
    return out


#: Markers closer than this (pixels) write their labels on opposite sides of their lines.
MARKER_GAP = 14


def vline(
    frame: Frame, at: float, colour: str, css: str, label: str, title: str, *, right: bool = False
) -> list[str]:
    """A marker across the plot, its (short) label written down along it, on its left
    (or ``right``) side."""
    x = frame.x(at)
    top = MARGIN["top"]
    text_x = x + 12 if right else x - 3
    return [
        f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{frame.bottom}" stroke="{colour}" '
        f'class="{css}"><title>{escape(title)}</title></line>',
        f'<text x="{text_x:.1f}" y="{top + 4}" text-anchor="end" fill="{colour}" class="marker-label" '
        f'transform="rotate(-90 {text_x:.1f} {top + 4})">{escape(label)}</text>',
    ]


@dataclass(frozen=True)
class LegendItem:
    label: str
    colour: str
    #: ``line``, ``dashed``, ``band``, ``threshold`` or ``marker``.
    kind: str = "line"


def legend_rows(items: Sequence[LegendItem]) -> list[list[LegendItem]]:
    """Items flowed left to right, wrapping at the chart's width."""
    rows: list[list[LegendItem]] = [[]]
    used = 0.0
    for item in items:
        width = _item_width(item)
        if rows[-1] and used + width > WIDTH - MARGIN["left"] - MARGIN["right"]:
            rows.append([])
            used = 0.0
        rows[-1].append(item)
        used += width
    return [row for row in rows if row]


#: Characters of a legend label; a longer one is cut (whole in its tooltip).
LEGEND_CHARS = int((WIDTH - MARGIN["left"] - MARGIN["right"] - 40) / CHAR_WIDTH)


def _shown(label: str) -> str:
    return label if len(label) <= LEGEND_CHARS else label[: LEGEND_CHARS - 1] + "…"


def _item_width(item: LegendItem) -> float:
    return 26 + len(_shown(item.label)) * CHAR_WIDTH + 14


def legend(items: Sequence[LegendItem], top: float) -> list[str]:
    out = []
    for r, row in enumerate(legend_rows(items)):
        x = float(MARGIN["left"])
        y = top + r * LEGEND_ROW
        for item in row:
            out.append(_swatch(item, x, y))
            out.append(
                f'<text x="{x + 24:.1f}" y="{y + 4:.1f}" class="legend">{escape(item.label)}</text>'
            )
            x += _item_width(item)
    return out


def _swatch(item: LegendItem, x: float, y: float) -> str:
    if item.kind == "marker":
        return (
            f'<line x1="{x + 9:.1f}" y1="{y - 6:.1f}" x2="{x + 9:.1f}" y2="{y + 6:.1f}" '
            f'stroke="{item.colour}" stroke-width="1.5" stroke-dasharray="3 2"/>'
        )
    if item.kind == "band":
        return f'<rect x="{x:.1f}" y="{y - 5:.1f}" width="18" height="10" fill="{item.colour}" class="band-swatch"/>'
    dash = ' stroke-dasharray="6 4"' if item.kind in ("dashed", "threshold") else ""
    width = 2.5 if item.kind != "threshold" else 1.5
    return (
        f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 18:.1f}" y2="{y:.1f}" stroke="{item.colour}" '
        f'stroke-width="{width}"{dash}/>'
    )
