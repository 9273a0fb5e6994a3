"""`dlforge data review` end to end on a small digits subset: files, exclusions, errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shlex

import pytest
import yaml

from dlforge.cli import main
from dlforge.config import load_config
from dlforge.data.prepare import prepare_data

SMALL = {
    "name": "small",
    "data": {"source": "builtin", "name": "digits", "limit": 200, "flip_labels": 0.1},
    "model": {"type": "mlp", "hidden": [32]},
    "train": {"batch_size": 32, "lr": 0.01, "early_stopping": None},
    "review": {"folds": 3, "epochs": 3, "top": 4},
}


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    config = root / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["-w", str(root / "ws"), "data", "review", str(config), "-o",
                     str(root / "review out"), "--drop-top", "5", "--by", "aum"])
    assert code == 0
    return root, config, err.getvalue()


def test_review_writes_every_signal_and_the_exclude_list(reviewed):
    root, _, err = reviewed
    hint = f"data.exclude_file={root / 'review out' / 'exclude.txt'}"
    assert err.splitlines()[-1] == f"next run without them: --set {shlex.quote(hint)}"
    out = root / "review out"
    assert sorted(p.name for p in out.iterdir()) == [
        "aum.csv", "aum.png", "confident_learning.csv", "confident_learning.png", "exclude.txt", "review.json"]
    with open(out / "aum.csv") as fh:
        rows = list(csv.DictReader(fh))
    data = prepare_data(load_config(SMALL))
    assert len(rows) == len(data.splits.train) == 140
    assert sorted(r["id"] for r in rows) == sorted(data.splits.train.ids.tolist())
    scores = [float(r["score"]) for r in rows if r["flagged"] == "True"]
    assert scores == sorted(scores) and scores[0] < 0
    assert (out / "exclude.txt").read_text().split() == [r["id"] for r in rows[:5]]
    review = json.loads((out / "review.json").read_text())
    assert review["samples"] == 140 and len(review["signals"]["aum"]) == 4
    assert set(review["against_flipped"]) == {"confident_learning", "aum"}
    assert review["against_flipped"]["aum"]["true"] == 14  # round(0.1 * 140)


def test_the_exclude_list_leaves_those_samples_out_and_lineage_names_them(reviewed):
    root, config, _ = reviewed
    ids = (root / "review out" / "exclude.txt").read_text().split()
    cfg = load_config(config, [f"data.exclude_file={root / 'review out' / 'exclude.txt'}"])
    data = prepare_data(cfg)
    assert len(data.splits.train) == 140 - 5
    assert data.splits.info["excluded"] == {"requested": 5, "from_train": 5, "ids": sorted(ids, key=int)}


def test_more_folds_than_a_class_has_is_one_line_and_writes_nothing(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "review": {"folds": 30}}))
    code = main(["data", "review", str(config), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and not (tmp_path / "out").exists()
    assert err == ("error: review.folds: 30 folds need at least 30 training samples of every class; "
                   "class '4' has 9. Lower review.folds to 9 or less, or add samples of that class\n")


def test_review_of_a_regression_task_is_one_line(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "data": {"source": "builtin", "name": "diabetes"}}))
    assert main(["data", "review", str(config), "-o", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == ("error: review: finds wrong class labels; this task is "
                                       "regression (multiclass or binary only)\n")


def test_review_of_a_gan_config_is_one_line_naming_the_fix(tmp_path, capsys, monkeypatch):
    from dlforge.data import prepare

    gan = ["examples/gan_digits.yaml", "-o", str(tmp_path / "out")]
    with monkeypatch.context() as patch:
        patch.setattr(prepare, "load_dataset", lambda *a, **k: pytest.fail("read the data"))
        assert main(["-w", str(tmp_path / "ws"), "data", "review", *gan]) == 2
    assert capsys.readouterr().err == (
        "error: model.type: dcgan: review finds wrong class labels with classifiers trained on "
        "the folds and a GAN trains none; review with a classifier's config (e.g. "
        "--set model.type=basic_cnn --set train.early_stopping=null)\n")
    assert not (tmp_path / "ws").exists() and not (tmp_path / "out").exists()
    fixed = ["--set", "model.type=basic_cnn", "--set", "train.early_stopping=null",  # the fix it names
             "--set", "review.epochs=1", "--set", "review.folds=2"]
    assert main(["-w", str(tmp_path / "ws"), "data", "review", *gan, *fixed]) == 0


def test_an_existing_output_directory_is_refused_before_training(reviewed, capsys):
    root, config, _ = reviewed
    assert main(["data", "review", str(config), "-o", str(root / "review out")]) == 2
    assert capsys.readouterr().err == (f"error: --output: {root / 'review out'} already exists; remove it "
                                       f"or choose another directory\n")


def test_running_it_again_without_output_writes_beside_the_first(tmp_path, capsys):
    """The default folder is numbered when it exists (it was refused as an existing --output)."""
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "review": {"folds": 2, "epochs": 1}}))
    for _ in range(2):
        assert main(["-w", str(tmp_path / "ws"), "data", "review", str(config), "--json"]) == 0
    reviews = (tmp_path / "ws" / "reviews").resolve()
    assert sorted(p.name for p in reviews.iterdir()) == ["small", "small-2"]
    out = capsys.readouterr().out
    first, end = json.JSONDecoder().raw_decode(out)
    second = json.loads(out[end:])
    assert first["files"][0] == str(reviews / "small" / "aum.csv")
    assert second["files"][0] == str(reviews / "small-2" / "aum.csv")


def test_a_review_started_beside_another_takes_the_next_folder_when_it_writes(tmp_path, capsys,
                                                                             monkeypatch):
    """Both chose reviews/small before training; the second failed at the end with 'internal
    error: FileExistsError', its training lost."""
    import dlforge.review

    real = dlforge.review.review_data

    def other_review_finishes_meanwhile(*args, **kwargs):
        findings = real(*args, **kwargs)
        (tmp_path / "ws" / "reviews" / "small").mkdir(parents=True)
        (tmp_path / "ws" / "reviews" / "small" / "review.json").write_text("{}")
        return findings

    monkeypatch.setattr(dlforge.review, "review_data", other_review_finishes_meanwhile)
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "review": {"folds": 2, "epochs": 1}}))
    assert main(["-w", str(tmp_path / "ws"), "data", "review", str(config), "--drop-top", "1"]) == 0
    mine = (tmp_path / "ws" / "reviews" / "small-2").resolve()
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == "wrote " + ", ".join(str(mine / name) for name in (
        "aum.csv", "aum.png", "confident_learning.csv", "confident_learning.png", "exclude.txt",
        "review.json"))
    assert err[-1] == f"next run without them: --set {shlex.quote(f'data.exclude_file={mine}/exclude.txt')}"


def test_an_output_folder_created_while_the_review_trains_keeps_the_review_beside_it(
        tmp_path, capsys, monkeypatch):
    """Another process made the --output folder meanwhile: the review was lost at the end with
    'internal error: FileExistsError'."""
    import dlforge.review

    real, out = dlforge.review.review_data, tmp_path / "out"

    def another_process_makes_the_folder(*args, **kwargs):
        findings = real(*args, **kwargs)
        out.mkdir()
        (out / "theirs.txt").write_text("x")
        return findings

    monkeypatch.setattr(dlforge.review, "review_data", another_process_makes_the_folder)
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "review": {"folds": 2, "epochs": 1}}))
    assert main(["-w", str(tmp_path / "ws"), "data", "review", str(config), "-o", str(out)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: --output: {out} was created by another process while this one worked; it is "
        f"left as it is, and the files written are in {out}-2")
    assert [p.name for p in out.iterdir()] == ["theirs.txt"]
    assert sorted(p.name for p in (tmp_path / "out-2").iterdir()) == [
        "aum.csv", "aum.png", "confident_learning.csv", "confident_learning.png", "review.json"]


def test_a_warmup_longer_than_the_folds_training_names_review_epochs(tmp_path, capsys):
    """A review's folds train review.epochs, not train.epochs: the fix must say so."""
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "review": {"folds": 2, "epochs": 1},
                                      "train": {**SMALL["train"], "schedule": {
                                          "type": "cosine", "warmup_steps": 20}}}))
    assert main(["-w", str(tmp_path / "ws"), "data", "review", str(config)]) == 2
    assert capsys.readouterr().err == (
        "error: train.schedule.warmup_steps: must be less than the run's 3 steps (train.epochs x "
        "batches per epoch) for a cosine schedule (got 20); lower it (a tenth: --set "
        "train.schedule.warmup_steps=0) or raise train.epochs (review.epochs in `dlforge data "
        "review`, whose folds train that many)\n")
    assert not (tmp_path / "ws" / "reviews").exists()


def test_a_dangling_symlink_output_is_refused_before_the_review_trains(tmp_path, capsys):
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({**SMALL, "review": {"folds": 2, "epochs": 1}}))
    assert main(["-w", str(tmp_path / "ws"), "data", "review", str(config), "-o",
                 str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"error: --output: {tmp_path / 'out'} already exists; "
                                       f"remove it or choose another directory\n")
