"""Bias or variance? A verdict on the learning curves, calibrated to the validation set's
noise, with what to try next.

Rules, checked in this order (high bias is fixed first: regularizing a model that cannot fit
its own training data makes it worse):

0. diverged: the training loss is not finite (NaN or inf) in some epoch, its last value is
   more than `DIVERGE_RISE` (10) x its first (when the first is above 0), or it ends more than `DIVERGE_RISE` x the loss of
   guessing (classification: ln K, ln 2 per binary or multilabel label; regression: the final
   train MAE against `naive_mae`): the steps overshoot (a loss can blow up within the first
   epoch and stay there), so the learning rate is too high; the advice names the keys that set
   it (`lr_keys`: `train.lr`; `update.lr` or `update.lr_mult` for `dlforge update`;
   `train.muon.lr` too for optimizer muon) and suggests a tenth of each.
1. underfitting (high bias) needs high training error: classification: the final TRAIN
   accuracy is below `chance + UNDERFIT_SHARE * (1 - chance)`, chance = 1 / number of classes
   (0.5 for binary and for each multilabel label); with 10 classes: below 0.775. Regression
   (when the caller gives `naive_mae`, the validation MAE of always predicting the training
   mean): the final validation MAE is above `NAIVE_SHARE` (0.9) x naive_mae.
2. overfitting (high variance) needs a gap larger than the validation metric's own noise:
   a. classification: final train accuracy minus validation accuracy above `NOISE_Z` (3) x the
      binomial standard error of validation accuracy, sqrt(p (1 - p) / n_val) (p the
      validation accuracy, kept at least 1 / n_val from 0 and 1; the epoch-to-epoch spread is
      not used: while a model still learns it measures progress, not noise). Without the validation size the gap must exceed `ACC_GAP` (0.10). A rising val_loss
      alone is not enough (a few confident mistakes move it); it is reported beside the gap.
   b. regression: validation MAE above `MAE_RATIO` (1.5) x train MAE, or validation loss rose
      from its minimum by more than `VAL_RISE` (5%) by the last epoch while the training loss
      kept falling after that minimum.
3. otherwise: good fit, with what would still help: more epochs when both losses still fell
   by more than `STILL_FALLING` (2%) in each of the last `RECENT` (2) epochs AND the last
   val_loss is the lowest of the run; else more data with a larger model. A run whose best
   val_loss came earlier (early stopping ended it, or the last epochs only recovered from a
   bump) is never told to train longer: more epochs did not improve validation.

Advice fits the data: image augmentation only for images, and mirror flips only for colour
photos (never for greyscale digits, letters or scans, whose mirror image changes meaning).
A history without validation losses gives the verdict "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlforge.data.dataset import TaskSpec

DIVERGE_RISE = 10.0
UNDERFIT_SHARE = 0.75
NAIVE_SHARE = 0.9
VAL_RISE = 0.05
ACC_GAP = 0.10
NOISE_Z = 3.0
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
    "Get more training data, or augment images with small shifts and rotations (augment.crop, "
    "augment.rotate).",
    "Add L2 regularization: train.weight_decay (or train.l2).",
    "Add dropout (model.dropout) or batch normalization (model.batch_norm).",
    "Stop early on val_loss (train.early_stopping with restore_best: true).",
    "Try a smaller model (fewer or narrower layers).",
]
# Augmentation exists for images only; tables and texts are told to get more data instead.
NON_IMAGE_DATA_ADVICE = "Get more training data (more labelled samples, or a larger data.limit)."
# Colour photos keep their class when mirrored; digits, letters and text-like scans do not.
FLIP_ADVICE = (" Colour photos may also be mirrored (augment.preset: natural, or augment.hflip) if a "
               "mirror image keeps its class.")
GOOD_FIT_ADVICE = [
    "Train and validation agree; if the test metrics are still not enough, try a larger "
    "model together with more data, and keep watching the validation curve.",
]
TRAIN_LONGER_ADVICE = [
    "Train longer: both losses were still falling; raise train.epochs (or "
    "train.time_budget_s), or give early stopping more train.early_stopping.patience.",
]


@dataclass(frozen=True)
class Diagnosis:
    """A verdict on the learning curves.

    Attributes:
        verdict: "diverged", "underfitting", "overfitting", "good fit" or "unknown".
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
             restored_epoch: int | None = None, *, val_samples: int | None = None,
             channels: int | None = None, lr: float | None = None,
             lr_keys: Sequence[tuple[str, float]] = ()) -> Diagnosis:
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
        val_samples: size of the validation split: the binomial noise of its accuracy.
        channels: images: channels per image; mirror flips are suggested for colour (3) only.
        lr: the peak learning rate trained with (`train.lr`), named by a "diverged" verdict.
        lr_keys: (config key, its value) of every setting that set the learning rates, named
            by a "diverged" verdict instead of `train.lr` (empty: `train.lr` at `lr`).

    Returns:
        The verdict, the reasons (with the numbers) and concrete advice.

    Example:
        >>> from dlforge.data.dataset import TaskSpec
        >>> rows = [{"loss": 0.01, "val_loss": 0.05, "accuracy": 0.999, "val_accuracy": 0.989}]
        >>> diagnose(rows, TaskSpec("multiclass", tuple("abcdefghij")), val_samples=270).verdict
        'good fit'
    """
    diverged = _diverged(history, task, naive_mae,
                         list(lr_keys) or ([("train.lr", lr)] if lr is not None else []))
    if diverged:
        return diverged
    rows = [r for r in history if r.get("loss") is not None and r.get("val_loss") is not None]
    if not rows:
        return Diagnosis("unknown", ["the history has no epochs with both loss and val_loss"], [])
    reason = _train_too_poor(rows[-1], task) or _no_better_than_mean(rows[-1], naive_mae)
    if reason:
        return Diagnosis("underfitting", [reason], list(UNDERFIT_ADVICE))
    gap = _gap(rows, task, val_samples)
    if gap.overfit:
        reasons = list(dict.fromkeys(r for r in (gap.reason, _val_rising(rows)) if r))
        advice = _overfit_advice(modality, channels)
        if restored_epoch is not None:
            reasons.append(f"early stopping already restored the weights of epoch "
                           f"{restored_epoch + 1}, the best on validation")
            advice = [a for a in advice if not a.startswith("Stop early")]
        return Diagnosis("overfitting", reasons, advice)
    return _good_fit(rows, gap.reason)


def _diverged(history: Sequence[dict[str, float]], task: TaskSpec, naive_mae: float | None,
              lr_keys: list[tuple[str, float]]) -> Diagnosis | None:
    """The "diverged" verdict when the training loss went non-finite, grew, or ended far
    above guessing, else None."""
    losses = [(i, r["loss"]) for i, r in enumerate(history) if r.get("loss") is not None]
    if not losses:
        return None
    reason = _blown_up(losses, list(history)) or _far_above_guessing(history[losses[-1][0]],
                                                                     task, naive_mae)
    if reason is None:
        return None
    name = " or ".join(f"{key} ({value:g})" for key, value in lr_keys) + " is" if lr_keys else \
        "the learning rate (train.lr) is"
    fix = "Lower " + " and ".join(f"{key} to {value / 10:g} (a tenth of {value:g})"
                                  for key, value in lr_keys) if lr_keys else "Lower train.lr tenfold"
    return Diagnosis("diverged", [f"{reason}; {name} too high"], [
        f"{fix}, and again tenfold until the training loss falls.",
        "Warm up to it (train.schedule.warmup_steps) and clip gradients (train.grad_clip) if it "
        "still jumps."])


def _blown_up(losses: list[tuple[int, float]], history: list[dict[str, float]]) -> str | None:
    bad = next(((i, v) for i, v in losses if not math.isfinite(v)), None)
    if bad is not None:
        return f"the training loss became {bad[1]} at epoch {_epoch(history, bad[0])}"
    first, last = losses[0][1], losses[-1][1]
    if first > 0 and last > DIVERGE_RISE * first:  # a first loss of 0 has no ratio
        return f"the training loss grew from {first:.4g} to {last:.4g} ({last / first:.3g}x)"
    return None


def _far_above_guessing(last: dict[str, float], task: TaskSpec,
                        naive_mae: float | None) -> str | None:
    """Classification: the final training loss above `DIVERGE_RISE` x the cross-entropy of
    guessing (ln K; ln 2 per binary or multilabel label). Regression: the final training MAE
    above `DIVERGE_RISE` x the MAE of always predicting the training mean."""
    if task.kind == "regression":
        mae = last.get("mae")
        if naive_mae and mae is not None and mae > DIVERGE_RISE * naive_mae:
            return (f"the final train MAE {mae:.4g} is more than {DIVERGE_RISE:g}x the "
                    f"{naive_mae:.4g} of always predicting the training mean")
        return None
    if task.kind not in ("binary", "multiclass", "multilabel"):
        return None
    k = 2 if task.kind != "multiclass" else max(len(task.class_names), 2)
    guess = math.log(k)
    if last["loss"] > DIVERGE_RISE * guess:
        return (f"the final training loss {last['loss']:.4g} is more than {DIVERGE_RISE:g}x "
                f"{guess:.3f}, the loss of guessing (ln {k})")
    return None


def _good_fit(rows: list[dict[str, float]], gap_reason: str | None) -> Diagnosis:
    """Neither high bias nor high variance: what was measured, and what would still help."""
    last, falling = rows[-1], _still_falling(rows)
    reasons = [gap_reason] if gap_reason else []
    rising = _val_rising(rows)
    if rising:
        reasons.append(rising + "; within the noise of validation accuracy, so not overfitting")
    if falling:
        return Diagnosis("good fit", [*reasons, falling], list(TRAIN_LONGER_ADVICE))
    stalled = _stalled(rows)
    if stalled:
        return Diagnosis("good fit", [*reasons, stalled], list(GOOD_FIT_ADVICE))
    return Diagnosis("good fit", [*reasons,
        f"train loss {last['loss']:.4g} and val_loss {last['val_loss']:.4g} have levelled off "
        f"together; no sign of high bias or high variance"], list(GOOD_FIT_ADVICE))


def _overfit_advice(modality: str | None, channels: int | None) -> list[str]:
    if modality not in (None, "image"):
        return [NON_IMAGE_DATA_ADVICE, *OVERFIT_ADVICE[1:]]
    first = OVERFIT_ADVICE[0] + (FLIP_ADVICE if channels == 3 else "")
    return [first, *OVERFIT_ADVICE[1:]]


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
    best = _best_val_epoch(rows)
    best_val, last = rows[best]["val_loss"], rows[-1]
    if best == len(rows) - 1 or last["val_loss"] <= best_val * (1 + VAL_RISE):
        return None
    if last["loss"] >= rows[best]["loss"]:
        return None
    return (f"val_loss rose from its minimum {best_val:.4g} (epoch {_epoch(rows, best)}) to "
            f"{last['val_loss']:.4g} (epoch {_epoch(rows, len(rows) - 1)}, "
            f"+{last['val_loss'] / best_val - 1:.0%}) while train loss fell from "
            f"{rows[best]['loss']:.4g} to {last['loss']:.4g}")


@dataclass(frozen=True)
class _Gap:
    """Whether the train/validation gap is overfitting, and the measurement behind it."""

    overfit: bool
    reason: str | None = None


def _gap(rows: list[dict[str, float]], task: TaskSpec, val_samples: int | None) -> _Gap:
    last = rows[-1]
    if task.kind == "regression":
        mae, val_mae = last.get("mae"), last.get("val_mae")
        if mae is not None and val_mae is not None and val_mae > MAE_RATIO * mae:
            return _Gap(True, f"validation MAE {val_mae:.4g} is more than {MAE_RATIO:g}x the "
                              f"train MAE {mae:.4g}")
        rising = _val_rising(rows)
        return _Gap(rising is not None, rising)
    acc, val_acc = last.get("accuracy"), last.get("val_accuracy")
    if acc is None or val_acc is None:
        return _Gap(False)
    gap = acc - val_acc
    bar, noise = _gap_bar(rows, val_samples)
    if gap > bar:
        return _Gap(True, f"train accuracy {acc:.3f} exceeds validation accuracy {val_acc:.3f} "
                          f"by {gap:.3f}, more than {bar:.3f} ({noise})")
    return _Gap(False, f"train accuracy {acc:.3f} and validation accuracy {val_acc:.3f} differ "
                       f"by {gap:.3f}, within {bar:.3f} ({noise})")


def _gap_bar(rows: list[dict[str, float]], val_samples: int | None) -> tuple[float, str]:
    """The gap a train/validation difference must exceed to be overfitting, and how it was set."""
    if not val_samples:
        return ACC_GAP, "the fixed bar without the validation size"
    p = min(max(rows[-1]["val_accuracy"], 1 / val_samples), 1 - 1 / val_samples)
    error = math.sqrt(p * (1 - p) / val_samples)
    return NOISE_Z * error, (f"{NOISE_Z:g} x the standard error {error:.4f} of validation "
                             f"accuracy on {val_samples} samples")


def _best_val_epoch(rows: list[dict[str, float]]) -> int:
    """Index of the row with the lowest val_loss (the first one on ties)."""
    return min(range(len(rows)), key=lambda i: rows[i]["val_loss"])


def _stalled(rows: list[dict[str, float]]) -> str | None:
    """The sentence for a run whose lowest val_loss came before its last epoch, else None."""
    best = _best_val_epoch(rows)
    # epochs, not rows: under train.val_every the rows are every N-th epoch
    after = _epoch(rows, len(rows) - 1) - _epoch(rows, best)
    if after == 0:
        return None
    return (f"val_loss was lowest at epoch {_epoch(rows, best)} ({rows[best]['val_loss']:.4g}) "
            f"and did not improve in the {after} epoch(s) after it: more epochs would not help")


def _still_falling(rows: list[dict[str, float]]) -> str | None:
    if len(rows) < 2 or _best_val_epoch(rows) != len(rows) - 1:
        return None
    window = rows[-(RECENT + 1):]

    def slowest_drop(key: str) -> float:  # the smallest relative drop of one epoch in the window
        return min((a[key] - b[key]) / abs(a[key]) if a[key] else 0.0
                   for a, b in zip(window[:-1], window[1:], strict=True))

    train_drop, val_drop = slowest_drop("loss"), slowest_drop("val_loss")
    if train_drop <= STILL_FALLING or val_drop <= STILL_FALLING:
        return None
    # rows are the validated epochs: under train.val_every they are not consecutive
    epochs = [row.get("epoch", i) for i, row in enumerate(window)]
    steps = "epoch(s)" if all(b - a == 1 for a, b in pairwise(epochs)) else "validations"
    return (f"train and validation loss still fell by at least {train_drop:.1%} and "
            f"{val_drop:.1%} in each of the last {len(window) - 1} {steps}: training stopped "
            f"before converging")


def _epoch(rows: list[dict[str, float]], index: int) -> Any:
    """The epoch number counted from 1, as the progress lines print it (`fit` records from 0)."""
    epoch = rows[index].get("epoch", index)
    epoch = int(epoch) if isinstance(epoch, float) and epoch.is_integer() else epoch
    return epoch + 1 if isinstance(epoch, int) else epoch
