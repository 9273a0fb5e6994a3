"""The store's behaviour, written once and run against every backend (the `store` fixture in
conftest.py: SQLite always, PostgreSQL when DLFORGE_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dlforge.errors import ConfigError, NotFoundError
from dlforge.registry import Store


def make_bundle(root: Path, tag: str) -> Path:
    src = root / "staging" / tag
    src.mkdir(parents=True)
    (src / "weights.safetensors").write_text(tag)
    return src


def register_n(store: Store, root: Path, name: str, n: int, run_id: str | None = None):
    return [store.register(name, run_id, make_bundle(root, f"{name}-{i}"), {"accuracy": i / 10})
            for i in range(n)]


def test_versions_count_from_one_per_name_and_bundles_move_in(store, tmp_path):
    runs = [store.create_run("digits", {"seed": i}, "fp1", "dlforge test", i) for i in range(3)]
    digits = [store.register("digits", run.id, make_bundle(tmp_path, f"digits-{i}"), {"accuracy": i / 10})
              for i, run in enumerate(runs)]
    other = register_n(store, tmp_path, "wine", 1)
    assert [v.version for v in digits] == [1, 2, 3]
    assert other[0].version == 1
    v2 = digits[1]
    assert v2.bundle_path == tmp_path / "artifacts" / "models" / "digits" / "v2"
    assert (v2.bundle_path / "weights.safetensors").read_text() == "digits-1"
    assert not (tmp_path / "staging" / "digits-1").exists()
    assert (v2.run_id, v2.metrics, v2.parent_version) == (runs[1].id, {"accuracy": 0.1}, None)


def test_a_run_registers_one_version_and_registering_again_returns_it(store, tmp_path):
    run = store.create_run("digits", {}, None, "v", 0)
    assert store.version_for_run(run.id) is None
    first = store.register("digits", run.id, make_bundle(tmp_path, "a"), {"accuracy": 0.5})
    store.set_alias("digits", "production", 1)
    again = store.register("digits", run.id, make_bundle(tmp_path, "b"), {"accuracy": 0.9})
    assert (again.version, again.metrics, again.aliases) == (1, {"accuracy": 0.5}, ("production",))
    assert (tmp_path / "staging" / "b" / "weights.safetensors").read_text() == "b"  # left alone
    assert store.version_for_run(run.id) == again
    assert [v.version for v in store.list_versions("digits")] == [1]
    assert [e.event for e in store.history("digits")] == ["registered", "alias_set"]
    assert first.bundle_path == again.bundle_path
    with pytest.raises(ConfigError) as info:
        store.register("wine", run.id, make_bundle(tmp_path, "c"), {})
    assert str(info.value) == (f"run_id: run {run.id} already registered digits@1; a run "
                               "registers one version, so it cannot also register 'wine'")


def test_the_database_refuses_a_second_version_row_for_one_run(store, tmp_path):
    from sqlalchemy.exc import IntegrityError

    from dlforge.registry.records import now
    from dlforge.registry.tables import ModelVersionRow

    run = store.create_run("digits", {}, None, "v", 0)
    store.register("digits", run.id, make_bundle(tmp_path, "a"), {})
    with pytest.raises(IntegrityError), store._session(write=True) as s:
        s.add(ModelVersionRow(name="digits", version=2, run_id=run.id, bundle_path="x",
                              metrics={}, created_at=now()))
    register_n(store, tmp_path, "digits", 2)  # versions without a run are not constrained
    assert [v.run_id for v in store.list_versions("digits")] == [run.id, None, None]


def test_resolve_latest_number_and_alias(store, tmp_path):
    register_n(store, tmp_path, "digits", 3)
    store.set_alias("digits", "production", 2)
    assert store.resolve("digits").version == 3
    assert store.resolve("digits@latest").version == 3
    assert store.resolve("digits@1").version == 1
    assert store.resolve("digits@production").version == 2
    assert store.resolve("digits@production").aliases == ("production",)
    assert store.get_version("digits", "2").version == 2


def test_alias_set_move_remove_logs_every_change(store, tmp_path):
    register_n(store, tmp_path, "digits", 3)
    store.set_alias("digits", "production", 1, reason="first")
    store.set_alias("digits", "production", 3, reason="better f1")
    store.set_alias("digits", "production", 3, reason="no change")  # same target: no event
    store.set_alias("digits", "staging", 2)
    store.remove_alias("digits", "production", reason="rollback")
    events = [(e.event, e.version, e.alias, e.from_version, e.to_version, e.reason)
              for e in store.history("digits")]
    assert events == [
        ("registered", 1, None, None, 1, None),
        ("registered", 2, None, None, 2, None),
        ("registered", 3, None, None, 3, None),
        ("alias_set", 1, "production", None, 1, "first"),
        ("alias_moved", 3, "production", 1, 3, "better f1"),
        ("alias_set", 2, "staging", None, 2, None),
        ("alias_removed", 3, "production", 3, None, "rollback"),
    ]
    assert [e.at for e in store.history("digits")] == sorted(e.at for e in store.history("digits"))
    assert {a: store.resolve(f"digits@{a}").version for a in ("staging",)} == {"staging": 2}


def test_list_models_and_versions(store, tmp_path):
    register_n(store, tmp_path, "wine", 1)
    register_n(store, tmp_path, "digits", 2)
    store.set_alias("digits", "staging", 1)
    store.set_alias("digits", "production", 1)
    summaries = [(m.name, m.latest_version, m.count, m.aliases) for m in store.list_models()]
    assert summaries == [("digits", 2, 2, {"production": 1, "staging": 1}), ("wine", 1, 1, {})]
    versions = store.list_versions("digits")
    assert [(v.version, v.aliases) for v in versions] == [(1, ("production", "staging")), (2, ())]


def test_parent_version_is_kept(store, tmp_path):
    register_n(store, tmp_path, "digits", 1)
    child = store.register("digits", None, make_bundle(tmp_path, "ft"), {}, parent_version=1)
    assert (child.version, child.parent_version) == (2, 1)


@pytest.mark.parametrize(("ref", "message"), [
    ("digits@7", "Model 'digits' has no version 7. Available versions: 1, 2, 3. "
                 "Use `dlforge models show digits` to see all."),
    ("digits@canary", "Model 'digits' has no alias 'canary'. Available aliases: production. "
                      "Use `dlforge models show digits` to see all."),
    ("mnist", "No model named 'mnist'. Available models: digits. "
              "Use `dlforge models list` to see all."),
])
def test_unknown_refs_list_what_exists(store, tmp_path, ref, message):
    register_n(store, tmp_path, "digits", 3)
    store.set_alias("digits", "production", 3)
    with pytest.raises(NotFoundError) as info:
        store.resolve(ref)
    assert str(info.value) == message


def test_empty_store_says_how_to_register(store):
    with pytest.raises(NotFoundError) as info:
        store.list_versions("digits")
    assert str(info.value) == ("No model named 'digits': no models are registered yet. "
                               "Train and register one with `dlforge run CONFIG`.")
    assert store.list_models() == []


def test_remove_unknown_alias_and_alias_to_missing_version(store, tmp_path):
    register_n(store, tmp_path, "digits", 1)
    with pytest.raises(NotFoundError, match=r"^Model 'digits' has no alias 'staging'\. "
                                            r"Available aliases: none\."):
        store.remove_alias("digits", "staging")
    with pytest.raises(NotFoundError, match=r"^Model 'digits' has no version 4\."):
        store.set_alias("digits", "staging", 4)
    assert [e.event for e in store.history("digits")] == ["registered"]


@pytest.mark.parametrize(("alias", "message"), [
    ("3", "alias: '3' looks like a version number; an alias must match ^[a-z][a-z0-9_-]*$ "
          "such as production or staging"),
    ("Prod", "alias: must match ^[a-z][a-z0-9_-]*$ such as production or staging (got 'Prod')"),
    ("latest", "alias: 'latest' is reserved (it always means the newest version); "
               "choose another name"),
])
def test_bad_alias_names_are_refused(store, tmp_path, alias, message):
    register_n(store, tmp_path, "digits", 1)
    with pytest.raises(ConfigError) as info:
        store.set_alias("digits", alias, 1)
    assert str(info.value) == message


def test_runs_lifecycle_and_prefix_lookup(store):
    run = store.create_run("digits", {"train": {"epochs": 2}}, "abc123", "dlforge 0.1.0", 7)
    assert (run.status, run.kind, run.seed, run.ended_at) == ("running", "train", 7, None)
    assert len(run.id) == 12
    done = store.finish_run(run.id, "completed", [{"epoch": 0, "loss": float("nan")}],
                            {"accuracy": 0.5}, report_path="r.html")
    got = store.get_run(run.id[:5])
    assert got == done
    assert (got.status, got.history, got.metrics, got.report_path, got.error) == (
        "completed", [{"epoch": 0, "loss": None}], {"accuracy": 0.5}, "r.html", None)
    assert got.config == {"train": {"epochs": 2}}
    assert got.ended_at >= got.started_at


def test_failed_run_keeps_its_error_and_list_is_newest_first(store):
    first = store.create_run("a", {}, None, "v", 0)
    second = store.create_run("b", {}, None, "v", 0, kind="tune")
    store.finish_run(first.id, "failed", error="DataError: no samples")
    assert store.get_run(first.id).error == "DataError: no samples"
    assert [r.id for r in store.list_runs()] == [second.id, first.id]
    assert [r.id for r in store.list_runs(limit=1)] == [second.id]


def test_unknown_run_says_how_to_find_runs(store):
    with pytest.raises(NotFoundError) as info:
        store.get_run("ffff")
    assert str(info.value) == "No run with id 'ffff'. Use `dlforge runs list` to see runs."


def test_register_checks_its_inputs(store, tmp_path):
    with pytest.raises(NotFoundError, match=r"^bundle_src: '.*missing' is not a directory"):
        store.register("digits", None, tmp_path / "missing", {})
    with pytest.raises(NotFoundError, match=r"^No run with id 'nope'\."):
        store.register("digits", "nope", make_bundle(tmp_path, "a"), {})
    with pytest.raises(ConfigError, match=r"^model name: must match .* \(got '\.\./up'\)$"):
        store.register("../up", None, make_bundle(tmp_path, "b"), {})
    assert store.list_models() == []


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dlforge.registry import Store

    url, artifacts, staging, tag, go = sys.argv[1:6]
    store = Store(url, artifacts_dir=artifacts)
    while not Path(go).exists():  # start every writer at the same moment
        time.sleep(0.01)
    for i in range(10):
        src = Path(staging) / f"{tag}-{i}"
        src.mkdir(parents=True)
        (src / "who").write_text(f"{tag}-{i}")
        print(store.register("digits", None, src, {}).version, flush=True)
""")


def test_processes_registering_at_once_get_versions_1_to_30(store, tmp_path):
    # 3 real processes x 10. On SQLite this fails most runs without BEGIN IMMEDIATE ("database
    # is locked" when a stale read snapshot tries to write); on PostgreSQL it exercises the
    # unique constraint + retry.
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, store.sqlalchemy_url,
                               str(store.artifacts_dir), str(tmp_path / "staging"), tag, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b", "c")]
    time.sleep(0.5)
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert sorted(int(v) for out, _ in outputs for v in out.split()) == list(range(1, 31))
    versions = store.list_versions("digits")
    assert [v.version for v in versions] == list(range(1, 31))
    assert {(v.bundle_path / "who").read_text() for v in versions} == {
        f"{t}-{i}" for t in "abc" for i in range(10)}
    assert sorted(p.name for p in (store.artifacts_dir / "models" / "digits").iterdir()) == sorted(
        f"v{i}" for i in range(1, 31))
    assert [e.version for e in store.history("digits")] == list(range(1, 31))
