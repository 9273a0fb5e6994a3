"""The evaluation stage: threshold on validation, metrics on the untouched test split, baseline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from dlforge.config import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.evaluate.baseline import fit_baseline
from dlforge.evaluate.diagnosis import Diagnosis, diagnose
from dlforge.evaluate.inspect import latency_ms
from dlforge.evaluate.metrics import evaluate_scores
from dlforge.evaluate.predict import labels_from_scores, predict_scores
from dlforge.evaluate.threshold import choose_threshold
from dlforge.models import describe_model
from dlforge.tune.retrain import Retraining

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


def evaluate_trained(model: torch.nn.Module, data: PreparedData, cfg: RunConfig, device,
                     history: list[dict[str, float]], restored_epoch: int | None = None,
                     retrained: Retraining | None = None) -> Evaluation:
    """Choose the decision threshold on validation, then score the test split once.

    `restored_epoch` is the epoch whose weights early stopping restored, if it did. After a
    search retrained on train + validation (`retrained`), the validation split is training data:
    the threshold, validation metrics and diagnosis are then the best trial's.
    """
    task, batch = data.task, cfg.train.eval_batch_size
    if retrained is None:
        threshold, val_metrics, diagnosis = _on_validation(model, data, cfg, device, history,
                                                           restored_epoch)
        trained_on = {"splits": "train", "samples": len(data.splits.train)}
    else:
        threshold, val_metrics, diagnosis = _from_best_trial(retrained, data)
        trained_on = retrained.to_dict()
    test_scores = predict_scores(model, data.tensors["test"][0], task, batch_size=batch, device=device)
    test_metrics = evaluate_scores(task, data.splits.test.y, test_scores, threshold_value(threshold))
    return Evaluation(
        threshold=threshold, val_metrics=val_metrics, test_metrics=test_metrics,
        baseline=_baseline(data, cfg, retrained is None) if cfg.evaluate.baseline else None, diagnosis=diagnosis,
        model_info=describe_model(model, data.preprocessor.output_shape, _input_dtype(data))
        | latency_ms(model, data.tensors["test"][0][0]),
        misclassified=_misclassified(data, test_scores, threshold_value(threshold), cfg.evaluate.misclassified_examples),
        trained_on=trained_on,
    )


def _on_validation(model: torch.nn.Module, data: PreparedData, cfg: RunConfig, device,
                   history: list[dict[str, float]], restored_epoch: int | None):
    """Threshold, validation metrics and diagnosis of a model that never trained on validation."""
    task = data.task
    val_scores = predict_scores(model, data.tensors["val"][0], task,
                                batch_size=cfg.train.eval_batch_size, device=device)
    threshold = choose_threshold(task, data.splits.val.y, val_scores, cfg.evaluate.threshold)
    val_metrics = evaluate_scores(task, data.splits.val.y, val_scores, threshold_value(threshold))
    diagnosis = diagnose(history, task, data.dataset.modality, naive_mae=_naive_mae(data),
                         restored_epoch=restored_epoch)
    return threshold, val_metrics, diagnosis


def _from_best_trial(retrained: Retraining, data: PreparedData):
    """Threshold, validation headline and diagnosis as the best trial measured them."""
    found = diagnose(retrained.trial_history, data.task, data.dataset.modality,
                     naive_mae=_naive_mae(data), restored_epoch=retrained.restored_epoch)
    diagnosis = replace(found, reasons=[f"Learning curves of {retrained.source} (trained on the train "
                                        f"split, validated on the validation split), before "
                                        f"retraining on both.", *found.reasons])
    return retrained.threshold, {"headline": retrained.val_headline}, diagnosis


def _naive_mae(data: PreparedData) -> float | None:
    """Regression: validation MAE of always predicting the training mean, the floor to beat."""
    if data.task.kind != "regression":
        return None
    y_train, y_val = np.asarray(data.splits.train.y, float), np.asarray(data.splits.val.y, float)
    return float(np.mean(np.abs(y_val - y_train.mean(axis=0))))


def _baseline(data: PreparedData, cfg: RunConfig, threshold_on_val: bool) -> dict[str, Any]:
    """The same split through a classical model: raw texts for TF-IDF, preprocessed arrays
    otherwise. Its threshold is chosen on validation like the deep model's, unless validation
    is training data (retrained on train + validation): then it is 0.5."""
    if data.dataset.modality == "text":
        x_train, x_val, x_test = data.balanced.dataset.x, data.splits.val.x, data.splits.test.x
    else:
        x_train, x_val, x_test = (data.tensors[s][0].numpy() for s in ("train", "val", "test"))
    return fit_baseline(data.task, data.dataset.modality, x_train, data.balanced.dataset.y,
                        x_test, data.splits.test.y, seed=cfg.seed,
                        validation=(x_val, data.splits.val.y) if threshold_on_val else None,
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
        DataError: the data's classes differ from the ones the model was trained on.
    """
    from dlforge.data.prepare import load_and_split
    from dlforge.errors import DataError
    from dlforge.registry import load

    predictor = load(ref, workspace=workspace, url=url)
    dataset, splits, _ = load_and_split(cfg)
    part = splits.test if split == "test" else dataset
    if tuple(dataset.task.class_names) != tuple(predictor.task.class_names):
        raise DataError(f"--data: its classes {list(dataset.task.class_names)} differ from the "
                        f"model's {list(predictor.task.class_names)}")
    scores = predictor.predict_scores(part.x)
    metrics = evaluate_scores(predictor.task, part.y, scores, predictor.threshold)
    warnings = _split_warnings(predictor, cfg, workspace, url) if split == "test" else []
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
