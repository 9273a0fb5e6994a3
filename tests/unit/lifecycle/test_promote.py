"""Promotion through the gate and rollback on a real store: two versions of one model trained
by the pipeline (the second worse), then every decision and refusal as the audit log shows it."""

from __future__ import annotations

import pytest
import yaml

from dlforge.cli import main
from dlforge.errors import ConfigError, DataError
from dlforge.lifecycle.promote import promote, rollback
from dlforge.pipeline import run
from dlforge.registry import Store

GATE = ["accuracy >= 0.5", "accuracy >= champion"]
BASE = {"name": "dg", "data": {"source": "builtin", "name": "digits"},
        "model": {"type": "mlp", "hidden": [32]},
        "train": {"epochs": 4, "batch_size": 64, "lr": 0.01, "num_threads": 1},
        "evaluate": {"baseline": False, "gate": {"conditions": GATE}}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """v1 (promoted by its run: no champion yet) and a worse v2 (refused by its run)."""
    ws = tmp_path_factory.mktemp("lifecycle")
    first = run(BASE, workspace=ws, progress=False)
    worse = run({**BASE, "train": {**BASE["train"], "epochs": 1, "lr": 0.0005}}, workspace=ws,
                progress=False)
    return ws, first, worse


def events(ws) -> list[tuple]:
    with Store.open(ws) as store:
        return [(e.event, e.version, e.alias, e.from_version) for e in store.history("dg")]


def test_a_run_with_a_gate_promotes_the_first_and_refuses_the_worse(trained):
    ws, first, worse = trained
    assert [c["status"] for c in first.promotion["checks"]] == ["passed", "skipped"]
    assert first.promotion["passed"] and not worse.promotion["passed"]
    assert events(ws)[:4] == [("registered", 1, None, None), ("promoted", 1, "production", None),
                              ("registered", 2, None, None), ("promotion_refused", 2, "production", None)]
    with Store.open(ws) as store:
        refused = store.history("dg")[3]
        assert store.resolve("dg@production").version == 1
    check = refused.details["checks"][1]
    assert check["status"] == "failed" and check["candidate"] < check["champion"] == check["bound"]
    assert refused.details["champion"] == 1 and refused.details["samples"] == 270
    assert refused.reason == "gate failed: accuracy >= 0.5; accuracy >= champion"


def test_promote_refuses_with_a_table_and_moves_nothing(trained, capsys):
    ws, _, _ = trained
    before = events(ws)
    assert main(["-w", str(ws), "promote", "dg", "--candidate", "2",
                 "--require", "accuracy >= champion"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split()[:1] == ["condition"]
    assert out.splitlines()[2].startswith("accuracy >= champion") and out.splitlines()[2].endswith("failed")
    assert err.startswith("error: promotion refused: accuracy 0.1")
    assert err.endswith(" (accuracy >= champion)\n")
    assert events(ws) == [*before, ("promotion_refused", 2, "production", None)]


@pytest.mark.parametrize(("args", "message"), [
    (["--candidate", "other@2"], "error: --candidate: 'other@2' is a version of 'other', not of "
                                  "'dg'; a gate compares versions of one model"),
    (["--candidate", "1"], "error: --candidate: dg@1 already holds dg@production; nothing to promote"),
    (["--candidate", "2", "--require", "mae <= 1"], "error: evaluate.gate.conditions: 'mae' is not a "
                                                    "metric of this model; measured: accuracy, "),
    (["--candidate", "2", "--require", "accuracy >="],
     "error: --require: 'accuracy >=' is not a condition; write METRIC OP BOUND with OP one of "
     ">=, <=, >, < and BOUND a number, champion, champion - 0.01 or 1.2 * champion\n"),
    (["--candidate", "1", "--require", "accuracy >== 1"],
     "error: --require: 'accuracy >== 1' is not a condition; write METRIC OP BOUND"),
    (["--candidate", "9"], "error: Model 'dg' has no version 9. Available versions: 1, 2. Use "
                           "`dlforge models show dg` to see all."),
])
def test_bad_promotions_are_one_line_errors_and_leave_the_store(trained, capsys, args, message):
    ws, _, _ = trained
    before = events(ws)
    code = main(["-w", str(ws), "promote", "dg", *args])
    err = capsys.readouterr().err
    assert (code, err.count("\n")) == (2 if "Model" not in message else 1, 1)
    assert err.startswith(message)
    assert events(ws) == before


def test_a_gate_set_the_models_trained_on_is_refused(trained, tmp_path):
    ws, _, _ = trained
    held_out = tmp_path / "all.yaml"
    held_out.write_text(yaml.safe_dump({"data": {"source": "builtin", "name": "digits"}}))
    before = events(ws)
    with Store.open(ws) as store, pytest.raises(DataError) as info:
        promote(store, "dg", 2, conditions=["accuracy >= 0"], gate_data=held_out)
    lines = str(info.value).splitlines()
    assert lines == [f"gate set: {n} of its 1797 rows (data of {held_out}) are in the {part} split "
                     f"dg@{v} trained with; gate on data neither model learned from (--gate-data "
                     f"CONFIG with held-out data)"
                     for v in (2, 1) for part, n in (("train", 1257), ("val", 270))]
    assert events(ws) == before


def test_promote_then_roll_back_one_step_at_a_time(trained, capsys):
    ws, _, _ = trained
    assert main(["-w", str(ws), "promote", "dg", "--candidate", "2", "--require", "accuracy >= 0"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "dg@production -> version 2"
    assert main(["-w", str(ws), "rollback", "dg", "--reason", "complaints"]) == 0
    assert capsys.readouterr().out == "dg@production: version 2 -> version 1 (rolled back)\n"
    before = events(ws)
    assert before[-2:] == [("promoted", 2, "production", 1), ("rolled_back", 1, "production", 2)]
    with Store.open(ws) as store, pytest.raises(ConfigError) as info:
        rollback(store, "dg")
    assert str(info.value) == ("rollback: dg@production (version 1) has no previous holder to "
                               "return to; point it elsewhere with `dlforge models alias`")
    assert events(ws) == before
    assert main(["-w", str(ws), "models", "history", "dg"]) == 0
    holders = capsys.readouterr().out.split("alias holders of dg")[1].splitlines()[2:]
    rows = [line.split() for line in holders if line.startswith("production")]
    assert [r[:2] for r in rows] == [["production", "1"], ["production", "2"], ["production", "1"]]
    assert rows[0][-4:] == ["promoted", "gate", "passed", "(1"]  # (1 skipped: no champion)
    assert rows[1][-3:] == ["promoted", "gate", "passed"]
    assert rows[2][-3:] == ["now", "rolled_back", "complaints"]
