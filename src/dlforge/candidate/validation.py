"""What the validation split says of a trained model: its decision threshold, its metrics and
the diagnosis of its learning curves. Chosen here, on validation only; test is scored later,
once, with the threshold chosen here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlforge.config.muon_schema import MuonConfig
from dlforge.evaluate.diagnosis import Diagnosis, diagnose
from dlforge.evaluate.metrics import evaluate_scores
from dlforge.evaluate.threshold import Threshold, choose_threshold
from dlforge.models.scores import predict_scores

if TYPE_CHECKING:
    from dlforge.config.schema import RunConfig
    from dlforge.data.prepare import PreparedData


@dataclass(frozen=True)
class ValidationScores:
    """A candidate on the validation split.

    Attributes:
        threshold: the decision threshold (binary, multilabel) chosen on validation, or None.
        metrics: validation metrics at that threshold (at least `headline`).
        diagnosis: bias/variance verdict of the learning curves.
    """

    threshold: Threshold | None
    metrics: dict[str, Any]
    diagnosis: Diagnosis

    @property
    def threshold_value(self) -> float | list[float] | None:
        """The number(s) the threshold applies, or None."""
        return None if self.threshold is None else self.threshold.value

    @property
    def headline(self) -> list[Any]:
        return self.metrics["headline"]


def score_on_validation(model: torch.nn.Module, data: PreparedData, cfg: RunConfig,
                        device: torch.device, history: list[dict[str, float]],
                        restored_epoch: int | None) -> ValidationScores:
    """Threshold, metrics and diagnosis of a model that never trained on the validation split.

    `restored_epoch` is the epoch whose weights early stopping restored, if it did.
    """
    task, y_val = data.task, data.splits.val.y
    scores = predict_scores(model, data.inputs("val"), task, batch_size=cfg.train.eval_batch_size,
                            device=device)
    threshold = choose_threshold(task, y_val, scores, cfg.evaluate.threshold)
    value = None if threshold is None else threshold.value
    return ValidationScores(threshold, evaluate_scores(task, y_val, scores, value),
                            diagnose_history(history, data, restored_epoch, cfg))


def diagnose_history(history: list[dict[str, float]], data: PreparedData,
                     restored_epoch: int | None, cfg: RunConfig) -> Diagnosis:
    """The diagnosis of learning curves measured on `data`'s train and validation splits,
    trained with `cfg` (whose learning-rate keys a "diverged" verdict names)."""
    channels = data.input_shape[0] if data.modality == "image" else None
    return diagnose(history, data.task, data.modality, naive_mae=naive_mae(data),
                    restored_epoch=restored_epoch, val_samples=len(data.splits.val.y),
                    channels=channels, lr=cfg.train.lr, lr_keys=lr_keys(cfg))


def lr_keys(cfg: RunConfig) -> list[tuple[str, float]]:
    """(key, value) of the settings that set `cfg`'s learning rates: `train.lr`, or for an
    update (`update.source`) `update.lr` or else `update.lr_mult` (`dlforge update` sets
    train.lr from them); with optimizer muon `train.muon.lr` first (the matrices step with it).

    Example:
        >>> from dlforge.config import load_config
        >>> lr_keys(load_config({"train": {"optimizer": "muon", "lr": 0.01}}))
        [('train.muon.lr', 0.02), ('train.lr', 0.01)]
    """
    if cfg.update.source is None:
        keys = [("train.lr", cfg.train.lr)]
    elif cfg.update.lr is not None:
        keys = [("update.lr", cfg.update.lr)]
    else:
        keys = [("update.lr_mult", cfg.update.lr_mult)]
    if cfg.train.optimizer == "muon":
        keys.insert(0, ("train.muon.lr", (cfg.train.muon or MuonConfig()).lr))
    return keys


def naive_mae(data: PreparedData) -> float | None:
    """Regression: validation MAE of always predicting the training mean, the floor to beat."""
    if data.task.kind != "regression":
        return None
    y_train, y_val = np.asarray(data.splits.train.y, float), np.asarray(data.splits.val.y, float)
    return float(np.mean(np.abs(y_val - y_train.mean(axis=0))))
