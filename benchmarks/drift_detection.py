"""Drift detection on real data: false alarms on fresh samples of the training distribution,
and detection of brightness-shifted, rotated and class-mix-shifted Fashion-MNIST images and of
one shifted breast-cancer column. Each model is trained and registered by `pipeline.run`
(so its bundle holds the reference.json every run writes), then samples are compared with
`lifecycle.drift.check_drift`, the function `dlforge drift` calls.

    .venv/bin/python benchmarks/drift_detection.py            # ~10 min on a shared 2-core CPU
    .venv/bin/python benchmarks/drift_detection.py --quick    # smoke test

Fresh samples are drawn from Fashion-MNIST's official test images (never trained on) and from
breast cancer's validation + test rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line  # noqa: E402

from dlforge.config import load_config  # noqa: E402
from dlforge.data.prepare import load_and_split  # noqa: E402
from dlforge.lifecycle.drift import check_drift  # noqa: E402
from dlforge.pipeline import run  # noqa: E402
from dlforge.registry import load_bundle  # noqa: E402
from dlforge.registry.bundle import read_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def trained(config: str, overrides: list[str], ws: Path):
    cfg = load_config(ROOT / "examples" / config, overrides)
    result = run(cfg, workspace=ws, progress=False)
    path = Path(result.bundle_path)
    return cfg, load_bundle(path), read_reference(path, result.model_ref)


def rates(bundle, reference, draw, samples: int, n: int, rng) -> dict:
    """Share of `samples` samples of `n` rows (from `draw(n, rng)`) found drifting, and the
    features found most often."""
    flagged, hits = 0, {}
    for _ in range(samples):
        x = bundle.preprocessor.transform(draw(n, rng))
        result = check_drift(reference, x, bundle, model="m", source="sample")
        flagged += result.detected
        for name in result.drifted:
            hits[name] = hits.get(name, 0) + 1
    top = sorted(hits, key=lambda k: (-hits[k], k))
    return {"rate": flagged / samples, "samples": samples, "n": n,
            "features_flagged": [f"{k} ({hits[k]})" for k in top]}


def fashion(ws: Path, quick: bool, rng) -> dict:
    limit, epochs = (3000, 1) if quick else (8000, 2)
    cfg, bundle, reference = trained("fashion_mnist.yaml", [
        f"data.limit={limit}", f"train.epochs={epochs}", "augment.hflip=null", "registry.alias=null",
        "train.schedule.warmup_steps=10"], ws)
    dataset, _, _ = load_and_split(cfg.model_copy(update={"data": cfg.data.model_copy(update={"limit": None})}))
    test = dataset.split == "test"
    x, y = dataset.x[test], dataset.y[test]

    def plain(n, rng):
        return x[rng.choice(len(x), n, replace=False)]

    def brighter(n, rng):
        return np.clip(plain(n, rng).astype(np.int16) + 25, 0, 255).astype(np.uint8)

    def rotated(n, rng):
        return ndimage.rotate(plain(n, rng), 15, axes=(2, 3), reshape=False, order=1).astype(np.uint8)

    def class_mix(n, rng):  # 40% of the sample from one class (10% in the data)
        shirts = np.flatnonzero(y == 0)
        k = int(0.4 * n)
        rows = np.concatenate([rng.choice(shirts, k, replace=False), rng.choice(len(x), n - k, replace=False)])
        return x[rows]

    out = {"reference_rows": reference["rows"], "features": len(reference["features"])}
    samples = 4 if quick else 20
    for n in (500, 2000):
        out[f"same n={n}"] = rates(bundle, reference, plain, samples, n, rng)
        for name, draw in (("brightness +25", brighter), ("rotated 15 deg", rotated), ("class mix", class_mix)):
            out[f"{name} n={n}"] = rates(bundle, reference, draw, max(samples // 4, 2), n, rng)
    return out


def breast_cancer(ws: Path, quick: bool, rng) -> dict:
    cfg, bundle, reference = trained("breast_cancer.yaml", ["train.epochs=20", "registry.alias=null"], ws)
    _, splits, _ = load_and_split(cfg)
    held = pd.concat([splits.val.x, splits.test.x])
    std = float(splits.train.x["mean radius"].std())

    def plain(n, rng):
        return held.iloc[rng.choice(len(held), n, replace=False)]

    def shifted(n, rng):
        rows = plain(n, rng).copy()
        rows["mean radius"] += 0.5 * std
        return rows

    samples = 4 if quick else 40
    return {"reference_rows": reference["rows"], "features": len(reference["features"]),
            "same n=100": rates(bundle, reference, plain, samples, 100, rng),
            "mean radius +0.5 std n=100": rates(bundle, reference, shifted, samples, 100, rng)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        results = {"breast_cancer": breast_cancer(Path(tmp) / "bc", args.quick, rng),
                   "fashion_mnist": fashion(Path(tmp) / "fm", args.quick, rng)}
    results["seconds"] = round(time.time() - started, 1)
    results["machine"] = machine_line()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
