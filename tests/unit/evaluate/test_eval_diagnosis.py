"""diagnose: each verdict on a scripted history, with the exact reasons."""

from __future__ import annotations

import pytest

from dlforge.data.dataset import TaskSpec
from dlforge.evaluate.diagnosis import (
    FLIP_ADVICE,
    GOOD_FIT_ADVICE,
    OVERFIT_ADVICE,
    TRAIN_LONGER_ADVICE,
    UNDERFIT_ADVICE,
    diagnose,
)

TEN = TaskSpec("multiclass", tuple("abcdefghij"))
REG = TaskSpec("regression", ("price",))


def _rows(loss, val_loss, acc=None, val_acc=None):
    rows = []
    for i, (tl, vl) in enumerate(zip(loss, val_loss, strict=True)):
        row = {"epoch": i, "loss": tl, "val_loss": vl}
        if acc is not None:
            row |= {"accuracy": acc[i], "val_accuracy": val_acc[i]}
        rows.append(row)
    return rows


def test_underfitting_when_train_accuracy_is_poor():
    h = _rows([2.3, 2.0, 1.95], [2.3, 2.0, 1.96], [0.2, 0.5, 0.6], [0.2, 0.5, 0.6])
    d = diagnose(h, TEN)
    assert d.verdict == "underfitting"
    assert d.reasons == ["final train accuracy 0.600 is below 0.775 (chance 0.100 plus 75% of "
                         "the way to 1): the model cannot fit its own training data"]
    assert d.advice == UNDERFIT_ADVICE


@pytest.mark.parametrize(("curves", "verdict", "reasons", "advice"), [
    (  # both losses still falling, no gap: a good fit that would gain from more epochs
        ([1.0, 0.8, 0.6, 0.4], [1.0, 0.8, 0.6, 0.45], [0.9] * 4, [0.9] * 4), "good fit",
        ["train accuracy 0.900 and validation accuracy 0.900 differ by 0.000, within 0.028 (3 x "
         "the standard error 0.0095 of validation accuracy on 1000 samples)",
         "train and validation loss still fell by at least 25.0% and 25.0% in each of the last 2 "
         "epoch(s): training stopped before converging"], TRAIN_LONGER_ADVICE),
    (  # a gap beyond the noise, with val_loss rising: overfitting
        ([1.0, 0.5, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.55, 0.7], [0.8, 0.9, 0.95, 0.97, 0.99],
         [0.8, 0.88, 0.9, 0.9, 0.89]), "overfitting",
        ["train accuracy 0.990 exceeds validation accuracy 0.890 by 0.100, more than 0.030 (3 x "
         "the standard error 0.0099 of validation accuracy on 1000 samples)",
         # fit records epochs from 0; people read them from 1
         "val_loss rose from its minimum 0.5 (epoch 3) to 0.7 (epoch 5, +40%) while train loss "
         "fell from 0.3 to 0.1"], OVERFIT_ADVICE),
])
def test_verdicts_with_a_thousand_validation_samples(curves, verdict, reasons, advice):
    d = diagnose(_rows(*curves), TEN, val_samples=1000)
    assert (d.verdict, d.reasons, d.advice) == (verdict, reasons, advice)


def test_digits_gap_of_the_issue_is_within_the_noise_of_270_validation_samples():
    """Digits (issue 20): train 0.999 / validation 0.989 on 270 validation samples."""
    h = _rows([0.3, 0.05, 0.01], [0.3, 0.06, 0.05], [0.9, 0.99, 0.999], [0.95, 0.985, 0.989])
    d = diagnose(h, TEN, "image", val_samples=270, channels=1)
    assert d.verdict == "good fit"
    assert d.reasons[0] == ("train accuracy 0.999 and validation accuracy 0.989 differ by 0.010, "
                            "within 0.019 (3 x the standard error 0.0063 of validation accuracy on "
                            "270 samples)")


def test_a_rising_val_loss_with_equal_accuracies_is_noise_not_overfitting():
    """A 28x28 set (issue 20): accuracies both 0.994, val_loss 0.0216 -> 0.0236."""
    h = _rows([0.05, 0.03, 0.02, 0.015], [0.03, 0.0216, 0.023, 0.0236],
              [0.99, 0.993, 0.994, 0.994], [0.992, 0.994, 0.994, 0.994])
    d = diagnose(h, TEN, "image", val_samples=9000, channels=1)
    assert d.verdict == "good fit"
    assert d.reasons[:2] == [
        "train accuracy 0.994 and validation accuracy 0.994 differ by 0.000, within 0.002 (3 x "
        "the standard error 0.0008 of validation accuracy on 9000 samples)",
        "val_loss rose from its minimum 0.0216 (epoch 2) to 0.0236 (epoch 4, +9%) while train "
        "loss fell from 0.03 to 0.015; within the noise of validation accuracy, so not overfitting"]


def test_the_same_gap_is_overfitting_on_a_large_validation_set_only():
    h = _rows([0.2, 0.1], [0.3, 0.3], [0.97, 0.98], [0.95, 0.95])
    assert diagnose(h, TEN, val_samples=100).verdict == "good fit"
    assert diagnose(h, TEN, val_samples=10_000).verdict == "overfitting"


def test_overfitting_from_the_accuracy_gap_alone():
    h = _rows([0.5, 0.3, 0.29], [0.6, 0.5, 0.49], [0.9, 0.98, 0.99], [0.8, 0.85, 0.85])
    d = diagnose(h, TEN)
    assert d.verdict == "overfitting"
    assert d.reasons == ["train accuracy 0.990 exceeds validation accuracy 0.850 by 0.140, more "
                         "than 0.100 (the fixed bar without the validation size)"]


def test_overfitting_regression_from_the_mae_ratio():
    h = [{"loss": 0.1, "val_loss": 0.3, "mae": 1.0, "val_mae": 2.0}]
    d = diagnose(h, REG)
    assert d.verdict == "overfitting"
    assert d.reasons == ["validation MAE 2 is more than 1.5x the train MAE 1"]


def test_good_fit_when_curves_level_off_together():
    h = _rows([0.5, 0.3, 0.29, 0.288], [0.5, 0.32, 0.31, 0.309],
              [0.9, 0.95, 0.96, 0.96], [0.9, 0.94, 0.95, 0.95])
    d = diagnose(h, TEN)
    assert d.verdict == "good fit"
    assert d.reasons == ["train accuracy 0.960 and validation accuracy 0.950 differ by 0.010, "
                         "within 0.100 (the fixed bar without the validation size)",
                         "train loss 0.288 and val_loss 0.309 have levelled off together; "
                         "no sign of high bias or high variance"]
    assert d.advice == GOOD_FIT_ADVICE
    assert d.to_dict() == {"verdict": "good fit", "reasons": d.reasons, "advice": GOOD_FIT_ADVICE}


def test_one_epoch_of_falling_loss_is_not_enough_to_call_underfitting():
    h = _rows([0.5, 0.3, 0.29, 0.2], [0.5, 0.32, 0.33, 0.3], [0.9] * 4, [0.9] * 4)
    assert diagnose(h, TEN).verdict == "good fit"


def test_rising_val_loss_below_five_percent_is_noise():
    h = _rows([0.5, 0.3, 0.29], [0.5, 0.31, 0.32], [0.9, 0.95, 0.96], [0.9, 0.94, 0.95])
    assert diagnose(h, TEN).verdict == "good fit"


def test_unknown_without_validation():
    d = diagnose([{"loss": 0.5, "val_loss": None}], TEN)
    assert d.verdict == "unknown"
    assert d.reasons == ["the history has no epochs with both loss and val_loss"]


def test_overfitting_advice_suggests_image_augmentation_only_for_images():
    h = _rows([1.0, 0.5, 0.3, 0.2, 0.1], [1.0, 0.6, 0.5, 0.55, 0.7],
              [0.8, 0.9, 0.95, 0.97, 0.99], [0.8, 0.88, 0.9, 0.9, 0.89])
    assert diagnose(h, TEN, "image", val_samples=1000).advice == OVERFIT_ADVICE
    for modality in ("table", "text"):
        advice = diagnose(h, TEN, modality, val_samples=1000).advice
        assert advice[0] == "Get more training data (more labelled samples, or a larger data.limit)."
        assert advice[1:] == OVERFIT_ADVICE[1:]


def test_mirror_flips_are_advised_for_colour_photos_only():
    h = _rows([0.5, 0.3, 0.29], [0.6, 0.5, 0.49], [0.9, 0.98, 0.99], [0.8, 0.85, 0.85])
    grey = diagnose(h, TEN, "image", val_samples=1000, channels=1).advice
    colour = diagnose(h, TEN, "image", val_samples=1000, channels=3).advice
    assert grey == OVERFIT_ADVICE and "hflip" not in " ".join(grey)
    assert colour == [OVERFIT_ADVICE[0] + FLIP_ADVICE, *OVERFIT_ADVICE[1:]]


def test_regression_no_better_than_the_mean_is_underfitting():
    rows = [{"loss": 9.0, "val_loss": 9.5, "mae": 2.0, "val_mae": 2.9},
            {"loss": 8.9, "val_loss": 9.4, "mae": 2.0, "val_mae": 2.85}]
    diag = diagnose(rows, TaskSpec("regression", ("y",)), "table", naive_mae=3.0)
    assert diag.verdict == "underfitting"
    assert diag.reasons == ["final val_mae 2.85 is no better than 0.9 x 3, the error of always "
                            "predicting the training mean: the model has not learnt the target"]
    assert diagnose(rows, TaskSpec("regression", ("y",)), "table", naive_mae=4.0).verdict != "underfitting"


def test_overfitting_after_restore_best_says_so_instead_of_suggesting_early_stopping():
    rows = [{"loss": 1.0 - 0.1 * i, "val_loss": v, "accuracy": 0.99, "val_accuracy": 0.9}
            for i, v in enumerate([0.5, 0.4, 0.45, 0.5, 0.55])]
    task = TaskSpec("binary", ("ok", "ng"))
    diag = diagnose(rows, task, "image", restored_epoch=1, val_samples=500)
    assert diag.verdict == "overfitting"
    assert diag.reasons[-1] == "early stopping already restored the weights of epoch 2, the best on validation"
    assert not any(a.startswith("Stop early") for a in diag.advice)
    assert any(a.startswith("Stop early") for a in diagnose(rows, task, "image", val_samples=500).advice)


def test_an_early_stopped_run_is_not_told_to_train_longer():
    """`make demo` (issue 20): early stopping ended the run 4 epochs after the best val_loss;
    the last two epochs fell again (recovering from a bump) but never beat the best."""
    h = _rows([0.9, 0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.08], [0.8, 0.4, 0.2, 0.15, 0.25, 0.2, 0.18, 0.17],
              [0.8, 0.9, 0.95, 0.97, 0.97, 0.98, 0.98, 0.98], [0.8, 0.9, 0.95, 0.97, 0.96, 0.97, 0.97, 0.97])
    d = diagnose(h, TEN, "image", restored_epoch=3, val_samples=360, channels=1)
    assert d.verdict == "good fit"
    assert d.reasons[1:] == [
        "val_loss rose from its minimum 0.15 (epoch 4) to 0.17 (epoch 8, +13%) while train loss "
        "fell from 0.2 to 0.08; within the noise of validation accuracy, so not overfitting",
        "val_loss was lowest at epoch 4 (0.15) and did not improve in the 4 epoch(s) after it: "
        "more epochs would not help"]
    assert d.advice == GOOD_FIT_ADVICE
    # the same curves cut at the best epoch are still falling: there, more epochs are advised
    assert diagnose(h[:4], TEN, "image", val_samples=360, channels=1).advice == TRAIN_LONGER_ADVICE


def test_a_history_validated_every_other_epoch_is_read_by_its_validated_rows():
    """`train.val_every` 2: rows without val_loss are left out; the window counts validations."""
    validated = _rows([1.0, 0.8, 0.6, 0.4], [1.0, 0.8, 0.6, 0.45], [0.9] * 4, [0.9] * 4)
    history = []
    for row in validated:
        row["epoch"] = 2 * row["epoch"] + 1
        history += [{"epoch": row["epoch"] - 1, "loss": row["loss"], "accuracy": 0.9}, row]
    d = diagnose(history, TEN, val_samples=1000)
    assert d.verdict == "good fit"
    assert d.reasons[1] == ("train and validation loss still fell by at least 25.0% and 25.0% "
                            "in each of the last 2 validations: training stopped before converging")


def test_a_stall_under_val_every_counts_epochs_not_validations():
    """val_every 5: validated epochs 4, 9, 14, 19; best at epoch 9 is 10 epochs before the end."""
    history = []
    for epoch in range(20):
        history.append({"epoch": epoch, "loss": 0.3, "accuracy": 0.9})
        if epoch % 5 == 4:
            history[-1] |= {"val_loss": {4: 0.5, 9: 0.3, 14: 0.31, 19: 0.32}[epoch],
                            "val_accuracy": 0.9}
    d = diagnose(history, TEN, val_samples=1000)
    assert d.reasons[-1] == ("val_loss was lowest at epoch 10 (0.3) and did not improve in the "
                             "10 epoch(s) after it: more epochs would not help")


DIVERGED_ADVICE = ["Lower train.lr to 1e+09 (a tenth of 1e+10), and again tenfold until the "
                   "training loss falls.",
                   "Warm up to it (train.schedule.warmup_steps) and clip gradients "
                   "(train.grad_clip) if it still jumps."]


@pytest.mark.parametrize(("loss", "task", "reason"), [
    # breast cancer at train.lr 1e10 (blown up within epoch 1, then falling): was "good fit"
    ([7.787e31, 7.146e31, 3.233e31], TaskSpec("binary", ("b", "m")),
     "the final training loss 3.233e+31 is more than 10x 0.693, the loss of guessing (ln 2)"),
    ([2.3, 40.0, 900.0], TEN, "the training loss grew from 2.3 to 900 (391x)"),
    ([2.3, float("nan"), float("nan")], TEN, "the training loss became nan at epoch 2"),
])
def test_a_diverging_run_is_told_its_learning_rate_is_too_high(loss, task, reason):
    h = _rows(loss, [1.0] * 3, [0.9] * 3, [0.9] * 3)
    d = diagnose(h, task, lr=1e10)
    assert (d.verdict, d.reasons, d.advice) == (
        "diverged", [f"{reason}; train.lr (1e+10) is too high"], DIVERGED_ADVICE)


def test_a_regression_far_worse_than_the_mean_diverged_and_a_bare_history_names_train_lr():
    h = [{"loss": 5.0, "val_loss": 5.0, "mae": 31.0, "val_mae": 30.0}]
    d = diagnose(h, REG, naive_mae=3.0)
    assert d.reasons == ["the final train MAE 31 is more than 10x the 3 of always predicting "
                         "the training mean; the learning rate (train.lr) is too high"]
    assert d.advice[0] == "Lower train.lr tenfold, and again tenfold until the training loss falls."
    h[0]["mae"] = 29.0  # 10x or less: no better than the mean, the underfitting rule
    assert diagnose(h, REG, naive_mae=3.0).verdict == "underfitting"


def test_a_first_training_loss_of_zero_has_no_growth_ratio():
    # raised ZeroDivisionError (last > 10 x 0, then last / 0)
    h = _rows([0.0, 0.1, 0.5], [1.0] * 3, [0.9] * 3, [0.9] * 3)
    d = diagnose(h, TEN, lr=0.01)
    assert d.verdict == "good fit"
    h[-1]["loss"] = float("inf")  # the non-finite rule still holds
    assert diagnose(h, TEN, lr=0.01).reasons == [
        "the training loss became inf at epoch 3; train.lr (0.01) is too high"]


def test_a_diverged_update_or_muon_run_names_the_keys_that_set_its_learning_rate():
    # named train.lr, while `dlforge update` sets its rate from update.lr or
    # train.lr x update.lr_mult and muon's matrices step with train.muon.lr
    from dlforge.candidate.validation import lr_keys
    from dlforge.config import load_config

    def keys(raw):
        return lr_keys(load_config(raw))

    assert keys({}) == [("train.lr", 0.001)]
    assert keys({"update": {"source": "m@1"}}) == [("update.lr_mult", 0.1)]
    assert keys({"update": {"source": "m@1", "lr": 0.5}}) == [("update.lr", 0.5)]
    assert keys({"update": {"source": "m@1"}, "train": {"optimizer": "muon",
                 "muon": {"lr": 0.05}}}) == [("train.muon.lr", 0.05), ("update.lr_mult", 0.1)]
    h = _rows([2.3, 40.0, 900.0], [1.0] * 3, [0.9] * 3, [0.9] * 3)
    d = diagnose(h, TEN, lr=1e-4, lr_keys=[("update.lr_mult", 0.1)])
    assert d.reasons == ["the training loss grew from 2.3 to 900 (391x); update.lr_mult (0.1) is "
                         "too high"]
    assert d.advice[0] == ("Lower update.lr_mult to 0.01 (a tenth of 0.1), and again tenfold until "
                           "the training loss falls.")
    d = diagnose(h, TEN, lr=0.001, lr_keys=[("train.muon.lr", 0.02), ("train.lr", 0.001)])
    assert d.reasons[0].endswith("; train.muon.lr (0.02) or train.lr (0.001) is too high")
    assert d.advice[0] == ("Lower train.muon.lr to 0.002 (a tenth of 0.02) and train.lr to 0.0001 "
                           "(a tenth of 0.001), and again tenfold until the training loss falls.")
