"""Bias or variance? A verdict on the learning curves, with what to try next.

Rules, checked in this order (high bias is fixed first: regularizing a model that cannot fit
its own training data makes it worse):

1. underfitting (high bias): classification: the final TRAIN accuracy is below
   `chance + UNDERFIT_SHARE * (1 - chance)`, chance = 1 / number of classes (0.5 for binary
   and for each multilabel label); with 10 classes: below 0.775. Regression (when the caller
   gives `naive_mae`, the validation MAE of always predicting the training mean): the final
   validation MAE is above `NAIVE_SHARE` (0.9) x naive_mae.
2. overfitting (high variance), either of
   a. validation loss rose from its minimum by more than `VAL_RISE` (5%) by the last epoch
      while the training loss kept falling after that minimum;
   b. the final generalization gap is wide: train accuracy minus validation accuracy above
      `ACC_GAP` (0.10), or for regression validation MAE above `MAE_RATIO` (1.5) x train MAE.
3. underfitting (not converged): both training and validation loss still fell by more than
   `STILL_FALLING` (2%) in each of the last `RECENT` (2) epochs: more epochs would help.
4. otherwise: good fit.

A history without validation losses gives the verdict "unknown".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlforge.data.dataset import TaskSpec

UNDERFIT_SHARE = 0.75
NAIVE_SHARE = 0.9
VAL_RISE = 0.05
ACC_GAP = 0.10
MAE_RATIO = 1.5
STILL_FALLING = 0.02
RECENT = 2

UNDERFIT_ADVICE = [
    "Increase capacity: more or wider layers (model.hidden, model.filters, model.width).",
    "Train longer: raise train.epochs, or give early stopping more train.early_stopping.patience.",
    "Reduce regularization: lower model.dropout, train.weight_decay and train.l2.",
    "Tune the learning rate (train.lr): too low converges slowly, too high never settles; "
    "try a schedule with warm-up (train.schedule).",
]
OVERFIT_ADVICE = [
    "Get more training data, or augment images (augment.hflip, augment.crop, augment.rotate).",
    "Add L2 regularization: train.weight_decay (or train.l2).",
    "Add dropout (model.dropout) or batch normalization (model.batch_norm).",
    "Stop early on val_loss (train.early_stopping with restore_best: true).",
    "Try a smaller model (fewer or narrower layers).",
]
# Augmentation exists for images only; tables and texts are told to get more data instead.
NON_IMAGE_DATA_ADVICE = "Get more training data (more labelled samples, or a larger data.limit)."
GOOD_FIT_ADVICE = [
    "Train and validation agree; if the test metrics are still not enough, try a larger "
    "model together with more data, and keep watching the validation curve.",
]


@dataclass(frozen=True)
class Diagnosis:
    """A verdict on the learning curves.

    Attributes:
        verdict: "underfitting", "overfitting", "good fit" or "unknown".
        reasons: the measurements behind the verdict, one sentence each.
        advice: what to try next, naming config keys.
    """

    verdict: str
    reasons: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "advice": list(self.advice)}


def diagnose(history: Sequence[dict[str, float]], task: TaskSpec,
             modality: str | None = None, naive_mae: float | None = None,
             restored_epoch: int | None = None) -> Diagnosis:
    """Diagnose high bias or high variance from a training history.

    Args:
        history: one row per epoch with `loss`, `val_loss` and the task's metric
            (`accuracy`/`val_accuracy`, or `mae`/`val_mae` for regression), as `fit` records.
        task: the task trained (chance level comes from its number of classes).
        modality: "image", "table" or "text"; image augmentation is suggested only for images
            (None: the data is unknown and the image advice is kept).
        naive_mae: regression: validation MAE of always predicting the training mean.
        restored_epoch: the epoch (counted from 0) whose weights early stopping restored;
            the overfitting advice then says so instead of suggesting early stopping.

    Returns:
        The verdict, the reasons (with the numbers) and concrete advice.

    Example:
        >>> from dlforge.data.dataset import TaskSpec
        >>> rows = [{"loss": 1.0, "val_loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.5}]
        >>> diagnose(rows, TaskSpec("multiclass", tuple("abcdefghij"))).verdict
        'underfitting'
    """
    rows = [r for r in history if r.get("loss") is not None and r.get("val_loss") is not None]
    if not rows:
        return Diagnosis("unknown", ["the history has no epochs with both loss and val_loss"], [])
    reason = _train_too_poor(rows[-1], task) or _no_better_than_mean(rows[-1], naive_mae)
    if reason:
        return Diagnosis("underfitting", [reason], list(UNDERFIT_ADVICE))
    reasons = [r for r in (_val_rising(rows), _gap(rows[-1], task)) if r]
    if reasons:
        advice = _overfit_advice(modality)
        if restored_epoch is not None:
            reasons.append(f"early stopping already restored the weights of epoch "
                           f"{restored_epoch + 1}, the best on validation")
            advice = [a for a in advice if not a.startswith("Stop early")]
        return Diagnosis("overfitting", reasons, advice)
    reason = _still_falling(rows)
    if reason:
        return Diagnosis("underfitting", [reason], list(UNDERFIT_ADVICE))
    last = rows[-1]
    return Diagnosis("good fit", [
        f"train loss {last['loss']:.4g} and val_loss {last['val_loss']:.4g} have levelled off "
        f"together; no sign of high bias or high variance"], list(GOOD_FIT_ADVICE))


def _overfit_advice(modality: str | None) -> list[str]:
    if modality in (None, "image"):
        return list(OVERFIT_ADVICE)
    return [NON_IMAGE_DATA_ADVICE, *OVERFIT_ADVICE[1:]]


def _train_too_poor(last: dict[str, float], task: TaskSpec) -> str | None:
    if task.kind == "regression" or last.get("accuracy") is None:
        return None
    chance = 0.5 if task.kind in ("binary", "multilabel") else 1 / max(len(task.class_names), 1)
    bar = chance + UNDERFIT_SHARE * (1 - chance)
    if last["accuracy"] >= bar:
        return None
    return (f"final train accuracy {last['accuracy']:.3f} is below {bar:.3f} (chance {chance:.3f} "
            f"plus {UNDERFIT_SHARE:.0%} of the way to 1): the model cannot fit its own training data")


def _no_better_than_mean(last: dict[str, float], naive_mae: float | None) -> str | None:
    val_mae = last.get("val_mae")
    if naive_mae is None or val_mae is None or val_mae <= NAIVE_SHARE * naive_mae:
        return None
    return (f"final val_mae {val_mae:.4g} is no better than {NAIVE_SHARE:g} x {naive_mae:.4g}, the "
            f"error of always predicting the training mean: the model has not learnt the target")


def _val_rising(rows: list[dict[str, float]]) -> str | None:
    val = [r["val_loss"] for r in rows]
    best = min(range(len(val)), key=val.__getitem__)
    best_val, last = val[best], rows[-1]
    if best == len(rows) - 1 or last["val_loss"] <= best_val * (1 + VAL_RISE):
        return None
    if last["loss"] >= rows[best]["loss"]:
        return None
    return (f"val_loss rose from its minimum {best_val:.4g} (epoch {_epoch(rows, best)}) to "
            f"{last['val_loss']:.4g} (epoch {_epoch(rows, len(rows) - 1)}, "
            f"+{last['val_loss'] / best_val - 1:.0%}) while train loss fell from "
            f"{rows[best]['loss']:.4g} to {last['loss']:.4g}")


def _gap(last: dict[str, float], task: TaskSpec) -> str | None:
    if task.kind == "regression":
        mae, val_mae = last.get("mae"), last.get("val_mae")
        if mae is None or val_mae is None or val_mae <= MAE_RATIO * mae:
            return None
        return (f"validation MAE {val_mae:.4g} is more than {MAE_RATIO:g}x the train MAE "
                f"{mae:.4g}")
    acc, val_acc = last.get("accuracy"), last.get("val_accuracy")
    if acc is None or val_acc is None or acc - val_acc <= ACC_GAP:
        return None
    return (f"train accuracy {acc:.3f} exceeds validation accuracy {val_acc:.3f} by "
            f"{acc - val_acc:.3f} (more than {ACC_GAP:g})")


def _still_falling(rows: list[dict[str, float]]) -> str | None:
    if len(rows) < 2:
        return None
    window = rows[-(RECENT + 1):]

    def slowest_drop(key: str) -> float:  # the smallest relative drop of one epoch in the window
        return min((a[key] - b[key]) / abs(a[key]) if a[key] else 0.0
                   for a, b in zip(window[:-1], window[1:], strict=True))

    train_drop, val_drop = slowest_drop("loss"), slowest_drop("val_loss")
    if train_drop <= STILL_FALLING or val_drop <= STILL_FALLING:
        return None
    return (f"train and validation loss still fell by at least {train_drop:.1%} and "
            f"{val_drop:.1%} in each of the last {len(window) - 1} epoch(s): training stopped "
            f"before converging")


def _epoch(rows: list[dict[str, float]], index: int) -> Any:
    """The epoch number counted from 1, as the progress lines print it (`fit` records from 0)."""
    epoch = rows[index].get("epoch", index)
    epoch = int(epoch) if isinstance(epoch, float) and epoch.is_integer() else epoch
    return epoch + 1 if isinstance(epoch, int) else epoch
