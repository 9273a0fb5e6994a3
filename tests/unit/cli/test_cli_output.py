"""cli/output: tables print cell text literally."""

from __future__ import annotations

from dlforge.cli import output


def test_table_keeps_brackets_in_metric_names(capsys):
    output.table(None, ["metric", "deep model"], [("recall[spam]", 0.9128), ("precision[ham]", None)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["metric", "deep", "model"], ["recall[spam]", "0.9128"], ["precision[ham]", "-"]]
