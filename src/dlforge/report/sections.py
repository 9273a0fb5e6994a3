"""HTML fragments of the report, one function per section. Every text goes through `esc`.

Each section function takes plain data (dicts and lists as `evaluate_scores`, `fit_baseline`
and `Diagnosis.to_dict` produce them) and returns an HTML string, or "" when it has nothing
to show, so the page never carries an empty heading.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from typing import Any

from dlforge.report import plots

LOWER_IS_BETTER = {"mae", "rmse", "hamming_loss"}
MAX_FILES = 20


# ------------------------------------------------------------------------------------ helpers


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """Numbers for people: 4 significant digits for floats, thousands separators for ints."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table(headers: Sequence[Any] | None, rows: Iterable[Sequence[Any]], css: str = "") -> str:
    """An HTML table (no header row when `headers` is None); every cell is escaped and
    numbers are formatted with `fmt`."""
    head = "" if headers is None else (
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>")
    body = "".join("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    cls = f' class="{esc(css)}"' if css else ""
    return f"<table{cls}>{head}<tbody>{body}</tbody></table>"


def img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'


def bullets(items: Iterable[Any], css: str = "") -> str:
    cls = f' class="{esc(css)}"' if css else ""
    return f"<ul{cls}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


# ----------------------------------------------------------------------------------- sections


def headline(evaluation: dict[str, Any]) -> str:
    """The one-line summary as chips, most important metric first."""
    chips = "".join(f'<span class="chip"><b>{esc(name)}</b> {esc(fmt(value))}</span>'
                    for name, value in evaluation.get("headline", []))
    return f'<div class="headline">{chips}</div>'


def diagnosis(diag: dict[str, Any] | None) -> str:
    if not diag:
        return ""
    verdict = diag.get("verdict", "unknown")
    body = (f'<p><span class="verdict {esc(verdict.replace(" ", "-"))}">{esc(verdict)}</span></p>'
            f"<h3>Why</h3>{bullets(diag.get('reasons', []))}"
            f"<h3>What to try</h3>{bullets(diag.get('advice', []))}")
    return section("diagnosis", "Diagnosis: bias or variance", body)


def metrics(ev: dict[str, Any], val_ev: dict[str, Any] | None) -> str:
    """Headline (test, and validation when given), per-class table and the confusion matrix."""
    val = dict(val_ev.get("headline", [])) if val_ev else {}
    rows = [[name, value] + ([val.get(name)] if val_ev else []) for name, value in ev["headline"]]
    parts = [f"<p>Test split, {esc(fmt(ev.get('n_samples')))} samples, evaluated once.</p>",
             table(["metric", "test"] + (["validation"] if val_ev else []), rows)]
    per = ev.get("per_class") or ev.get("per_label")
    if per:
        parts.append(_per_class_table(per, ev))
    if ev.get("confusion_matrix") is not None:
        parts.append(img(plots.confusion_matrix_png(ev["confusion_matrix"],
                                                    ev["confusion_matrix_normalized"],
                                                    ev["class_names"]), "confusion matrix"))
    if ev.get("task") == "multilabel":
        parts.append(table(["metric", "value"], [[k, ev[k]] for k in (
            "subset_accuracy", "hamming_loss", "micro_f1", "macro_f1")]))
    return section("metrics", "Test metrics", "".join(parts))


def _per_class_table(per: dict[str, dict[str, Any]], ev: dict[str, Any]) -> str:
    rows = [[name, m["precision"], m["recall"], m["f1"], m["support"]] for name, m in per.items()]
    for avg in ("macro_avg", "weighted_avg"):
        if avg in ev:
            rows.append([avg.replace("_", " "), ev[avg]["precision"], ev[avg]["recall"],
                         ev[avg]["f1"], ""])
    return table(["class", "precision", "recall", "F1", "support"], rows, css="per-class")


def curves(ev: dict[str, Any]) -> str:
    """ROC and precision-recall curves of a binary task."""
    if not ev.get("roc_curve") or not ev.get("pr_curve"):
        return ""
    support = [m["support"] for m in ev["per_class"].values()]
    prevalence = support[1] / sum(support) if sum(support) else None
    body = (img(plots.roc_png(ev["roc_curve"]["fpr"], ev["roc_curve"]["tpr"], ev.get("roc_auc")), "ROC curve")
            + img(plots.pr_png(ev["pr_curve"]["precision"], ev["pr_curve"]["recall"],
                               ev.get("pr_auc"), prevalence), "precision-recall curve"))
    return section("curves", "ROC and precision-recall", f'<div class="row">{body}</div>')


def threshold(th: dict[str, Any] | float | list | None) -> str:
    if th is None:
        return ""
    if not isinstance(th, dict):
        th = {"value": th}
    value = th["value"]
    shown = ", ".join(fmt(v) for v in value) if isinstance(value, list) else fmt(value)
    rows = [["threshold", shown]]
    if th.get("objective"):
        rows.append(["objective", th["objective"]])
    for name, got in (th.get("achieved") or {}).items():
        rows.append([f"validation {name}", ", ".join(fmt(v) for v in got) if isinstance(got, list) else got])
    warning = f'<p class="warning">{esc(th["warning"])}</p>' if th.get("warning") else ""
    note = "<p>Chosen on the validation split and applied unchanged to test.</p>"
    return section("threshold", "Decision threshold", note + table(None, rows) + warning)


def baseline(ev: dict[str, Any], base: dict[str, Any] | None) -> str:
    """Deep model and classical baseline, metric by metric, on the same test split."""
    if not base:
        return ""
    other = dict(base["metrics"].get("headline", []))
    rows = []
    for name, deep in ev.get("headline", []):
        theirs = other.get(name)
        rows.append([name, deep, theirs, _better(name, deep, theirs)])
    cut = base.get("threshold")
    cuts = ", ".join(fmt(c) for c in (cut if isinstance(cut, list) else [cut]))
    cut_note = "" if cut is None else f" Decision threshold {esc(cuts)}, chosen like the deep model's."
    body = (f"<p>{esc(base['name'])}, fitted in {esc(fmt(base.get('fit_seconds')))} s on "
            f"{esc(fmt(base.get('n_train')))} training samples, same split.{cut_note}</p>"
            + table(["metric", "deep model", "baseline", "better"], rows))
    return section("baseline", "Deep model vs classical baseline", body)


def _better(name: str, deep: Any, theirs: Any) -> str:
    if deep is None or theirs is None:
        return "n/a"
    if deep == theirs:
        return "tie"
    deep_wins = (deep < theirs) if name in LOWER_IS_BETTER else (deep > theirs)
    return "deep model" if deep_wins else "baseline"


def learning(history: list[dict[str, Any]], lr_history: list[float], metric: str) -> str:
    if not history and not lr_history:
        return ""
    parts = []
    if history:
        parts.append(img(plots.learning_curves_png(history, metric), "learning curves"))
    if lr_history:
        parts.append(img(plots.lr_png(lr_history), "learning rate per step"))
    if history:
        keys = [k for k in ("epoch", "loss", "val_loss", metric, f"val_{metric}", "lr",
                            "epoch_time_s") if any(k in row for row in history)]
        rows = [[_epoch_from_one(row) if k == "epoch" else row.get(k) for k in keys] for row in history]
        parts.append("<details><summary>history table</summary>" + table(keys, rows) + "</details>")
    return section("learning", "Learning curves", "".join(parts))


def _epoch_from_one(row: dict[str, Any]) -> Any:
    """Epochs counted from 1 as the progress lines and the diagnosis print them (`fit` records from 0)."""
    epoch = row.get("epoch")
    return int(epoch) + 1 if isinstance(epoch, (int, float)) else epoch


def misclassified(mis: dict[str, Any] | None) -> str:
    if not mis or len(mis.get("images", [])) == 0:
        return ""
    titles = [f"true {t}\npred {p}" for t, p in zip(mis["true"], mis["predicted"], strict=True)]
    count = mis.get("count")
    note = f"<p>{esc(fmt(len(titles)))} of {esc(fmt(count))} misclassified test images.</p>" if count else ""
    return section("misclassified", "Misclassified examples",
                   note + img(plots.image_grid_png(mis["images"], titles), "misclassified images"))


def inside(found: dict[str, Any] | None) -> str:
    """"Inside the model": per-layer weight and activation statistics, then the figures."""
    if not found:
        return ""
    columns = ["layer", "kind", "weight_mean", "weight_std", "output_mean", "output_std", "dead_relu"]
    rows = [[row.get(c) for c in columns] for row in found.get("statistics", [])]
    notes = found.get("notes") or []
    body = ((bullets(notes) if notes else "") + "<h3>Per-layer statistics</h3>"
            "<p>Weights of the final model; outputs on a batch of test inputs in eval mode. "
            "dead_relu: share of a ReLU's units that are 0 for every input of the batch.</p>"
            + table(columns, rows))
    return section("inside", "Inside the model", body + figure_row(found.get("figures", [])))


def review(found: dict[str, Any] | None) -> str:
    """The training samples of lowest area under the margin, with their evidence."""
    if not found:
        return ""
    note = (f"<p>{esc(fmt(found['flagged']))} of {esc(fmt(found['samples']))} training samples "
            f"have a negative area under the margin. `dlforge data review` adds k-fold "
            f"confident learning; `data.exclude` leaves samples out of the next run.</p>")
    columns = ["id", "given", "suggested", "score", "issue"]
    body = note + bullets(found.get("notes", [])) + table(
        columns, [[row[c] for c in columns] for row in found["rows"]])
    if found.get("grid") is not None:
        body += img(found["grid"], "training samples of lowest area under the margin")
    return section("review", "Suspicious training samples", body)


def data(validation: dict[str, Any] | None, provenance: dict[str, Any] | None) -> str:
    parts = []
    if validation:
        warnings = validation.get("warnings") or []
        if warnings:
            parts.append("<h3>Warnings</h3>" + bullets(warnings, css="warning"))
        parts.append("<h3>Validation report</h3><table class=\"kv\"><tbody>"
                     + _kv_rows(validation, skip=("warnings",)) + "</tbody></table>")
    if provenance:
        files = provenance.get("files") or {}
        parts.append(f"<h3>Provenance</h3><p>source: {esc(provenance.get('source'))}</p>")
        if files:  # an image folder can hold thousands of files: list the first few
            shown = sorted(files.items())[:MAX_FILES]
            more = len(files) - len(shown)
            parts.append(table(["file", "sha256"], shown)
                         + (f"<p>... and {more:,} more files.</p>" if more > 0 else ""))
        if provenance.get("details"):
            parts.append(table(["detail", "value"], [[k, _inline(v)] for k, v in provenance["details"].items()]))
    return section("data", "Data", "".join(parts)) if parts else ""


def _kv_rows(d: dict[str, Any], skip: Sequence[str] = ()) -> str:
    """Rows of a key/value table; a nested dict becomes its own small table in the cell."""
    rows = []
    for key, value in d.items():
        if key in skip or value in (None, {}, []):
            continue
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            columns = list(dict.fromkeys(c for v in value.values() for c in v))
            cell = table([""] + columns, [[k] + [v.get(c) for c in columns] for k, v in value.items()])
        elif isinstance(value, dict):  # mixed values (balance, splits): nested key/value rows
            cell = f'<table class="kv"><tbody>{_kv_rows(value)}</tbody></table>'
        else:
            cell = esc(_inline(value))
        rows.append(f"<tr><td>{esc(key)}</td><td>{cell}</td></tr>")
    return "".join(rows)


def _inline(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v) for v in value)
    return fmt(value)


def model(info: dict[str, Any]) -> str:
    if not info:
        return ""
    names = {"params": "parameters", "trainable_params": "trainable parameters",
             "flops": "FLOPs per sample", "latency_ms": "latency per sample (ms)",
             "latency_ms_p50": "latency at batch 1, median (ms)",
             "latency_ms_p95": "latency at batch 1, 95th percentile (ms)",
             "training_precision": "training precision (train.precision)"}
    rows = [[names.get(k, k), _si(v) if k == "flops" else v] for k, v in info.items()]
    return section("model", "Model size", table(None, rows))


def _si(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return fmt(value)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit} ({int(value):,})"
    return fmt(value)


def timings(times: dict[str, float]) -> str:
    if not times:
        return ""
    # stages in seconds; a row whose name gives its unit (e.g. "peak RSS (MB)") keeps it
    rows = [(k if k.endswith(")") else f"{k} (s)", v) for k, v in times.items()]
    return section("timings", "Timings", table(["stage", "value"], rows))


def figures(extra: Sequence[tuple[str, bytes]]) -> str:
    if not extra:
        return ""
    return section("figures", "More figures", figure_row(extra))


def figure_row(extra: Sequence[tuple[str, bytes]]) -> str:
    """Captioned figures side by side, wrapping."""
    body = "".join(f"<figure>{img(png, title)}<figcaption>{esc(title)}</figcaption></figure>"
                   for title, png in extra)
    return f'<div class="row">{body}</div>'


def config(cfg: dict[str, Any]) -> str:
    if not cfg:
        return ""
    import yaml  # only the report needs a YAML dump

    text = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
    return section("config", "Configuration", f"<pre>{esc(text)}</pre>")
