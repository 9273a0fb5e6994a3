"""cli/output: tables print cell text literally."""

from __future__ import annotations

from dlforge.cli import output


def test_table_keeps_brackets_in_metric_names(capsys):
    output.table(None, ["metric", "deep model"], [("recall[spam]", 0.9128), ("precision[ham]", None)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [
        ["metric", "deep", "model"], ["recall[spam]", "0.9128"], ["precision[ham]", "-"]]


def test_the_summary_of_a_run_without_diagnosis_or_baseline_a_gan(capsys, tmp_path):
    from dlforge.pipeline import RunResult

    gan = RunResult(run_id="abc", name="digits-gan", workspace=tmp_path,
                    report_path=tmp_path / "report.html", model_ref="digits-gan@1",
                    bundle_path=tmp_path / "v1", headline=[("frechet", 79.5)], test_metrics={},
                    baseline=None, diagnosis={}, history=[])
    output.run_summary(gan)
    assert capsys.readouterr().out.splitlines() == [
        "run abc (digits-gan) finished", "test metrics", "metric   deep model  baseline",
        "frechet  79.5000     -       ", f"model:  digits-gan@1  ({tmp_path / 'v1'})",
        f"report: {tmp_path / 'report.html'}"]
