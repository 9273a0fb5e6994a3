"""The report stage: gather what the run measured into one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dlforge.candidate import Candidate
from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.evaluate.inside import inspect_model, model_device
from dlforge.models.scores import labels_from_scores, predict_scores
from dlforge.pipeline.evaluate_model import Evaluation, threshold_value
from dlforge.report.html import ReportData, write_report
from dlforge.report.inside import inspection_figures
from dlforge.report.plots import image_grid_png, score_histogram_png
from dlforge.review import Findings

EXAMPLES = 2  # correct and misclassified test inputs shown inside the model, each
STATS_BATCH = 256  # test inputs the activation statistics are measured on


def write_run_report(path: Path, cfg: RunConfig, run_id: str, data: PreparedData,
                     trained: Candidate, evaluation: Evaluation, timings: dict[str, float], config_json: dict,
                     extra_plots: Sequence[tuple[str, bytes]] = (),
                     margins: Findings | None = None) -> Path:
    """Write `path` (report.html) for a finished run and return it.

    `config_json` is the resolved config as shown to readers, secrets already masked;
    `extra_plots` (title, PNG) are shown after the model's own figures (e.g. a search's);
    `margins` is the area under the margin of the run's training samples (`review.in_run`).
    """
    report = ReportData(
        run_name=cfg.name, run_id=run_id, evaluation=evaluation.test_metrics,
        val_evaluation=evaluation.val_metrics, config=config_json,
        history=trained.history, lr_history=trained.lr_history, baseline=evaluation.baseline,
        diagnosis=evaluation.diagnosis,
        validation=_validation(data, cfg.balance.method, evaluation.trained_on),
        model_info=evaluation.model_info, threshold=evaluation.threshold,
        misclassified=evaluation.misclassified, class_names=list(data.task.class_names),
        provenance=data.dataset.provenance.to_dict(), timings=timings,
        extra_plots=_anomaly_figures(trained.model, data, evaluation, cfg) + list(extra_plots),
        inside=_inside_the_model(trained.model, data, evaluation),
        review=_review(margins, data, cfg.review.top),
    )
    return write_report(path, report)


def _validation(data: PreparedData, method: str, trained_on: dict | None) -> dict:
    """The validation report plus the training split's class counts before and after balancing,
    and which splits the model was trained on (with why, after retraining on train+validation)."""
    report = data.validation.to_dict()
    report["balance"] = {"method": method, "train_before": data.balanced.before,
                         "train_after": data.balanced.after}
    report["splits"] = data.splits.info
    if trained_on is not None:
        report["trained on"] = {k: " ".join(v) if k == "notes" else v for k, v in trained_on.items()}
    return report


def _anomaly_figures(model, data: PreparedData, evaluation: Evaluation,
                     cfg: RunConfig) -> list[tuple[str, bytes]]:
    """Anomaly tasks: test score histograms of normal and anomalous samples, and the test
    images the model reconstructs worst, each beside its reconstruction."""
    if data.task.kind != "anomaly":
        return []
    x, y = data.inputs("test"), data.splits.test.y
    scores = predict_scores(model, x, data.task, batch_size=cfg.train.eval_batch_size)
    threshold = threshold_value(evaluation.threshold)
    figures = [("Anomaly scores of the test split",
                score_histogram_png(scores[y == 0], scores[y == 1], threshold))]
    pairs = cfg.evaluate.misclassified_examples // 2
    if data.modality != "image" or pairs == 0:
        return figures
    worst = np.argsort(-scores, kind="stable")[:pairs]
    with torch.inference_mode():
        rebuilt = model.eval().cpu()(x[worst]).float().numpy()
    tiles = np.stack([image for i, k in enumerate(worst) for image in (x[k].numpy(), rebuilt[i])])
    names = data.task.class_names
    titles = [t for k in worst for t in (f"{names[y[k]]}\nerror {scores[k]:.3g}", "rebuilt")]
    return figures + [("Worst reconstructions of the test split (input, then reconstruction)",
                       image_grid_png(tiles, titles))]


def _inside_the_model(model, data: PreparedData, evaluation: Evaluation) -> dict | None:
    """Per-layer statistics on a batch of test inputs, and for a few correctly and wrongly
    predicted test inputs the feature maps of each conv block and the saliency."""
    x = data.inputs("test")
    if len(x) == 0:
        return None
    batch = x[:STATS_BATCH]
    figures, notes, stats, first = [], [], [], True
    names = _feature_names(data)
    for index, label in _examples(model, data, evaluation, batch):
        found = inspect_model(model, x[index], batch=batch)
        image = data.splits.test.x[index] if data.modality == "image" else None
        figures += inspection_figures(found, image, label, names, with_weights=first)
        notes, stats, first = found.notes, found.statistics, False
    return {"statistics": stats, "figures": figures, "notes": notes}


def _examples(model, data: PreparedData, evaluation: Evaluation, batch) -> list[tuple[int, str]]:
    """(test index, caption) of the first `EXAMPLES` correct and misclassified test inputs
    (classification), else the first test input."""
    task = data.task
    if task.kind not in ("multiclass", "binary"):
        return [(0, "test input 0")]
    scores = predict_scores(model, batch, task, batch_size=len(batch), device=model_device(model))
    predicted = labels_from_scores(task, scores, threshold_value(evaluation.threshold))
    truth, names = data.splits.test.y[:len(batch)], task.class_names
    right = [int(i) for i in (predicted == truth).nonzero()[0][:EXAMPLES]]
    wrong = [int(i) for i in (predicted != truth).nonzero()[0][:EXAMPLES]]
    return [(i, f"test input {i} (true {names[truth[i]]}, predicted {names[predicted[i]]})")
            for i in right + wrong]


def _feature_names(data: PreparedData) -> list[str]:
    x = data.splits.test.x
    return [str(c) for c in x.columns] if hasattr(x, "columns") else []


def _review(margins: Findings | None, data: PreparedData, top: int) -> dict | None:
    """The report's view of the run's area under the margin: the `top` lowest, with images."""
    if margins is None:
        return None
    rows = margins.rows("aum", top)
    grid = None
    if data.modality == "image" and rows:
        pick = margins.order("aum")[:top]
        grid = image_grid_png(data.splits.train.x[pick],
                              [f"{r['id']}\n{r['given']}->{r['suggested']}" for r in rows])
    return {"rows": rows, "notes": margins.notes, "grid": grid, "samples": len(margins.ids),
            "flagged": int(margins.signals["aum"].flagged.sum())}
