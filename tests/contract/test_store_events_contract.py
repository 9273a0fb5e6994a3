"""Gate decisions in the audit log, on every backend: named events with their figures as JSON,
events that move nothing, and a store made before events had details."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from test_store_contract import make_bundle

from dlforge.errors import StoreError
from dlforge.registry import Store
from dlforge.registry.holders import holder_stack


def test_a_named_alias_move_keeps_its_details(store, tmp_path):
    for tag in ("a", "b"):
        store.register("digits", None, make_bundle(tmp_path, tag), {})
    store.set_alias("digits", "production", 1)
    figures = {"checks": [{"metric": "accuracy", "candidate": 0.9, "champion": 0.8}], "passed": True}
    store.set_alias("digits", "production", 2, reason="gate passed", event="promoted", details=figures)
    store.record_event("digits", "promotion_refused", 1, alias="production", reason="gate failed",
                       details={"passed": False})
    last = store.history("digits")[-2:]
    assert [(e.event, e.version, e.alias, e.from_version, e.to_version, e.reason, e.details)
            for e in last] == [
        ("promoted", 2, "production", 1, 2, "gate passed", figures),
        ("promotion_refused", 1, "production", None, None, "gate failed", {"passed": False}),
    ]
    assert store.get_version("digits", "production").version == 2  # a refusal moves nothing
    assert holder_stack(store.history("digits"), "production") == [1, 2]


def test_an_older_store_gains_the_details_column(store, tmp_path):
    store.register("digits", None, make_bundle(tmp_path, "a"), {})
    with store._engine.begin() as conn:
        conn.execute(text("ALTER TABLE model_events DROP COLUMN details"))
    store.close()
    store = Store(store.sqlalchemy_url, artifacts_dir=store.artifacts_dir)
    assert [(e.event, e.details) for e in store.history("digits")] == [("registered", None)]
    store.set_alias("digits", "production", 1, event="promoted", details={"passed": True})
    assert store.history("digits")[-1].details == {"passed": True}
    store.close()


def test_a_decision_moves_the_alias_only_from_the_holder_it_compared(store, tmp_path):
    for tag in ("a", "b", "c"):
        store.register("digits", None, make_bundle(tmp_path, tag), {})
    with pytest.raises(StoreError) as info:
        store.set_alias("digits", "production", 2, expect_from=1)  # no holder yet
    assert str(info.value) == ("digits@production: now names no version, not version 1 this "
                               "decision compared against (another process moved it); run it again")
    store.set_alias("digits", "production", 1, expect_from=None)
    store.set_alias("digits", "production", 3)  # another process, meanwhile
    with pytest.raises(StoreError):
        store.set_alias("digits", "production", 2, event="promoted", expect_from=1)
    assert store.get_version("digits", "production").version == 3
    assert [e.event for e in store.history("digits")][-2:] == ["alias_set", "alias_moved"]
