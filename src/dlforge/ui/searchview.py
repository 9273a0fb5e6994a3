"""A search's parameter charts, drawn as inline SVG: how strongly each parameter goes with the
value, and parallel coordinates of the complete trials."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
from markupsafe import Markup

from dlforge.ui.charts import COLOURS

MAX_LINES = 1000  # parallel coordinates beyond this many trials are thinned evenly
BAR_W, ROW_H, LABEL_W = 560, 22, 180
PC_W, PC_H, PC_PAD = 760, 300, 40


def importances(trials: Sequence[tuple[float, dict[str, Any]]]) -> list[tuple[str, float]]:
    """Each parameter's association with the value over the complete trials, strongest first:
    |Spearman rank correlation| for numbers, the correlation ratio for choices (both 0 to 1).
    Cheap enough for a page (Optuna's fANOVA fits forests); parameters with one value get 0."""
    values = np.array([v for v, _ in trials], dtype=float)
    keys = sorted({k for _, p in trials for k in p})
    out = []
    for key in keys:
        column = [p.get(key) for _, p in trials]
        numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in column)
        out.append((key, _spearman(np.array(column, dtype=float), values) if numeric
                    else _correlation_ratio([str(c) for c in column], values)))
    return sorted(out, key=lambda kv: -kv[1])


def importance_chart(scores: Sequence[tuple[str, float]]) -> Markup:
    """Horizontal bars, one per parameter."""
    if not scores:
        return Markup('<p class="empty">Parameter association: no complete trials yet.</p>')
    height = ROW_H * len(scores) + 30
    parts = [f'<svg class="chart" viewBox="0 0 {BAR_W} {height}" role="img" '
             'aria-label="parameter association with the value" '
             'xmlns="http://www.w3.org/2000/svg">',
             '<title>parameter association with the value</title>',
             '<text x="4" y="16" class="chart-title">association with the value (0-1)</text>']
    span = BAR_W - LABEL_W - 60
    for i, (key, score) in enumerate(scores):
        y = 26 + i * ROW_H
        width = max(score, 0) * span
        parts.append(f'<g class="bar" data-param="{escape(key)}">'
                     f'<text x="{LABEL_W - 6}" y="{y + 14}" class="tick" text-anchor="end">'
                     f'{escape(key)}</text><rect x="{LABEL_W}" y="{y + 3}" width="{width:.1f}" '
                     f'height="{ROW_H - 6}" fill="{COLOURS[0]}"/>'
                     f'<text x="{LABEL_W + width + 4:.1f}" y="{y + 14}" class="tick">'
                     f'{score:.2f}</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def parallel_chart(trials: Sequence[tuple[float, dict[str, Any]]], direction: str) -> Markup:
    """One vertical axis per parameter and one for the value; a line per complete trial, the
    better trials darker and drawn last (on top)."""
    keys = sorted({k for _, p in trials for k in p})
    if not trials or not keys:
        return Markup('<p class="empty">Parallel coordinates: no complete trials yet.</p>')
    if len(trials) > MAX_LINES:
        step = len(trials) / MAX_LINES
        trials = [trials[int(i * step)] for i in range(MAX_LINES)]
    best_last = sorted(trials, key=lambda t: t[0], reverse=direction != "maximize")
    axes = [*keys, "value"]
    columns = {k: [p.get(k) for _, p in best_last] for k in keys}
    columns["value"] = [v for v, _ in best_last]
    scaled = {k: _axis(columns[k]) for k in axes}
    xs = [PC_PAD + i * (PC_W - 2 * PC_PAD) / (len(axes) - 1 or 1) for i in range(len(axes))]
    top, bottom = 30, PC_H - 30
    parts = [f'<svg class="chart wide" viewBox="0 0 {PC_W} {PC_H}" role="img" '
             f'aria-label="parallel coordinates" xmlns="http://www.w3.org/2000/svg">',
             '<title>parallel coordinates</title>']
    n = len(best_last)
    for row in range(n):
        shade = 0.15 + 0.6 * (row + 1) / n
        points = " ".join(f"{x:.1f},{bottom - scaled[k][0][row] * (bottom - top):.1f}"
                          for x, k in zip(xs, axes, strict=True) if scaled[k][0][row] is not None)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{COLOURS[0]}" '
                     f'stroke-opacity="{shade:.2f}" stroke-width="1"/>')
    for x, k in zip(xs, axes, strict=True):
        low, high = scaled[k][1]
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" class="axis"/>'
                     f'<text x="{x:.1f}" y="{top - 14}" class="label" text-anchor="middle">'
                     f'{escape(k)}</text>'
                     f'<text x="{x + 3:.1f}" y="{top - 2}" class="tick">{escape(high)}</text>'
                     f'<text x="{x + 3:.1f}" y="{bottom + 12}" class="tick">{escape(low)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _axis(column: list[Any]) -> tuple[list[float | None], tuple[str, str]]:
    """Positions 0-1 on an axis and the labels of its ends: numbers linear (log when positive
    and spanning over 100x), choices evenly spaced in sorted order."""
    known = [c for c in column if c is not None]
    if known and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in known):
        low, high = min(known), max(known)
        log = low > 0 and high / low > 100
        f = (lambda v: math.log10(v)) if log else (lambda v: v)
        span = (f(high) - f(low)) or 1.0
        return ([None if c is None else (f(c) - f(low)) / span for c in column],
                (f"{low:.3g}", f"{high:.3g}"))
    labels = sorted({str(c) for c in known})
    where = {c: i / (len(labels) - 1 or 1) for i, c in enumerate(labels)}
    return [None if c is None else where[str(c)] for c in column], (labels[0] if labels else "",
                                                                    labels[-1] if labels else "")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    from scipy.stats import spearmanr

    return float(abs(spearmanr(x, y).statistic))


def _correlation_ratio(groups: list[str], y: np.ndarray) -> float:
    if len(y) < 3 or np.ptp(y) == 0:
        return 0.0
    labels = np.array(groups)
    between = sum(((labels == g).sum() * (y[labels == g].mean() - y.mean()) ** 2)
                  for g in set(groups))
    return float(math.sqrt(between / ((y - y.mean()) ** 2).sum()))
