"""`dlforge data review`: k-fold out-of-sample probabilities through the one candidate path,
confident learning on them, and the area under the margin of the same trainings."""

from __future__ import annotations

import numpy as np
import torch

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config import RunConfig, load_config
from dlforge.config.model_schema import GAN_TYPE
from dlforge.data.curate import fold_indices
from dlforge.data.prepare import PreparedData
from dlforge.errors import ConfigError, DataError
from dlforge.evaluate.label_issues import class_probabilities, confident_learning, margin_issues
from dlforge.models.scores import predict_scores
from dlforge.review.findings import Findings
from dlforge.train.margins import MarginTracker


def check_review_config(cfg: RunConfig) -> None:
    """Raise, before any data is read, for a config whose folds would train no classifier.

    Raises:
        ConfigError: `model.type` is dcgan (a GAN).

    Example:
        >>> check_review_config(load_config("examples/digits.yaml")) is None
        True
    """
    if cfg.model.type == GAN_TYPE:
        raise ConfigError("model.type: dcgan: review finds wrong class labels with classifiers "
                          "trained on the folds and a GAN trains none; review with a "
                          "classifier's config (e.g. --set model.type=basic_cnn --set "
                          "train.early_stopping=null)")


def check_reviewable(cfg: RunConfig, data: PreparedData) -> list[np.ndarray]:
    """The folds of `data`'s training split; raises before any training what would fail.

    Raises:
        ConfigError: see `check_review_config`.
        DataError: the task is not multiclass or binary, or a class has fewer training samples
            than `review.folds`.
    """
    check_review_config(cfg)
    if data.task.kind not in ("multiclass", "binary"):
        raise DataError(f"review: finds wrong class labels; this task is {data.task.kind} "
                        f"(multiclass or binary only)")
    train = data.splits.train
    return fold_indices(train.y, data.task.class_names, cfg.review.folds, cfg.seed)


def review_data(cfg: RunConfig, data: PreparedData, *, device: torch.device,
                progress: bool = False) -> Findings:
    """Rank `data`'s training samples by how likely their label is wrong.

    Each of `review.folds` folds is one `train_candidate` call (`review.epochs` epochs) on the
    other folds (`PreparedData.holding_out`), scoring the held-out fold: out-of-sample
    probabilities for confident learning. The same trainings track each sample's margin while
    it is a training sample: the area under the margin, averaged over its k-1 trainings.

    Args:
        cfg: the run config (model, training settings, `review` section).
        data: `prepare_data(cfg)`.
        device: where to train.
        progress: show the fit loop's progress.

    Returns:
        Findings with both signals; `flipped` from `data.flip_labels` when set.

    Raises:
        ConfigError, DataError: see `check_reviewable`.

    Example:
        >>> findings = review_data(cfg, prepare_data(cfg), device=torch.device("cpu"))  # doctest: +SKIP
        >>> findings.rows("confident_learning", top=1)  # doctest: +SKIP
        [{'id': '812', 'given': '3', 'suggested': '8', 'score': 0.01, 'flagged': True, 'issue': 'label'}]
    """
    folds = check_reviewable(cfg, data)
    fold_cfg = load_config(cfg, [f"train.epochs={cfg.review.epochs}"])
    train = data.splits.train
    n, k = len(train), len(data.task.class_names)
    probs = np.zeros((n, k))
    margin_sum, logit_sum, seen = np.zeros(n), np.zeros((n, k)), np.zeros(n)
    for number, held in enumerate(folds):
        fold = data.holding_out(fold_cfg, held)
        tracker = MarginTracker(*fold.training_samples(), batch_size=cfg.train.eval_batch_size)
        trained_on = {"splits": f"train without fold {number + 1} of {len(folds)}",
                      "samples": len(fold.splits.train)}
        candidate = train_candidate(TrainingPlan(fold_cfg, fold, callbacks=(tracker,),
                                                 trained_on=trained_on), device=device,
                                    progress=progress)
        scores = predict_scores(candidate.model, fold.inputs("test"), data.task,
                                batch_size=cfg.train.eval_batch_size, device=device)
        probs[held] = class_probabilities(scores)
        keep = np.setdiff1d(np.arange(n), held)
        margin_sum[keep] += tracker.mean_margin()
        logit_sum[keep] += tracker.mean_logits()
        seen[keep] += 1
    signals = {"confident_learning": confident_learning(train.y, probs),
               "aum": margin_issues(train.y, margin_sum / seen, logit_sum / seen[:, None])}
    return Findings(ids=train.ids, labels=train.y, class_names=data.task.class_names,
                    signals=signals, flipped=data.splits.info.get("flipped", []),
                    notes=_notes(cfg, len(folds)))


def _notes(cfg: RunConfig, folds: int) -> list[str]:
    return [f"Confident learning: {folds}-fold out-of-sample probabilities, each fold one training "
            f"of the run's model for {cfg.review.epochs} epochs on the other folds; class j's "
            f"threshold is the mean probability of j over the samples labelled j.",
            f"Area under the margin: each sample's margin (its label's logit minus the largest "
            f"other) at every epoch's end in eval mode, averaged over epochs and over the "
            f"{folds - 1} trainings it was a training sample of; flagged when negative."]
