"""The CLI in-process (typer's runner) on a tiny trained model: every command's output and exit code."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from dlforge.cli import main
from dlforge.cli.app import app

TINY = {
    "name": "tiny",
    "data": {"source": "builtin", "name": "digits", "limit": 300},
    "model": {"type": "mlp", "hidden": [16]},
    "train": {"epochs": 2, "batch_size": 32},
    "evaluate": {"baseline": False},
    "registry": {"alias": "staging"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace with one run of TINY and its config file."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(app, ["-w", str(root / "ws"), "run", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    return root / "ws", config, result.output


def invoke(workspace, *args):
    return CliRunner().invoke(app, ["-w", str(workspace), *args])


def test_run_prints_the_summary(trained):
    _, _, output = trained
    assert "test metrics" in output and "model:  tiny@1" in output and "report: " in output


def test_models_list_show_alias_history(trained):
    ws, _, _ = trained
    assert invoke(ws, "models", "list").output.split("\n")[1].split() == [
        "tiny", "1", "1", "staging->1", "mlp", "(latest)"]
    assert "tiny version 1" in invoke(ws, "models", "show", "tiny@staging").output
    assert invoke(ws, "models", "alias", "tiny", "production", "1", "--reason", "ok").output == \
        "tiny@production -> version 1\n"
    events, holders = invoke(ws, "models", "history", "tiny").output.split("alias holders of tiny")
    assert [line.split()[2] for line in events.splitlines()[2:]] == ["registered", "alias_set", "alias_set"]
    rows = [line.split() for line in holders.splitlines()[2:]]
    assert [(r[0], r[1], "now" in r, "alias_set" in r) for r in rows] == [
        ("staging", "1", True, True), ("production", "1", True, True)]
    assert rows[1][-1] == "ok"
    assert invoke(ws, "models", "unalias", "tiny", "production").output == "removed tiny@production\n"


@pytest.mark.parametrize("ref", ["tiny@9", "tiny@nope", "ghost"])
def test_a_missing_model_names_a_command_that_runs(trained, ref, capsys):
    ws, _, _ = trained
    assert main(["-w", str(ws), "models", "show", ref]) == 1
    suggested = capsys.readouterr().err.split("Use `dlforge ")[1].split("`")[0].split()
    assert suggested in (["models", "show", "tiny"], ["models", "list"])
    assert invoke(ws, *suggested).exit_code == 0


@pytest.mark.parametrize("args", [["models", "show", ""], ["models", "show", " "],
                                  ["models", "history", ""], ["models", "show", "@staging"]])
def test_an_empty_model_name_is_a_usage_error(trained, args, capsys):
    ws, _, _ = trained
    assert main(["-w", str(ws), *args]) == 2
    assert capsys.readouterr().err == ("error: model name: must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$ such "
                                       f"as 'digits' or 'fashion-cnn' (got {args[2].split('@')[0]!r})\n")


def test_runs_and_report(trained):
    ws, _, _ = trained
    listing = invoke(ws, "runs", "list").output.splitlines()
    run_id = listing[1].split()[0]
    assert listing[1].split()[1:3] == ["tiny", "completed"]
    shown = invoke(ws, "runs", "show", run_id[:6]).output
    assert f"run {run_id}" in shown and "completed" in shown
    report = invoke(ws, "report", run_id).output.strip()
    assert report.endswith(f"{run_id}/report.html")


def test_evaluate_matches_the_registered_metrics(trained):
    ws, config, _ = trained
    result = invoke(ws, "evaluate", "tiny", "--data", str(config), "--json")
    metrics = json.loads(result.output)
    from dlforge.registry import Store

    stored = dict(Store.open(ws).resolve("tiny").metrics["headline"])
    assert metrics["accuracy"] == pytest.approx(stored["accuracy"], abs=1e-9)
    assert metrics["n_samples"] == 45  # 15 % of the 300 samples kept by data.limit


def test_evaluate_scores_a_test_split_whose_training_split_lacks_a_class(trained, tmp_path, capsys):
    import numpy as np
    from sklearn.datasets import load_digits

    ws, _, _ = trained
    d = load_digits()
    x, y = np.rint(d.images * (255 / 16)).astype(np.uint8)[:, None], d.target
    train = np.arange(1000, 1300)[y[1000:1300] != 9]  # no 9 among the training rows
    np.savez(tmp_path / "no9.npz", x_train=x[train], y_train=y[train],
             x_test=x[1300:1400], y_test=y[1300:1400])
    config = tmp_path / "no9.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "npz", "path": str(tmp_path / "no9.npz")}}))
    assert main(["-w", str(ws), "evaluate", "tiny", "--data", str(config), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_samples"] == 100 and 0 <= metrics["accuracy"] <= 1
    assert main(["-w", str(ws), "run", str(config), "--set", "train.epochs=1", "-q"]) == 1
    assert capsys.readouterr().err == ("error: data: class '9' has no training samples; add samples "
                                       "(or raise data.limit, if set) or drop it with data.classes\n")


def test_config_check_prints_resolved_defaults(trained):
    _, config, _ = trained
    result = CliRunner().invoke(app, ["config", "check", str(config)])
    resolved = yaml.safe_load(result.stdout)
    assert resolved["train"]["epochs"] == 2 and resolved["train"]["optimizer"] == "adam"


def test_config_schema_is_json_schema():
    schema = json.loads(CliRunner().invoke(app, ["config", "schema"]).stdout)
    assert schema["title"] == "RunConfig" and "train" in schema["properties"]


def test_data_inspect_prints_counts(trained):
    _, config, _ = trained
    output = CliRunner().invoke(app, ["data", "inspect", str(config)]).stdout
    assert "data validation" in output and "train" in output


def test_main_maps_errors_to_exit_codes(tmp_path, capsys):
    assert main(["-w", str(tmp_path), "run", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err == f"error: config file '{tmp_path / 'missing.yaml'}' does not exist\n"
    assert main(["-w", str(tmp_path), "models", "show", "ghost"]) == 1
    assert capsys.readouterr().err.startswith("error: No model named 'ghost'")
    assert main(["-w", str(tmp_path), "run", "--set", "train.lr=-1", "--set", "train.epochs=0"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: train.epochs: must be greater than or equal to 1 (got 0)",
        "error: train.lr: must be greater than 0 (got -1)",
    ]


def test_debug_shows_the_traceback(tmp_path):
    from dlforge.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "-w", str(tmp_path), "run", "--set", "train.lr=-1"])


def test_predict_table_rows_from_csv_to_file(tmp_path):
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    import dlforge

    cfg = {"name": "bc", "data": {"source": "builtin", "name": "breast_cancer"},
           "model": {"type": "mlp", "hidden": [8]}, "train": {"epochs": 2},
           "evaluate": {"baseline": False}}
    ws = tmp_path / "ws"
    dlforge.run(cfg, workspace=ws, progress=False)
    data = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(4)
    data.to_csv(tmp_path / "rows.csv", index=False)
    result = invoke(ws, "predict", "bc", str(tmp_path / "rows.csv"), "-o", str(tmp_path / "out.csv"))
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out.csv")
    expected = dlforge.load("bc", workspace=ws).predict(data)
    assert list(written["input"]) == ["row[0]", "row[1]", "row[2]", "row[3]"]
    assert list(written["label"]) == [row["label"] for row in expected]
    assert written["score"].tolist() == pytest.approx([row["score"] for row in expected], abs=1e-6)


def test_evaluate_warns_when_the_split_differs_from_training(trained, tmp_path):
    ws, _, _ = trained
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**TINY, "seed": 7}))
    result = CliRunner().invoke(app, ["-w", str(ws), "evaluate", "tiny", "--data", str(other)])
    assert result.exit_code == 0
    assert "warning: the data section or seed differs from the one the model was trained with" in result.stderr


def test_an_unreachable_store_is_one_line_with_the_password_masked(tmp_path, capsys):
    url = "postgresql+psycopg://user:secret@127.0.0.1:1/dlforge"
    assert main(["-w", str(tmp_path), "--store-url", url, "models", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: store: cannot open postgresql+psycopg://user:***@127.0.0.1:1/dlforge: ")
    assert "secret" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("args", "max_pixels"), [([], 8192 * 8192), (["--max-pixels", "1000"], 1000)])
def test_serve_passes_the_pixel_budget_to_the_app(tmp_path, monkeypatch, served, args, max_pixels):
    from dlforge.cli import listen
    from dlforge.serve.app import DEFAULT_MAX_PIXELS

    monkeypatch.setattr(listen, "bind_listeners", lambda where: [])  # 8000 may be in use
    assert main(["-w", str(tmp_path / "ws"), "serve", *args]) == 0
    assert DEFAULT_MAX_PIXELS == 8192 * 8192
    assert [run["config"].app.state.max_pixels for run in served] == [max_pixels]


@pytest.mark.parametrize(("args", "access_log"), [
    ([], True), (["--log-level", "debug"], True), (["--log-level", "warning"], False),
    (["--log-level", "error"], False),
])
def test_serve_builds_access_lines_only_when_its_log_level_prints_them(tmp_path, monkeypatch, served,
                                                                        args, access_log):
    from dlforge.cli import listen

    monkeypatch.setattr(listen, "bind_listeners", lambda where: [])
    assert main(["-w", str(tmp_path / "ws"), "serve", *args]) == 0
    assert [run["config"].access_log for run in served] == [access_log]


def test_serve_refuses_a_gan_at_startup_in_one_line(tmp_path, monkeypatch, capsys):
    """A GAN predicts nothing: `serve --model` names it before listening, instead of a server
    that answers every request with 422."""
    import uvicorn
    from tests.unit.export.export_models import register

    from dlforge.config.schema import DCGANConfig

    register(tmp_path / "ws", "gan", DCGANConfig(width=4, latent_dim=4))
    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: started.append(1))
    assert main(["-w", str(tmp_path / "ws"), "serve", "--model", "gan@1"]) == 2
    assert capsys.readouterr().err == ("error: model: gan@1 is a GAN (model.type dcgan): it "
                                       "generates images (`dlforge generate`) and predicts nothing\n")
    assert started == []
