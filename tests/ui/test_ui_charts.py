"""The server-drawn SVG charts: escaped labels, gaps for missing values, thinning, no data."""

from __future__ import annotations

import re

import pytest

from dlforge.ui.charts import MAX_POINTS, Series, line_chart


def test_labels_and_title_are_escaped():
    svg = line_chart("<b>t</b>", [Series("<script>x</script>", [(1, 1.0), (2, 2.0)])],
                     x_label="a&b", y_label='"y"')
    assert "<script>" not in svg and "<b>" not in svg
    assert 'data-label="&lt;script&gt;x&lt;/script&gt;"' in svg
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in svg and ">a&amp;b</text>" in svg


def test_missing_values_split_the_line_and_a_lone_point_is_a_dot():
    svg = line_chart("t", [Series("s", [(1, 1.0), (2, 2.0), (3, None), (4, float("nan")),
                                        (5, 3.0)])], x_label="x", y_label="y")
    assert len(re.findall(r"<polyline ", svg)) == 1
    assert len(re.findall(r'<circle [^>]*r="3"', svg)) == 1


def test_long_series_are_thinned():
    points = [(i, float(i)) for i in range(10 * MAX_POINTS)]
    svg = line_chart("t", [Series("s", points, dots=True)], x_label="x", y_label="y")
    assert len(re.findall(r'<circle [^>]*r="2"', svg)) == MAX_POINTS + 1  # r="3": the legend


def test_no_finite_value_gives_a_note_instead_of_a_chart():
    assert line_chart("loss", [Series("s", [(1, None)])], x_label="x", y_label="y") == (
        '<p class="empty">loss: no data yet.</p>')


def test_importances_rank_numbers_and_choices_by_association_with_the_value():
    from dlforge.ui.searchview import importances

    trials = [(v, {"a": v * 2, "b": 1, "c": "x" if v < 0.5 else "y"})
              for v in (0.1, 0.2, 0.3, 0.7, 0.8, 0.9)]
    scores = dict(importances(trials))
    assert [k for k, _ in importances(trials)] == ["a", "c", "b"]
    assert scores["a"] == pytest.approx(1.0)
    assert scores["c"] == pytest.approx((0.54 / 0.58) ** 0.5)
    assert scores["b"] == 0.0


def test_parallel_coordinates_draw_one_line_per_trial_and_escape_choices():
    from dlforge.ui.searchview import parallel_chart

    trials = [(0.5, {"lr": 1e-4, "width": "<i>"}), (0.9, {"lr": 1e-1, "width": "32"})]
    svg = parallel_chart(trials, "maximize")
    assert len(re.findall(r"<polyline ", svg)) == 2
    assert "<i>" not in svg and "&lt;i&gt;" in svg
    assert ">0.0001</text>" in svg and ">0.1</text>" in svg  # the ends of the log axis


def test_whole_numbers_on_the_x_axis_get_whole_ticks_only():
    svg = line_chart("t", [Series("s", [(0, 1.0), (1, 2.0), (2, 1.5)])], x_label="trial", y_label="y")
    x_ticks = re.findall(r'class="tick" text-anchor="middle">([^<]+)<', svg)
    assert x_ticks == ["0", "1", "2"]


def test_a_validation_curve_joins_the_validated_epochs_and_the_table_has_their_columns():
    """`train.val_every` 2: epochs 1 and 3 validated; a stored NaN (None) still breaks a line."""
    from dlforge.ui.runview import curve_charts, history_columns

    history = [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.8, "val_loss": 0.9},
               {"epoch": 2, "loss": 0.7}, {"epoch": 3, "loss": 0.6, "val_loss": 0.7}]
    loss_chart = curve_charts([("run", history)])[0]
    val = re.search(r'data-label="val_loss">(.*?)</g>', loss_chart, re.S).group(1)
    assert len(re.findall(r"<polyline ", val)) == 1
    assert len(re.findall(r'points="([^"]*)"', val)[0].split()) == 2
    assert history_columns(history) == ["epoch", "loss", "val_loss"]
    history[3]["val_loss"] = None
    val = re.search(r'data-label="val_loss">(.*?)</g>', curve_charts([("run", history)])[0],
                    re.S).group(1)
    assert (len(re.findall(r"<polyline ", val)), len(re.findall(r'<circle [^>]*r="3"', val))) == (0, 1)


def test_runview_has_no_function_pytest_would_collect_as_a_test():
    """`pytest --doctest-modules src/dlforge/ui/runview.py` collects `test*` functions too."""
    from dlforge.ui import runview

    assert [name for name in vars(runview) if name.startswith("test")] == []
    assert runview.headline_test_metrics({"headline": [["accuracy", 0.9]], "loss": 0.3}) == [
        ("accuracy", 0.9)]
    assert runview.headline_test_metrics({"val_accuracy": 0.8}) == []
