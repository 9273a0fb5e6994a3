"""Page latency of `dlforge ui` over a big store: 1,000 runs and 10,000 search trials.

Builds a store in a temporary workspace: 1,000 training runs (20-epoch histories, test metrics,
configs) and 10 Optuna studies of 1,000 trials each (values, 3 parameters, run ids and reasons),
each trial also a run of kind `trial` (11,000 runs in all). Rows are inserted in bulk with
SQLAlchemy (the store's and Optuna's own tables; the studies are created by Optuna), since
recording them one by one through the APIs would take minutes. Then every page is requested
through the ASGI app in this process (TestClient): a few warm-up requests, then `--repeat`
timed ones; prints the median and p95 per page.

    .venv/bin/python benchmarks/ui_pages.py [--repeat 20] [--markdown]

Target: every page under 200 ms (median) with this store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

RUNS, STUDIES, TRIALS_PER_STUDY, EPOCHS = 1000, 10, 1000, 20


def build_store(workspace: Path):
    from sqlalchemy import insert

    from dlforge.registry import Store
    from dlforge.registry.tables import RunRow

    store = Store.open(workspace)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [_run_row(i, start + timedelta(minutes=i), "train") for i in range(RUNS)]
    trial_runs = [_run_row(i, start + timedelta(seconds=i), "trial")
                  for i in range(STUDIES * TRIALS_PER_STUDY)]
    with store._session(write=True) as s:  # noqa: SLF001 - a benchmark filling the store in bulk
        s.execute(insert(RunRow), rows + trial_runs)
    _studies(store, [r["id"] for r in trial_runs])
    bundle = workspace / "bundle"
    for version in range(1, 6):
        bundle.mkdir()
        store.register("bench", rows[version]["id"], bundle, {"accuracy": 0.9})
    store.set_alias("bench", "production", 3)
    return store, [r["id"] for r in rows]


def _run_row(i: int, at: datetime, kind: str) -> dict:
    history = [{"epoch": e, "loss": 1 / (e + 1), "accuracy": 0.5 + e / 50, "val_loss": 1.1 / (e + 1),
                "val_accuracy": 0.5 + e / 60, "lr": 1e-3, "epoch_time_s": 1.0,
                "samples_per_s": 1000.0} for e in range(EPOCHS)]
    metrics = {"headline": [["accuracy", 0.9 + i % 10 / 100], ["macro_f1", 0.85]],
               "test": {"accuracy": 0.9, "confusion_matrix": [[50, 3], [4, 43]],
                        "class_names": ["a", "b"]},
               "model": {"training_precision": "bf16"}}
    return {"id": uuid.uuid4().hex[:12], "name": f"{kind}-{i}", "kind": kind,
            "config": {"name": f"{kind}-{i}", "train": {"lr": 1e-3 * (1 + i % 7), "epochs": EPOCHS},
                       "model": {"type": "mlp", "hidden": [64, 32]}},
            "data_fingerprint": None, "code_version": "bench", "seed": 0, "history": history,
            "metrics": metrics, "status": "completed", "started_at": at,
            "ended_at": at + timedelta(seconds=30), "report_path": None, "error": None}


def _studies(store, run_ids: list[str]) -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from sqlalchemy import insert

    from dlforge.ui.studies import attrs_t, params_t, trials_t, values_t

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {"train.lr": FloatDistribution(1e-4, 1e-1, log=True),
             "model.width": CategoricalDistribution([16, 32, 64]),
             "train.batch_size": IntDistribution(16, 256)}
    trials, values, params, attrs = [], [], [], []
    trial_id = 0
    for s in range(STUDIES):
        study = optuna.create_study(storage=store.sqlalchemy_url, study_name=f"study-{s}",
                                    direction="maximize")
        sid = study._study_id  # noqa: SLF001 - the row the bulk insert points at
        for n in range(TRIALS_PER_STUDY):
            trial_id += 1
            state = "PRUNED" if n % 5 == 4 else "COMPLETE"
            at = datetime(2026, 1, 1) + timedelta(seconds=n)
            trials.append({"trial_id": trial_id, "number": n, "study_id": sid, "state": state,
                           "datetime_start": at, "datetime_complete": at + timedelta(seconds=3)})
            if state == "COMPLETE":
                values.append({"trial_id": trial_id, "objective": 0, "value": 0.5 + (n * 7919 % 1000) / 2500,
                               "value_type": "FINITE"})
            for name, dist in dists.items():
                params.append({"trial_id": trial_id, "param_name": name, "param_value": 1.0,
                               "distribution_json": optuna.distributions.distribution_to_json(dist)})
            attrs.append({"trial_id": trial_id, "key": "run_id",
                          "value_json": json.dumps(run_ids[trial_id - 1])})
            if state == "PRUNED":
                attrs.append({"trial_id": trial_id, "key": "reason",
                              "value_json": json.dumps("pruned at epoch 3: below the median")})
    with store._session(write=True) as s:  # noqa: SLF001
        for table, rows in ((trials_t, trials), (values_t, values), (params_t, params),
                            (attrs_t, attrs)):
            s.execute(insert(table), rows)


def pages(run_ids: list[str]) -> dict[str, str]:
    picked = "&".join(f"run={i}" for i in run_ids[:5])
    studies = "&".join(f"study=study-{s}" for s in range(5))
    return {"runs (first page)": "/runs", "runs page 20 of 220": "/runs?page=20",
            "runs filtered by name": "/runs?q=train-99", "runs sorted by name": "/runs?sort=name",
            "runs of kind trial": "/runs?kind=trial&page=50", "run page": f"/runs/{run_ids[500]}",
            "compare 5 runs": f"/compare?{picked}", "searches": "/searches",
            "search (1,000 trials)": "/searches/study-3",
            "search, trials page 15": "/searches/study-3?page=15",
            "5 searches side by side": f"/searches/compare?{studies}",
            "models": "/models", "model page": "/models/bench"}


def measure(client, url: str, repeat: int) -> tuple[float, float]:
    for _ in range(3):
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, url
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from dlforge.ui import create_ui_app

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store, run_ids = build_store(Path(tmp))
        print(f"store built in {time.perf_counter() - start:.1f} s: {RUNS} runs, "
              f"{STUDIES * TRIALS_PER_STUDY} trials", file=sys.stderr)
        load1, load5, _ = os.getloadavg()
        print(f"{platform.machine()}, {os.cpu_count()} logical CPUs, load average {load1:.2f} / "
              f"{load5:.2f}", file=sys.stderr)
        with TestClient(create_ui_app(store)) as client:
            rows = [(name, *measure(client, url, args.repeat)) for name, url in pages(run_ids).items()]
        store.close()
    if args.markdown:
        print("| page | median ms | p95 ms |\n|---|---|---|")
        print("\n".join(f"| {n} | {m:.1f} | {p:.1f} |" for n, m, p in rows))
    else:
        print("\n".join(f"{n:28s} median {m:7.1f} ms   p95 {p:7.1f} ms" for n, m, p in rows))
    worst = max(m for _, m, _ in rows)
    print(f"slowest median {worst:.1f} ms: {'under' if worst < 200 else 'OVER'} the 200 ms target")


if __name__ == "__main__":
    main()
