"""write_report: one self-contained, escaped HTML file with every section, written atomically."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from dlforge.data.dataset import TaskSpec
from dlforge.evaluate.diagnosis import Diagnosis
from dlforge.evaluate.metrics import evaluate_scores
from dlforge.evaluate.threshold import Threshold
from dlforge.report import ReportData, write_report

BINARY = TaskSpec("binary", ("ok", "defect"))
PNG_IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
HISTORY = [{"epoch": i, "loss": 1 / (i + 1), "val_loss": 1.1 / (i + 1), "accuracy": 0.9,
            "val_accuracy": 0.88, "lr": 0.001} for i in range(3)]


def _binary_data(**overrides) -> ReportData:
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.45, 0.7, 0.8, 0.35])
    ev = evaluate_scores(BINARY, y, s)
    rng = np.random.default_rng(0)
    fields = dict(
        run_name="defects", evaluation=ev, config={"name": "defects", "train": {"lr": 0.001}},
        history=HISTORY, lr_history=[0.001] * 12,
        baseline={"name": "logistic regression (standardized)", "metrics": ev,
                  "fit_seconds": 0.02, "n_train": 64},
        diagnosis=Diagnosis("good fit", ["curves level off together"], ["keep going"]),
        validation={"source": "builtin", "counts": {"train": {"ok": 50, "defect": 6}},
                    "warnings": ["class 'defect' has 6 training samples"]},
        model_info={"params": 1234, "trainable_params": 1234, "flops": 2_500_000},
        threshold=Threshold(0.5, "max_f1", {"precision": 0.5, "recall": 0.5, "f1": 0.5}),
        misclassified={"images": rng.integers(0, 256, (2, 1, 8, 8), dtype=np.uint8),
                       "true": ["ok", "defect"], "predicted": ["defect", "ok"], "count": 2},
        provenance={"source": "builtin", "files": {"digits.csv": "ab12"}, "details": {}},
        timings={"train": 1.5, "evaluate": 0.2},
    )
    return ReportData(**(fields | overrides))


@pytest.fixture(scope="module")
def binary_text(tmp_path_factory) -> str:
    """One full binary report, rendered once for the module (plotting is the slow part)."""
    path = tmp_path_factory.mktemp("report") / "run" / "report.html"
    assert write_report(path, _binary_data()) == path
    return path.read_text(encoding="utf-8")


def _small(**overrides) -> ReportData:
    """A report with no plots at all: a regression evaluation and nothing else."""
    ev = evaluate_scores(TaskSpec("regression", ("y",)), np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    return ReportData(**({"run_name": "small", "evaluation": ev} | overrides))


def test_binary_report_has_every_section_and_an_embedded_png_per_plot(binary_text):
    text = binary_text
    ids = re.findall(r'<section id="([a-z]+)">', text)
    assert ids == ["diagnosis", "metrics", "threshold", "curves", "baseline", "learning",
                   "misclassified", "data", "model", "timings", "config"]
    alts = re.findall(r'<img src="data:image/png;base64,[^"]+" alt="([^"]+)">', text)
    assert alts == ["confusion matrix", "ROC curve", "precision-recall curve", "learning curves",
                    "learning rate per step", "misclassified images"]
    for data in PNG_IMG.findall(text):
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    for expected in ("<td>precision[ok]</td>", "<td>2.5 M (2,500,000)</td>",
                     "class &#x27;defect&#x27; has 6 training samples",
                     '<span class="verdict good-fit">good fit</span>',
                     "logistic regression (standardized), fitted in 0.02 s on 64 training samples",
                     "<tr><td>recall[defect]</td><td>0.5</td><td>0.5</td><td>tie</td></tr>",
                     "<tr><th></th><th>ok</th><th>defect</th></tr>"):
        assert expected in text


def test_report_is_self_contained(binary_text):
    text = binary_text
    assert re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", text) is None
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text


def test_every_text_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    data = _small(run_name=evil, config={"name": evil},
                  diagnosis={"verdict": "good fit", "reasons": [evil], "advice": []})
    text = write_report(tmp_path / "r.html", data).read_text()
    assert evil not in text
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4  # title, h1, reason, config


def test_headline_order_in_the_header(binary_text):
    chips = re.findall(r'<span class="chip"><b>([^<]+)</b>', binary_text)
    assert chips == ["recall[defect]", "precision[ok]", "f1[defect]", "pr_auc", "accuracy"]


def test_regression_report_has_no_classification_sections(tmp_path):
    task = TaskSpec("regression", ("price",))
    ev = evaluate_scores(task, np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    history = [{"epoch": 0, "loss": 1.0, "val_loss": 1.2, "mae": 0.8, "val_mae": 0.9}]
    text = write_report(tmp_path / "r.html", ReportData("prices", ev, history=history)).read_text()
    assert re.findall(r'<section id="([a-z]+)">', text) == ["metrics", "learning"]
    assert len(PNG_IMG.findall(text)) == 1
    assert "<td>mae</td><td>0.5</td>" in text


def test_validation_headline_is_shown_beside_test(tmp_path):
    data = _small(val_evaluation={"headline": [["mae", 0.25]]})
    text = write_report(tmp_path / "r.html", data).read_text()
    assert "<th>metric</th><th>test</th><th>validation</th>" in text
    assert "<tr><td>mae</td><td>0.5</td><td>0.25</td></tr>" in text
    assert "<tr><td>r2</td><td>-1</td><td>n/a</td></tr>" in text


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old report")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr("dlforge.atomic.os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, _small())
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left behind


def test_provenance_lists_at_most_twenty_files(tmp_path):
    files = {f"img/{i:03d}.png": "ab" for i in range(25)}
    text = write_report(tmp_path / "r.html", _small(provenance={"source": "image_folder",
                                                               "files": files})).read_text()
    assert text.count("<td>ab</td>") == 20
    assert "<td>img/019.png</td>" in text and "<td>img/020.png</td>" not in text
    assert "<p>... and 5 more files.</p>" in text


def test_nested_validation_dicts_become_rows_not_python_reprs(tmp_path):
    validation = {"balance": {"method": "oversample", "train_before": {"ok": 90, "defect": 5},
                              "train_after": {"ok": 90, "defect": 90}},
                  "splits": {"seed": 0, "warnings": [], "counts": {"train": 95, "test": 20}}}
    text = write_report(tmp_path / "r.html", _small(validation=validation)).read_text()
    assert ("<td>balance</td><td><table class=\"kv\"><tbody><tr><td>method</td><td>oversample</td></tr>"
            "<tr><td>train_before</td><td><table class=\"kv\"><tbody><tr><td>ok</td><td>90</td></tr>"
            "<tr><td>defect</td><td>5</td></tr></tbody></table></td></tr>") in text
    assert "<tr><td>counts</td><td><table class=\"kv\"><tbody><tr><td>train</td><td>95</td></tr>" in text
    assert "{&#x27;" not in text and "<td>warnings</td>" not in text


def test_header_names_targets_labels_or_classes(tmp_path):
    regression = write_report(tmp_path / "r.html", _small(class_names=["target"])).read_text()
    assert "task regression · 1 target: target ·" in regression
    labels = TaskSpec("multilabel", ("even", "prime"))
    ev = evaluate_scores(labels, np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.2], [0.1, 0.8]]))
    multilabel = write_report(tmp_path / "m.html", _small(evaluation=ev)).read_text()
    assert "task multilabel · 2 labels: even, prime ·" in multilabel
    binary = write_report(tmp_path / "b.html", _small(evaluation=evaluate_scores(
        BINARY, np.array([0, 1]), np.array([0.2, 0.9])))).read_text()
    assert "task binary · 2 classes: ok, defect ·" in binary


def test_history_table_counts_epochs_from_one(tmp_path):
    history = [{"epoch": 0, "loss": 1.0, "val_loss": 1.2}, {"epoch": 1, "loss": 0.5, "val_loss": 0.7}]
    text = write_report(tmp_path / "r.html", _small(history=history)).read_text()
    assert "<tr><td>1</td><td>1</td><td>1.2</td></tr><tr><td>2</td><td>0.5</td><td>0.7</td></tr>" in text


def test_baseline_section_names_its_threshold(tmp_path):
    data = _binary_data()
    data.baseline["threshold"] = 0.3125
    text = write_report(tmp_path / "r.html", data).read_text()
    assert ("64 training samples, same split. Decision threshold 0.3125, chosen like the deep "
            "model's.</p>") in text
    data.baseline["threshold"] = [0.25, 0.5]
    text = write_report(tmp_path / "r.html", data).read_text()
    assert "Decision threshold 0.25, 0.5, chosen" in text
