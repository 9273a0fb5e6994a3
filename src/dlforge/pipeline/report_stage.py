"""The report stage: gather what the run measured into one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dlforge.candidate import Candidate
from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.evaluate.inspect import feature_maps, first_layer_filters
from dlforge.pipeline.evaluate_model import Evaluation
from dlforge.report.html import ReportData, write_report
from dlforge.report.plots import feature_maps_png, filters_png


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
        extra_plots=_inside_the_model(trained.model, data) + list(extra_plots),
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
