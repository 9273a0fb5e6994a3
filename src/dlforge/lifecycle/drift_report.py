"""The drift report: one self-contained HTML page with the verdicts and a plot per feature."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dlforge.atomic import write_text
from dlforge.lifecycle.drift import DriftResult, summary_rows
from dlforge.report import sections as s
from dlforge.report.html import CSS
from dlforge.report.plots import shares_png

# Plots for the features with the largest effects first; the table lists them all.
MAX_PLOTS = 16


def write_drift_report(path: str | Path, result: DriftResult) -> Path:
    """Write `result` as an HTML page at `path` (atomically) and return the path.

    Example:
        >>> write_drift_report(tmp / "drift.html", result)  # doctest: +SKIP
        PosixPath('.../drift.html')
    """
    ranked = sorted(result.features, key=lambda n: -result.features[n]["effect"])[:MAX_PLOTS]
    plots = "".join(s.img(shares_png(*result.histograms[name], title=_title(result, name)), name)
                    for name in ranked)
    verdict = (f"{result.verdict}: {len(result.drifted)} of {len(result.features)} features "
               f"drift ({', '.join(result.drifted) or 'none'}); decided by {result.decided_by} "
               f"on {result.rows} rows")
    body = (s.section("verdict", "Verdict", f"<p><b>{s.esc(verdict)}</b></p>"
                      + s.table(["setting", "value"], result.settings.items()))
            + s.section("features", "Features", s.table(
                ["feature", "decided by", "p-value", "effect size", "distance", "PSI", "verdict"],
                summary_rows(result)))
            + s.section("plots", "Reference against compared data", f'<div class="row">{plots}</div>'))
    written = dt.datetime.now(dt.timezone.utc).strftime("written %Y-%m-%d %H:%M UTC")
    page = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>dlforge drift: {s.esc(result.model)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>drift of {s.esc(result.model)}</h1>"
            f"<p>{s.esc(result.source)} · {s.esc(written)}</p></header><main>{body}</main></body></html>\n")
    return write_text(path, page)


def _title(result: DriftResult, name: str) -> str:
    row = result.features[name]
    return f"{name}: {row['effect_name']} {row['effect']:.3f}{' DRIFT' if row['drifted'] else ''}"
