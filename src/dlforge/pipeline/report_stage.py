"""The report stage: gather what the run measured into one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from dlforge.candidate import Candidate
from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.evaluate.inspect import feature_maps, first_layer_filters
from dlforge.models.scores import predict_scores
from dlforge.pipeline.evaluate_model import Evaluation, threshold_value
from dlforge.report.html import ReportData, write_report
from dlforge.report.plots import feature_maps_png, filters_png, image_grid_png, score_histogram_png


def write_run_report(path: Path, cfg: RunConfig, run_id: str, data: PreparedData,
                     trained: Candidate, evaluation: Evaluation, timings: dict[str, float], config_json: dict,
                     extra_plots: Sequence[tuple[str, bytes]] = ()) -> Path:
    """Write `path` (report.html) for a finished run and return it.

    `config_json` is the resolved config as shown to readers, secrets already masked;
    `extra_plots` (title, PNG) are shown after the model's own figures (e.g. a search's).
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
        extra_plots=_inside_the_model(trained.model, data)
        + _anomaly_figures(trained.model, data, evaluation, cfg) + list(extra_plots),
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


def _inside_the_model(model, data: PreparedData) -> list[tuple[str, bytes]]:
    """First-layer filters and one test image's feature maps, for CNNs."""
    filters = first_layer_filters(model)
    if filters is None:
        return []
    plots = [("First-layer filters", filters_png(filters))]
    maps = feature_maps(model, data.inputs("test")[0])
    if maps is not None:
        plots.append(("Feature maps of the first test image (first convolution)", feature_maps_png(maps)))
    return plots
