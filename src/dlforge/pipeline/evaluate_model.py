"""The evaluation stage: threshold on validation, metrics on the untouched test split, baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dlforge.candidate import Candidate
from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.evaluate.baseline import fit_baseline
from dlforge.evaluate.diagnosis import Diagnosis
from dlforge.evaluate.inspect import latency_ms
from dlforge.evaluate.metrics import evaluate_scores
from dlforge.models import describe_model
from dlforge.models.scores import labels_from_scores, predict_scores

CURVE_KEYS = ("roc_curve", "pr_curve")


@dataclass
class Evaluation:
    """Everything measured after training. Test metrics are computed once, here."""

    threshold: Any
    val_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    baseline: dict[str, Any] | None
    diagnosis: Diagnosis
    model_info: dict[str, Any]
    misclassified: dict[str, Any] | None
    trained_on: dict[str, Any] | None = None

    def summary_metrics(self) -> dict[str, Any]:
        """Compact JSON for the store: headline and scalar metrics, no curves."""
        return {
            "headline": self.test_metrics["headline"],
            "test": {k: v for k, v in self.test_metrics.items() if k not in CURVE_KEYS},
            "val_headline": self.val_metrics["headline"],
            "baseline_headline": (self.baseline or {}).get("metrics", {}).get("headline"),
            "threshold": threshold_json(self.threshold),
            "model": self.model_info,
            "trained_on": self.trained_on,
            "diagnosis": self.diagnosis.to_dict(),  # shown by the dashboard's run page
        }


def evaluate_candidate(candidate: Candidate, data: PreparedData, device: torch.device) -> Evaluation:
    """Score the test split once, at the candidate's validation-chosen threshold, beside a
    classical baseline fitted on the same split.

    The threshold, validation metrics and diagnosis are the candidate's (`candidate.validation`:
    measured on the validation split, or the best trial's when it was retrained on train +
    validation).
    """
    cfg, model, scores = candidate.config, candidate.model, candidate.validation
    threshold = scores.threshold_value
    test_scores = predict_scores(model, data.inputs("test"), data.task,
                                 batch_size=cfg.train.eval_batch_size, device=device)
    return Evaluation(
        threshold=scores.threshold, val_metrics=scores.metrics,
        test_metrics=evaluate_scores(data.task, data.splits.test.y, test_scores, threshold),
        baseline=_baseline(data, cfg) if cfg.evaluate.baseline else None,
        diagnosis=scores.diagnosis,
        model_info=describe_model(model, data.input_shape, _input_dtype(data))
        | latency_ms(model, data.inputs("test")[0]) | {"training_precision": candidate.precision},
        misclassified=_misclassified(data, test_scores, threshold, cfg.evaluate.misclassified_examples),
        trained_on=candidate.trained_on,
    )


def _baseline(data: PreparedData, cfg: RunConfig) -> dict[str, Any]:
    """The same split through a classical model: raw texts for TF-IDF, preprocessed arrays
    otherwise. Its threshold is chosen on validation like the deep model's, unless validation
    is training data (retrained on train + validation): then it is 0.5."""
    if data.dataset.modality == "text":
        x_train, x_val, x_test = data.balanced.dataset.x, data.splits.val.x, data.splits.test.x
    else:
        x_train, x_val, x_test = (data.inputs(s).numpy() for s in ("train", "val", "test"))
    return fit_baseline(data.task, data.dataset.modality, x_train, data.balanced.dataset.y,
                        x_test, data.splits.test.y, seed=cfg.seed,
                        validation=(x_val, data.splits.val.y) if data.has_validation else None,
                        threshold=cfg.evaluate.threshold)


def _misclassified(data: PreparedData, scores: np.ndarray, threshold, limit: int) -> dict[str, Any] | None:
    task = data.task
    if data.dataset.modality != "image" or task.kind not in ("multiclass", "binary") or limit == 0:
        return None
    predicted = labels_from_scores(task, scores, threshold)
    wrong = np.flatnonzero(predicted != data.splits.test.y)[:limit]
    names = task.class_names
    return {
        "images": data.splits.test.x[wrong],
        "true": [names[i] for i in data.splits.test.y[wrong]],
        "predicted": [names[i] for i in predicted[wrong]],
        "count": int((predicted != data.splits.test.y).sum()),
    }


def _input_dtype(data: PreparedData) -> torch.dtype:
    return torch.long if data.dataset.modality == "text" else torch.float32


def threshold_value(threshold: Any) -> Any:
    """The number(s) inside whatever choose_threshold returned."""
    return getattr(threshold, "value", threshold)


def threshold_json(threshold: Any) -> Any:
    """The chosen threshold as JSON: its value, objective and what it achieved on validation."""
    if hasattr(threshold, "to_dict"):
        return threshold.to_dict()
    return threshold


def evaluate_registered(ref: str, cfg: RunConfig, *, split: str = "test", workspace=None,
                        url: str | None = None) -> dict[str, Any]:
    """Score a registered model on the test split (or all samples) of `cfg`'s data.

    The model's saved preprocessing and decision threshold are applied unchanged.

    Raises:
        ConfigError: the model is a GAN (before the data is read).
        DataError: the data's classes differ from the ones the model was trained on.
    """
    from dlforge.data.prepare import load_and_split
    from dlforge.errors import DataError
    from dlforge.registry import load

    predictor = load(ref, workspace=workspace, url=url)
    predictor.check_predicts()
    dataset, splits, _ = load_and_split(cfg, training=False)  # no model is trained on it
    part = splits.test if split == "test" else dataset
    if tuple(dataset.task.class_names) != tuple(predictor.task.class_names):
        raise DataError(f"--data: its classes {list(dataset.task.class_names)} differ from the "
                        f"model's {list(predictor.task.class_names)}")
    scores = predictor.predict_scores(part.x)
    metrics = evaluate_scores(predictor.task, part.y, scores, predictor.threshold)
    warnings = _split_warnings(predictor, cfg, workspace, url) if split == "test" else []
    streamed = splits.info.get("streamed", {})
    if split == "all" and streamed.get("train", 0) > streamed.get("in_memory", 0):
        warnings.append(f"--split all: data.streaming keeps {streamed['in_memory']} of the "
                        f"training split's {streamed['train']} samples in memory; these "
                        f"{len(part)} samples are validation, test and those (set "
                        f"data.streaming: false to score every sample)")
    return {**metrics, "n_samples": len(part), "warnings": warnings}


def _split_warnings(predictor, cfg: RunConfig, workspace, url: str | None) -> list[str]:
    """The test split is only untouched if it is cut the same way as at training time."""
    from dlforge.registry import Store
    from dlforge.workspace import resolve_workspace

    run_id = predictor.version.run_id if predictor.version else None
    if run_id is None:
        return []
    with Store.open(resolve_workspace(workspace), url) as store:
        trained = store.get_run(run_id).config
    same = {k: v for k, v in trained.get("data", {}).items() if k != "cache_dir"}
    mine = {k: v for k, v in cfg.data.model_dump(mode="json").items() if k != "cache_dir"}
    if same == mine and trained.get("seed") == cfg.seed:
        return []
    return [f"the data section or seed differs from the one the model was trained with (run "
            f"{run_id}); this test split may contain samples the model was trained on"]
