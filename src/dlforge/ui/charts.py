"""Line charts drawn as inline SVG on the server: no JavaScript, no chart library, no network.

Every label goes through `html.escape`, so a hostile run name in a legend stays text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40
LEGEND_ROW = 16
MAX_POINTS = 2000  # longer series are thinned evenly: a page stays small with 10,000 trials


@dataclass(frozen=True)
class Series:
    """One line: `points` are (x, y); None or non-finite y values leave a gap.

    `dashed` draws the line dashed (validation beside training); `dots` draws markers only;
    `colour` picks a colour by index (default: the series' position), so that the training
    and validation lines of one run share theirs.
    """

    label: str
    points: Sequence[tuple[float, float | None]]
    dashed: bool = False
    dots: bool = False
    colour: int | None = None


def line_chart(title: str, series: Sequence[Series], *, x_label: str, y_label: str) -> Markup:
    """An SVG chart of `series` on shared axes, with a legend; a note when there is no data."""
    finite = [(x, y) for s in series for x, y in s.points if _finite(y)]
    if not finite:
        return Markup(f'<p class="empty">{escape(title)}: no data yet.</p>')
    xs, ys = [x for x, _ in finite], [y for _, y in finite]
    scale = _Scale(min(xs), max(xs), min(ys), max(ys),
                   integer_x=all(isinstance(x, int) for x in xs))
    height = HEIGHT + LEGEND_ROW * len(series)  # the legend goes under the plot, a row each
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="16" class="chart-title">{escape(title)}</text>',
             *_axes(scale, x_label, y_label)]
    for i, s in enumerate(series):
        parts += _draw(s, scale, COLOURS[(i if s.colour is None else s.colour) % len(COLOURS)], i)
    parts.append("</svg>")
    return Markup("".join(parts))


def _finite(y: float | None) -> bool:
    return isinstance(y, (int, float)) and math.isfinite(y)


@dataclass(frozen=True)
class _Scale:
    x0: float
    x1: float
    y0: float
    y1: float
    integer_x: bool = False

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (v - self.x0) / span * (WIDTH - LEFT - RIGHT)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return HEIGHT - BOTTOM - (v - self.y0) / span * (HEIGHT - TOP - BOTTOM)


def _axes(scale: _Scale, x_label: str, y_label: str) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" class="axis"/>',
           f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>']
    for v in _ticks(scale.y0, scale.y1):
        y = scale.y(v)
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                   f'{_fmt(v)}</text><line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                   f'class="grid"/>')
    for v in _ticks(scale.x0, scale.x1):
        if scale.integer_x and v != int(v):
            continue  # epochs and trial numbers: whole ticks only
        out.append(f'<text x="{scale.x(v):.1f}" y="{bottom + 16}" class="tick" '
                   f'text-anchor="middle">{_fmt(v)}</text>')
    out.append(f'<text x="{(LEFT + right) / 2:.0f}" y="{HEIGHT - 6}" class="label" '
               f'text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="14" y="{(TOP + bottom) / 2:.0f}" class="label" text-anchor="middle" '
               f'transform="rotate(-90 14 {(TOP + bottom) / 2:.0f})">{escape(y_label)}</text>')
    return out


def _draw(s: Series, scale: _Scale, colour: str, index: int) -> list[str]:
    points = list(s.points)
    if len(points) > MAX_POINTS:
        step = len(points) / MAX_POINTS
        points = [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]
    out = [f'<g class="series" data-label="{escape(s.label)}">']
    dash = ' stroke-dasharray="5 3"' if s.dashed else ""
    if s.dots:
        out += [f'<circle cx="{scale.x(x):.1f}" cy="{scale.y(y):.1f}" r="2" fill="{colour}"/>'
                for x, y in points if _finite(y)]
    else:
        for run in _segments(points):
            if len(run) == 1:  # a lone point (a first epoch) shows as a dot
                out.append(f'<circle cx="{scale.x(run[0][0]):.1f}" cy="{scale.y(run[0][1]):.1f}" '
                           f'r="3" fill="{colour}"/>')
                continue
            coords = " ".join(f"{scale.x(x):.1f},{scale.y(y):.1f}" for x, y in run)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                       f'stroke-width="2"{dash}/>')
    ly = HEIGHT + LEGEND_ROW * index + 4
    swatch = (f'<circle cx="{LEFT + 11}" cy="{ly - 4}" r="3" fill="{colour}"/>' if s.dots else
              f'<line x1="{LEFT}" y1="{ly - 4}" x2="{LEFT + 22}" y2="{ly - 4}" stroke="{colour}" '
              f'stroke-width="2"{dash}/>')
    out.append(f'{swatch}<text x="{LEFT + 28}" y="{ly}" class="legend" fill="{colour}">'
               f'{escape(s.label)}</text></g>')
    return out


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The runs of consecutive finite points (a gap where a value is missing)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if _finite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.1e}"
    return f"{v:.4g}"
