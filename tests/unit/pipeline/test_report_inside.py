"""A run's report looks inside the model and ranks suspicious training samples."""

from __future__ import annotations

import re

from dlforge.pipeline import run

CNN = {
    "name": "cnn",
    "data": {"source": "builtin", "name": "digits", "limit": 200, "flip_labels": 0.05},
    "model": {"type": "basic_cnn", "filters": [4, 8], "dense": 16},
    "train": {"epochs": 2, "batch_size": 32},
    "evaluate": {"baseline": False},
    "review": {"top": 3},
}


def _captions(html: str, section: str) -> list[str]:
    body = html.split(f'<section id="{section}">')[1].split("</section>")[0]
    return re.findall(r"<figcaption>(.*?)</figcaption>", body)


def test_a_cnn_report_shows_every_block_for_right_and_wrong_inputs_and_the_lowest_margins(tmp_path):
    html = run(CNN, workspace=tmp_path, progress=False).report_path.read_text()
    captions = _captions(html, "inside")
    blocks = [c for c in captions if "feature maps of" in c]
    assert {c.rsplit(" ", 1)[1] for c in blocks} == {"features.0", "features.1"}
    assert len(blocks) == 2 * len([c for c in captions if "saliency" in c]) == 8  # 2 right, 2 wrong
    assert captions.count("First-layer filters") == 1
    assert "<td>dead_relu</td>" not in html and "<th>dead_relu</th>" in html
    review = html.split('<section id="review">')[1].split("</section>")[0]
    assert review.count("<tr><td>") == 3 and "training samples of lowest area under the margin" in review


def test_a_table_model_shows_feature_weights_and_review_can_be_turned_off(tmp_path):
    cfg = {**CNN, "data": {"source": "builtin", "name": "breast_cancer"},
           "model": {"type": "mlp", "hidden": [8]}, "review": {"in_run": False}}
    html = run(cfg, workspace=tmp_path, progress=False).report_path.read_text()
    assert _captions(html, "inside") == [
        "test input 0 (true malignant, predicted malignant): saliency per feature (input gradients)",
        "First-layer weight magnitude per input feature (L2 norm)",
        "test input 1 (true malignant, predicted malignant): saliency per feature (input gradients)",
        "test input 3 (true malignant, predicted benign): saliency per feature (input gradients)",
        "test input 9 (true malignant, predicted benign): saliency per feature (input gradients)",
    ]
    assert "no 2-D convolution: per-layer statistics" in html
    assert '<section id="review">' not in html
