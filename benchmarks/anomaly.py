"""Anomaly detection on real data: the autoencoder of each anomaly example beside
scikit-learn's IsolationForest on the same split (the run's own baseline), for a few seeds.

    .venv/bin/python benchmarks/anomaly.py                              # both examples, seeds 0 1 2
    .venv/bin/python benchmarks/anomaly.py --examples anomaly_breast_cancer --seeds 0
    .venv/bin/python benchmarks/anomaly.py --fashion-path DIR           # Fashion-MNIST IDX files

Prints one Markdown row per run: the split sizes, then ROC-AUC, PR-AUC, recall at the
threshold and the test false alarm rate of the autoencoder and of IsolationForest, both
thresholds calibrated on the normal validation samples with the example's objective.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402

from dlforge.config import load_config  # noqa: E402
from dlforge.pipeline import run  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
METRICS = ("roc_auc", "pr_auc", "recall_at_threshold", "false_alarm_rate")


def measure(example: str, seed: int, fashion_path: str | None) -> str:
    """One run of `example` with `seed`, as a Markdown table row."""
    overrides = [f"seed={seed}", "train.num_threads=1", "registry.enabled=false"]
    if fashion_path and "fashion" in example:
        overrides.append(f"data.path={fashion_path}")
    cfg = load_config(EXAMPLES / f"{example}.yaml", overrides)
    with tempfile.TemporaryDirectory() as ws:
        start = time.perf_counter()
        result = run(cfg, workspace=ws, progress=False)
        seconds = time.perf_counter() - start
    test = result.test_metrics
    support = {name: v["support"] for name, v in test["per_class"].items()}
    deep = dict(result.headline)
    forest = result.baseline_headline
    cells = [example, seed, support["normal"], support["anomaly"],
             *(f"{deep[m]:.3f}" for m in METRICS), *(f"{forest[m]:.3f}" for m in METRICS),
             f"{seconds:.0f}"]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", default=["anomaly_breast_cancer", "anomaly_fashion"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--fashion-path", default=None, help="folder of the Fashion-MNIST IDX files")
    args = parser.parse_args()
    print(machine_line())
    print("| example | seed | test normal | test anomalies | AE ROC-AUC | AE PR-AUC | AE recall "
          "| AE false alarms | IF ROC-AUC | IF PR-AUC | IF recall | IF false alarms | run s |")
    print("|" + "---|" * 13)
    for example in args.examples:
        for seed in args.seeds:
            print(measure(example, seed, args.fashion_path), flush=True)


if __name__ == "__main__":
    main()
