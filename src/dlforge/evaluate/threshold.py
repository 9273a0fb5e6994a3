"""The decision threshold, chosen on the VALIDATION split and applied unchanged to test.

Choosing it on test would leak the test labels into a decision; the pipeline calls this with
validation scores only.

Decision: `choose_threshold` returns a `Threshold` (value plus what it achieves on
validation and an optional warning) rather than a bare float, so that a goal that cannot be
met is reported instead of silently ignored. `Threshold.value` is the float (binary) or the
list of floats (multilabel) that `labels_from_scores` and `evaluate_scores` take.

Objectives (binary; a sample is positive when score >= threshold):

- `max_f1`: the threshold maximizing F1 of the positive class; ties go to the LOWER threshold
  (more recall of the rare class for the same F1).
- `min_recall`: the HIGHEST threshold whose positive-class recall is >= value, i.e. the best
  precision that keeps the recall promise. With `confidence` (default 0.95) the promise is
  kept with a margin for the validation sample size: the one-sided Clopper-Pearson lower
  bound of recall (k of n positives found: the `1 - confidence` quantile of Beta(k, n - k + 1))
  must reach the value; `achieved` reports the bound beside the point estimate. A split with
  too few positives for the bound to reach the value (n < log(1 - confidence) / log(value))
  gets the highest threshold that finds every validation positive, and a warning.
- `min_precision`: the LOWEST threshold whose precision is >= value, i.e. the most recall under
  the precision promise. When no threshold reaches it, the threshold of the highest precision
  (lowest among ties) is used and `warning` says so.
- `fixed`: `value` itself.

Anomaly detection (scores are reconstruction errors; a sample is an anomaly when score >=
threshold), calibrated on the NORMAL validation samples only:

- `false_alarm_rate`: the smallest validation score that flags at most `value` of the normal
  validation samples (0.01: about 1 in 100 normal samples is flagged).
- `percentile`: the `value`-th percentile of the normal validation scores (Alibi Detect's
  default is the 95th).

Candidate thresholds are the validation scores themselves (scikit-learn's
`precision_recall_curve`), so the precision and recall reported as `achieved` are exactly
what the threshold gives on validation. Without any positive in the validation split no goal
can be measured: the threshold stays at 0.5 (or the fixed value) with a warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from dlforge.errors import DataError
from dlforge.models.scores import DEFAULT_THRESHOLD, check_finite

if TYPE_CHECKING:
    from dlforge.config.schema import ThresholdConfig
    from dlforge.data.dataset import TaskSpec


@dataclass(frozen=True)
class Threshold:
    """A chosen decision threshold and how it does on the validation split.

    Attributes:
        value: the threshold (binary) or one per label (multilabel).
        objective: the `evaluate.threshold.objective` it was chosen for.
        achieved: validation `precision`, `recall` and `f1` of the positive class at `value`
            (multilabel: one list per metric, one entry per label).
        warning: set when the goal could not be met or measured; None otherwise.
    """

    value: float | list[float]
    objective: str
    achieved: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose_threshold(
    task: TaskSpec, y_val: np.ndarray, scores_val: np.ndarray, cfg: ThresholdConfig
) -> Threshold | None:
    """Choose the decision threshold(s) on validation scores for `cfg.objective`.

    Args:
        task: the task; only binary and multilabel tasks have thresholds.
        y_val: validation labels (binary `(N,)` 0/1, multilabel `(N, K)` 0/1).
        scores_val: validation scores from `predict_scores`.
        cfg: `evaluate.threshold` (objective and value).

    Returns:
        A `Threshold` for binary and anomaly (one value) and multilabel (the objective applied
        to each label on its own, a list of values); None for multiclass (argmax) and
        regression.

    Raises:
        DataError: some validation scores are NaN or infinite (a diverged model), or an
            anomaly task's validation split has no normal sample.

    Example:
        >>> from dlforge.config.schema import ThresholdConfig
        >>> from dlforge.data.dataset import TaskSpec
        >>> cfg = ThresholdConfig(objective="min_recall", value=0.75, confidence=None)
        >>> y_val, s_val = np.array([0, 0, 1, 1, 1, 1]), np.array([0.1, 0.35, 0.3, 0.6, 0.8, 0.9])
        >>> round(choose_threshold(TaskSpec("binary", ("ok", "ng")), y_val, s_val, cfg).value, 2)
        0.6
    """
    if task.kind not in ("binary", "multilabel", "anomaly"):
        return None
    check_finite(scores_val, "evaluate.threshold")
    if task.kind == "anomaly":
        return _anomaly(np.asarray(scores_val)[np.asarray(y_val) == 0], cfg.objective, cfg.value)
    if task.kind == "binary":
        return _binary(np.asarray(y_val), np.asarray(scores_val), cfg, task.class_names[1])
    y_val, scores_val = np.asarray(y_val), np.asarray(scores_val)
    per_label = [_binary(y_val[:, k], scores_val[:, k], cfg, name)
                 for k, name in enumerate(task.class_names)]
    warnings = [t.warning for t in per_label if t.warning]
    return Threshold(
        value=[t.value for t in per_label],
        objective=cfg.objective,
        achieved={m: [t.achieved.get(m) for t in per_label] for m in ("precision", "recall", "f1")},
        warning="\n".join(warnings) or None,
    )


def _binary(y: np.ndarray, scores: np.ndarray, cfg: ThresholdConfig, positive: str) -> Threshold:
    objective, target = cfg.objective, cfg.value
    if objective == "fixed":
        return _at(y, scores, float(target), objective)
    if not np.any(y == 1):
        return _at(y, scores, DEFAULT_THRESHOLD, objective, warning=(
            f"evaluate.threshold: the validation split has no sample of class {positive!r}, so "
            f"{objective} cannot be measured; using {DEFAULT_THRESHOLD}"))
    precision, recall, thresholds = precision_recall_curve(y, scores)
    # the curve's last point (precision 1, recall 0) has no threshold; drop it
    precision, recall = precision[:-1], recall[:-1]
    if objective == "max_f1":
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(precision), where=(precision + recall) > 0)
        return _at(y, scores, float(thresholds[int(np.argmax(f1))]), objective)
    if objective == "min_recall":
        return _min_recall(y, scores, recall, thresholds, cfg, positive)
    ok = np.flatnonzero(precision >= target)
    if ok.size:
        return _at(y, scores, float(thresholds[ok[0]]), objective)
    best = int(np.argmax(precision))
    return _at(y, scores, float(thresholds[best]), objective, warning=(
        f"evaluate.threshold: no threshold reaches precision {target:g} for class {positive!r} "
        f"on validation (best {precision[best]:.3f}); using the threshold of the highest "
        f"precision instead. Lower evaluate.threshold.value or improve the model"))


def _anomaly(normal: np.ndarray, objective: str, value: float) -> Threshold:
    """The cut on normal validation scores that flags `value` of them (or at a percentile)."""
    if normal.size == 0:
        raise DataError("evaluate.threshold: the validation split has no normal sample to "
                        "calibrate the anomaly threshold on; raise data.val_fraction")
    share = 1 - value / 100 if objective == "percentile" else value  # of normal samples flagged
    # "higher": an actual normal score, so at most the asked share of normal samples is flagged
    cut = float(np.quantile(normal, 1 - share, method="higher"))
    flagged = float(np.mean(normal >= cut))
    if flagged > share + 1e-9:  # too few samples for the share, or ties: step just above the cut
        cut = float(np.nextafter(cut, np.inf))
        flagged = float(np.mean(normal >= cut))
    return Threshold(value=cut, objective=objective,
                     achieved={"false_alarm_rate": flagged, "normal_samples": int(normal.size)})


def _min_recall(y: np.ndarray, scores: np.ndarray, recall: np.ndarray, thresholds: np.ndarray,
                cfg: ThresholdConfig, positive: str) -> Threshold:
    """The highest threshold whose recall (or, with `cfg.confidence`, its lower bound) reaches
    `cfg.value`; recall[0] == 1, so the point estimate is always reachable."""
    if cfg.confidence is None:
        ok = np.flatnonzero(recall >= cfg.value)
        return _at(y, scores, float(thresholds[ok[-1]]), cfg.objective)
    n = int(np.sum(y == 1))
    bounds = recall_lower_bound(np.rint(recall * n), n, cfg.confidence)
    ok = np.flatnonzero(bounds >= cfg.value)
    if ok.size:
        return _at(y, scores, float(thresholds[ok[-1]]), cfg.objective, confidence=cfg.confidence)
    everyone = np.flatnonzero(recall >= 1.0)[-1]
    return _at(y, scores, float(thresholds[everyone]), cfg.objective, confidence=cfg.confidence,
               warning=(f"evaluate.threshold: {n} validation samples of class {positive!r} are too "
                        f"few to show recall {cfg.value:g} at confidence {cfg.confidence:g} (the "
                        f"bound is {bounds[everyone]:.3f} even when all are found); using the "
                        f"highest threshold that finds all of them. Give the validation split "
                        f"more positives (data.val_fraction) or lower evaluate.threshold.confidence"))


def recall_lower_bound(found: np.ndarray | float, positives: int, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound of recall: with probability `confidence`, the
    true recall is at least this when `found` of `positives` positives were found.

    Example:
        >>> round(float(recall_lower_bound(20, 20, 0.95)), 4)  # 0.05 ** (1 / 20)
        0.8609
    """
    from scipy.stats import beta

    found = np.asarray(found, dtype=float)
    bound = beta.ppf(1 - confidence, np.maximum(found, 1), positives - found + 1)
    return np.where(found > 0, bound, 0.0)


def _at(y: np.ndarray, scores: np.ndarray, value: float, objective: str,
        warning: str | None = None, confidence: float | None = None) -> Threshold:
    """A Threshold with the validation precision, recall and F1 it gives (and, with
    `confidence`, the lower bound of its recall)."""
    p, r, f, _ = precision_recall_fscore_support(
        y, (scores >= value).astype(np.int64), average="binary", zero_division=0)
    achieved = {"precision": float(p), "recall": float(r), "f1": float(f)}
    if confidence is not None:
        n = int(np.sum(y == 1))
        achieved |= {"recall_lower_bound": float(recall_lower_bound(round(r * n), n, confidence)),
                     "confidence": confidence}
    return Threshold(value=value, objective=objective, achieved=achieved, warning=warning)
