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
        "run abc (digits-gan) finished", "test metrics", "metric   deep model",
        "frechet  79.5000   ", f"model:  digits-gan@1  ({tmp_path / 'v1'})",
        f"report: {tmp_path / 'report.html'}"]


def test_the_summary_shows_the_baseline_beside_the_model_when_there_is_one(capsys, tmp_path):
    from dlforge.pipeline import RunResult

    result = RunResult(run_id="abc", name="digits", workspace=tmp_path,
                       report_path=tmp_path / "report.html", model_ref="digits@1",
                       bundle_path=tmp_path / "v1", headline=[("accuracy", 0.95), ("f1", 0.9)],
                       test_metrics={}, baseline={"metrics": {"headline": {"accuracy": 0.9}}},
                       diagnosis={}, history=[])
    output.run_summary(result)
    assert capsys.readouterr().out.splitlines()[1:5] == [
        "test metrics", "metric    deep model  baseline", "accuracy  0.9500      0.9000  ",
        "f1        0.9000      -       "]


def test_names_paths_and_warnings_print_verbatim_not_as_markup(capsys, tmp_path):
    """A name like `[bold]` and a path with `[x]` or `[/x]` (a closing tag that used to raise
    MarkupError) print as they are."""
    from dlforge.pipeline import RunResult

    where = tmp_path / "ws[x]" / "a[/x]"
    result = RunResult(run_id="abc", name="[bold]", workspace=where, report_path=where / "report.html",
                       model_ref="[bold]@1", bundle_path=where / "v1", headline=[("recall[[x]]", 0.5)],
                       test_metrics={}, baseline=None, diagnosis={"verdict": "[red]fine", "advice": ["[b]"]},
                       history=[], warnings=["class [x] is rare"])
    output.run_summary(result)
    captured = capsys.readouterr()
    assert captured.err == "warning: class [x] is rare\n"
    assert captured.out.splitlines() == [
        "run abc ([bold]) finished", "test metrics", "metric       deep model",
        "recall[[x]]  0.5000    ", "diagnosis: [red]fine", "  - [b]",
        f"model:  [bold]@1  ({where / 'v1'})", f"report: {where / 'report.html'}"]


def test_config_check_prints_a_path_with_brackets_verbatim(tmp_path, capsys):
    from dlforge.cli import main

    config = tmp_path / "c[/x]" / "[bold].yaml"
    config.parent.mkdir(parents=True)
    config.write_text("name: digits\n")
    assert main(["config", "check", str(config)]) == 0
    assert capsys.readouterr().err == f"{config}: ok\n"
