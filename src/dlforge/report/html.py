"""The run report: ONE self-contained HTML file (inline CSS, plots as base64 PNG, no scripts).

A report must open years later on a machine without network access, so nothing is linked:
no CDN, no external stylesheet or script, no image files beside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlforge.atomic import atomic_open
from dlforge.faults import fault_point
from dlforge.report import sections as s

if TYPE_CHECKING:
    from dlforge.evaluate.diagnosis import Diagnosis
    from dlforge.evaluate.threshold import Threshold

CSS = """
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       background: #f6f7f9; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px 48px; }
header { background: #1d3557; color: #fff; padding: 18px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .85; }
nav { margin: 10px 0 0; } nav a { color: #cfe3ff; margin-right: 12px; text-decoration: none; }
section { background: #fff; border: 1px solid #e1e4e8; border-radius: 6px; padding: 12px 18px;
          margin: 16px 0; }
h2 { font-size: 18px; margin: 4px 0 10px; } h3 { font-size: 15px; margin: 14px 0 6px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border-bottom: 1px solid #e1e4e8; padding: 4px 10px; text-align: left;
         vertical-align: top; }
th { background: #f0f2f5; } tbody tr:nth-child(even) { background: #fafbfc; }
td table { margin: 0; }
img { max-width: 100%; height: auto; margin: 6px 8px 6px 0; }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.headline { margin: 12px 0 0; }
.chip { display: inline-block; background: #fff; color: #1d3557; border-radius: 14px;
        padding: 3px 12px; margin: 4px 6px 0 0; }
.verdict { font-weight: 600; padding: 3px 12px; border-radius: 4px; color: #fff; }
.verdict.good-fit { background: #2a9d8f; } .verdict.overfitting { background: #e76f51; }
.verdict.underfitting { background: #e9a23b; } .verdict.unknown { background: #888; }
.verdict.diverged { background: #c0392b; }
.warning { color: #9a3412; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; }
"""


@dataclass
class ReportData:
    """Everything one run's report shows; only the run name and the evaluation are required.

    Attributes:
        run_name: the run (model) name, the page title.
        evaluation: `evaluate_scores(...)` of the test split.
        config: the resolved run config as a plain dict.
        history: `fit` history rows (epoch, loss, <metric>, val_loss, val_<metric>, lr, ...).
        lr_history: the learning rate of every optimizer step.
        baseline: `fit_baseline(...)` output, or None when no baseline was fitted.
        diagnosis: a `Diagnosis` or its `to_dict()`.
        validation: `ValidationReport.to_dict()` of the data.
        model_info: `describe_model(...)` plus optionally `latency_ms`.
        threshold: a `Threshold`, its `to_dict()`, a number or a list (multilabel), or None.
        misclassified: for image tasks `{"images": (N, C, H, W) array, "true": [names],
            "predicted": [names], "count": total wrong (optional)}`.
        class_names: class or label names (default those in `evaluation`).
        provenance: `Provenance.to_dict()` of the data.
        timings: seconds per stage, e.g. {"train": 12.3}.
        val_evaluation: `evaluate_scores(...)` of the validation split, shown beside test.
        run_id: the store's run id.
        extra_plots: more figures as (title, PNG bytes), e.g. a search's.
        inside: "Inside the model": `{"statistics": layer rows, "figures": [(title, PNG)],
            "notes": [str]}`.
        review: training samples of lowest area under the margin: `{"rows", "notes",
            "flagged", "samples", "grid": PNG or None}`.
    """

    run_name: str
    evaluation: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    lr_history: list[float] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    diagnosis: Diagnosis | dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    model_info: dict[str, Any] = field(default_factory=dict)
    threshold: Threshold | dict[str, Any] | float | list[float] | None = None
    misclassified: dict[str, Any] | None = None
    class_names: list[str] = field(default_factory=list)
    provenance: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    val_evaluation: dict[str, Any] | None = None
    run_id: str | None = None
    extra_plots: list[tuple[str, bytes]] = field(default_factory=list)
    inside: dict[str, Any] | None = None
    review: dict[str, Any] | None = None


def write_report(path: str | Path, data: ReportData) -> Path:
    """Render `data` as one self-contained HTML file and write it atomically.

    Args:
        path: the target file (parent directories are created).
        data: what to show.

    Returns:
        `path` as a Path.

    Example:
        >>> write_report(tmp / "report.html", ReportData("digits", evaluation))  # doctest: +SKIP
        PosixPath('.../report.html')
    """
    html = render_report(data)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(html)
        fault_point("mid-report")
    return Path(path)


def render_report(data: ReportData) -> str:
    """The report page as a string (what `write_report` writes)."""
    ev = data.evaluation
    metric = "mae" if ev.get("task") == "regression" else "accuracy"
    body = "".join([
        s.diagnosis(_plain(data.diagnosis)),
        s.metrics(ev, data.val_evaluation),
        s.threshold(_plain(data.threshold)),
        s.curves(ev),
        s.baseline(ev, data.baseline),
        s.learning(data.history, data.lr_history, metric),
        s.misclassified(data.misclassified),
        s.inside(data.inside),
        s.review(data.review),
        s.data(data.validation, data.provenance),
        s.model(data.model_info),
        s.timings(data.timings),
        s.figures(data.extra_plots),
        s.config(data.config),
    ])
    return _page(data, body)


def _page(data: ReportData, body: str) -> str:
    ev = data.evaluation
    classes = data.class_names or ev.get("class_names") or []
    facts = [f"task {ev.get('task', '?')}"]
    if classes:
        # regression names its targets, multilabel its labels; only the others have classes
        noun = {"regression": "target", "multilabel": "label"}.get(ev.get("task"), "class")
        plural = noun if len(classes) == 1 else ("classes" if noun == "class" else noun + "s")
        facts.append(f"{len(classes)} {plural}: {', '.join(map(str, classes[:12]))}"
                     + (" ..." if len(classes) > 12 else ""))
    if data.run_id:
        facts.append(f"run {data.run_id}")
    facts.append(dt.datetime.now(dt.timezone.utc).strftime("written %Y-%m-%d %H:%M UTC"))
    anchors = [a for a in ("diagnosis", "metrics", "threshold", "curves", "baseline", "learning",
                           "misclassified", "inside", "review", "data", "model", "timings", "figures", "config")
               if f'<section id="{a}">' in body]
    nav = "".join(f'<a href="#{a}">{a}</a>' for a in anchors)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dlforge report: {s.esc(data.run_name)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{s.esc(data.run_name)}</h1><p>{s.esc(' · '.join(facts))}</p>"
        f"{s.headline(ev)}<nav>{nav}</nav></header><main>{body}</main></body></html>\n"
    )


def _plain(obj: Any) -> Any:
    """Dataclasses with `to_dict` (Diagnosis, Threshold) as dicts; anything else unchanged."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj
