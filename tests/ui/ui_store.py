"""A real store for the dashboard's tests: runs (one with a hostile name), a model with
versions and aliases, and an Optuna search with complete, pruned and failed trials."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dlforge.registry import Store

HOSTILE = "<script>alert(1)</script>"
STUDY = f"search-{HOSTILE}"
TOKEN = "s3cret-token"


def history(epochs: int, lr: float = 0.01) -> list[dict[str, float]]:
    return [{"epoch": e, "loss": 1.0 / (e + 1), "accuracy": 0.5 + e / 40, "val_loss": 1.2 / (e + 1),
             "val_accuracy": 0.5 + e / 50, "lr": lr, "epoch_time_s": 2.0, "samples_per_s": 500.0}
            for e in range(epochs)]


def test_metrics(accuracy: float) -> dict:
    return {"headline": [["accuracy", accuracy], ["macro_f1", accuracy - 0.05]],
            "baseline_headline": [["accuracy", 0.61]],
            "test": {"accuracy": accuracy, "class_names": ["ok", HOSTILE],
                     "confusion_matrix": [[40, 2], [3, 15]]},
            "model": {"training_precision": "bf16"},
            "diagnosis": {"verdict": "overfitting", "reasons": [f"val_loss rose: {HOSTILE}"],
                          "advice": ["Stop early."]}}


@dataclass(frozen=True)
class Seeded:
    """Ids of what `make_store` wrote."""

    hostile: str
    plain: str
    running: str
    failed: str
    trial: str


def make_store(workspace: Path) -> tuple[Store, Seeded]:
    store = Store.open(workspace)
    hostile = _finished(store, HOSTILE, {"name": HOSTILE, "train": {"lr": 0.01, "epochs": 4}},
                        history(4), test_metrics(0.91))
    plain = _finished(store, "plain", {"name": "plain", "train": {"lr": 0.1, "epochs": 3}},
                      history(3, lr=0.1), test_metrics(0.85))
    failed = store.create_run("broken", {"name": "broken"}, None, "test", 0).id
    store.finish_run(failed, "failed", error=f"DataError: {HOSTILE}")
    trial = _finished(store, "plain-trial-0", {"name": "plain"}, history(2),
                      {"val_accuracy": 0.7, "trial": 0, "tune_state": "complete",
                       "params": {"train.lr": 0.01}}, kind="trial")
    running = store.create_run("live", {"name": "live", "train": {"epochs": 5}}, None, "test", 0).id
    write_progress(store, running, history(2), epochs=5)
    _register(store, workspace, plain)
    add_search(store, STUDY, values=[0.6, 0.8, 0.7])
    return store, Seeded(hostile, plain, running, failed, trial)


def write_progress(store: Store, run_id: str, rows: list[dict], epochs: int) -> Path:
    path = store.artifacts_dir / "runs" / run_id / "progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"epochs": epochs, "history": rows, "updated_at": "now"}))
    return path


def add_search(store: Store, name: str, values: list[float]) -> None:
    """A maximising study: one complete trial per value, then one pruned and one failed."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=store.sqlalchemy_url, study_name=name, direction="maximize")
    space = {"train.lr": FloatDistribution(1e-4, 1e-1, log=True),
             "model.width": CategoricalDistribution([16, 32, HOSTILE])}
    for i, value in enumerate(values):
        trial = study.ask(space)
        trial.set_user_attr("run_id", f"run{i:08d}")
        study.tell(trial, value)
    pruned = study.ask(space)
    pruned.set_user_attr("reason", "pruned at epoch 2: val_accuracy 0.3 below the median 0.7")
    pruned.set_user_attr("last_value", 0.3)
    study.tell(pruned, state=TrialState.PRUNED)
    failed = study.ask(space)
    failed.set_user_attr("reason", f"ConfigError: {HOSTILE}")
    study.tell(failed, state=TrialState.FAIL)


def _finished(store: Store, name: str, config: dict, rows: list[dict], metrics: dict,
              kind: str = "train") -> str:
    run = store.create_run(name, config, None, "test", 0, kind=kind)
    report = store.artifacts_dir / "runs" / run.id / "report.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(f"<html><body>report of {run.id}</body></html>")
    store.finish_run(run.id, "completed", history=rows, metrics=metrics, report_path=report)
    return run.id


def _register(store: Store, workspace: Path, run_id: str) -> None:
    """Model `digits`: v1 (production), v2 fine-tuned from v1 (staging), registered without a
    run (the store keeps at most one version per run)."""
    for version in (1, 2):
        bundle = workspace / f"bundle{version}"
        bundle.mkdir()
        (bundle / "meta.json").write_text("{}")
        store.register("digits", run_id if version == 1 else None, bundle, test_metrics(0.8 + version / 100),
                       parent_version=1 if version == 2 else None)
    store.set_alias("digits", "production", 1)
    store.set_alias("digits", "staging", 2)
