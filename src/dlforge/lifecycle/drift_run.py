"""`dlforge drift`: a registered model's training reference against new data or the inputs
its server served, with an HTML report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlforge.config.drift_schema import DriftConfig
from dlforge.lifecycle.drift import DriftResult, check_drift
from dlforge.lifecycle.drift_data import read_inputs
from dlforge.lifecycle.drift_report import write_drift_report
from dlforge.lifecycle.reservoir import read_sample, served_sample_path
from dlforge.registry.bundle import read_reference
from dlforge.registry.predictor import Predictor
from dlforge.workspace import resolve_workspace


@dataclass(frozen=True)
class DriftRun:
    """A comparison and where its report was written."""

    result: DriftResult
    report: Path


def drift_of_data(ref: str, data: str | Path, *, cfg: DriftConfig | None = None, split: str = "all",
                  workspace: str | Path | None = None, url: str | None = None,
                  report: str | Path | None = None) -> DriftRun:
    """Compare `data` (a run config or a data file, see `drift_data.read_inputs`) with the
    training reference of model `ref`.

    Raises:
        NotFoundError: unknown model, a bundle without reference.json, missing data.
        DataError: data that does not match the model (columns, image size).

    Example:
        >>> drift_of_data("fashion@production", "new.npz").result.verdict  # doctest: +SKIP
        'no drift'
    """
    predictor, reference, ws = _open(ref, workspace, url)
    x = predictor.preprocess(read_inputs(data, predictor, split=split))
    return _finish(reference, x, predictor, str(data), cfg, ws, report)


def drift_of_served(ref: str, *, cfg: DriftConfig | None = None, workspace: str | Path | None = None,
                    url: str | None = None, report: str | Path | None = None) -> DriftRun:
    """Compare the sample of inputs `dlforge serve` served for model `ref` with its reference.

    Raises:
        NotFoundError: unknown model, no reference.json, or no saved sample.
    """
    predictor, reference, ws = _open(ref, workspace, url)
    version = predictor.version
    path = served_sample_path(ws, version.name, version.version)
    x, seen = read_sample(path)
    source = f"served sample ({len(x)} of {seen} inputs served, {path})"
    return _finish(reference, x, predictor, source, cfg, ws, report)


def _open(ref: str, workspace: str | Path | None, url: str | None):
    from dlforge.registry import Store, load_bundle

    ws = resolve_workspace(workspace)
    with Store.open(ws, url) as store:
        version = store.resolve(ref)
    reference = read_reference(version.bundle_path, version.ref)  # before loading the weights
    return Predictor(load_bundle(version.bundle_path), version=version), reference, ws


def _finish(reference, x, predictor: Predictor, source: str, cfg: DriftConfig | None,
            ws: Path, report: str | Path | None) -> DriftRun:
    version = predictor.version
    result = check_drift(reference, x, predictor.bundle, model=version.ref, source=source, cfg=cfg)
    path = Path(report) if report else ws / "reports" / f"drift-{version.name}-v{version.version}.html"
    return DriftRun(result, write_drift_report(path, result))
