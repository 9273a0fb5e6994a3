"""Gate conditions: parsed when the config loads, judged against both models' figures; alias
holders read back from the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dlforge.config import load_config
from dlforge.config.lifecycle_schema import Condition, parse_condition
from dlforge.errors import ConfigError
from dlforge.lifecycle.gate import judge
from dlforge.registry.holders import Tenure, holder_stack, tenures
from dlforge.registry.records import Event


@pytest.mark.parametrize(("text", "parsed"), [
    ("accuracy >= 0.98", Condition("accuracy", ">=", value=0.98)),
    ("recall[defect] >= 0.99", Condition("recall[defect]", ">=", value=0.99)),
    ("macro_f1 >= champion - 0.002", Condition("macro_f1", ">=", scale=1.0, offset=-0.002)),
    ("latency_ms_p95 <= 1.2 * champion", Condition("latency_ms_p95", "<=", scale=1.2)),
    ("mae<champion", Condition("mae", "<")),
])
def test_conditions_parse(text, parsed):
    assert parse_condition(text) == parsed


def test_a_malformed_condition_fails_when_the_config_loads():
    with pytest.raises(ConfigError) as info:
        load_config({"evaluate": {"gate": {"conditions": ["accuracy >= 0.9", "accuracy = 0.9"]}}})
    assert str(info.value) == (
        "evaluate.gate.conditions: 'accuracy = 0.9' is not a condition; write METRIC OP BOUND with "
        "OP one of >=, <=, >, < and BOUND a number, champion, champion - 0.01 or 1.2 * champion "
        "(got ['accuracy >= 0.9', 'accuracy = 0.9'])")


def test_the_gate_alias_cannot_be_moved_by_the_run_itself():
    with pytest.raises(ConfigError) as info:
        load_config({"evaluate": {"gate": {"conditions": ["accuracy >= 0.9"]}},
                     "registry": {"alias": "production"}})
    assert str(info.value).endswith(
        "registry.alias: 'production' is the alias evaluate.gate guards; a run moves it only "
        "through the gate. Remove registry.alias or set another (e.g. staging)")


def test_a_transfer_source_cannot_be_searched():
    with pytest.raises(ConfigError, match=r"tune: a model trained from transfer.source keeps the "
                                          r"source's architecture, so there is nothing to search"):
        load_config({"transfer": {"source": "digits@production"}, "tune": {"n_trials": 2}})


def test_judge_compares_with_the_champion_and_skips_without_one():
    conditions = ["accuracy >= 0.9", "macro_f1 >= champion - 0.002", "latency_ms_p95 <= 1.2 * champion"]
    mine = {"accuracy": 0.95, "macro_f1": 0.900, "latency_ms_p95": 1.3}
    theirs = {"accuracy": 0.97, "macro_f1": 0.901, "latency_ms_p95": 1.0}
    checks = judge(conditions, mine, theirs)
    assert [(c.status, c.champion, c.bound) for c in checks] == [
        ("passed", 0.97, 0.9), ("passed", 0.901, pytest.approx(0.899)), ("failed", 1.0, 1.2)]
    alone = judge(conditions, mine, None)
    assert [(c.status, c.champion, c.bound) for c in alone] == [
        ("passed", None, 0.9), ("skipped", None, None), ("skipped", None, None)]


def test_judge_refuses_a_metric_the_task_does_not_have():
    with pytest.raises(ConfigError) as info:
        judge(["mae <= 0.1"], {"accuracy": 0.9, "macro_f1": 0.8}, None)
    assert str(info.value) == ("evaluate.gate.conditions: 'mae' is not a metric of this model; "
                               "measured: accuracy, macro_f1")


T0 = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)


def event(minute: int, kind: str, to: int | None, frm: int | None = None, alias: str = "production",
          reason: str | None = None) -> Event:
    return Event("digits", to, kind, alias, frm, to, reason, T0 + timedelta(minutes=minute))


def test_rollbacks_step_back_one_holder_at_a_time():
    log = [event(0, "registered", 1, alias=None), event(1, "alias_set", 1),
           event(2, "promoted", 2, 1), event(3, "promotion_refused", 3),
           event(4, "promoted", 3, 2), event(5, "alias_moved", 1, 1, alias="staging")]
    assert holder_stack(log, "production") == [1, 2, 3]
    log.append(event(6, "rolled_back", 2, 3))
    assert holder_stack(log, "production") == [1, 2]
    log.append(event(7, "rolled_back", 1, 2))
    assert holder_stack(log, "production") == [1]
    log.append(event(8, "alias_removed", None, 1))
    assert holder_stack(log, "production") == []


def test_tenures_say_who_held_each_alias_when_and_why():
    log = [event(1, "alias_set", 1, reason="first"), event(2, "promoted", 2, 1, reason="gate passed"),
           event(3, "promotion_refused", 3), event(4, "rolled_back", 1, 2, reason="bad latency")]
    at = [T0 + timedelta(minutes=m) for m in range(5)]
    assert tenures(log) == [
        Tenure("production", 1, at[1], at[2], "alias_set", "first"),
        Tenure("production", 2, at[2], at[4], "promoted", "gate passed"),
        Tenure("production", 1, at[4], None, "rolled_back", "bad latency"),
    ]
