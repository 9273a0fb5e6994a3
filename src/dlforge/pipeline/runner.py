"""One run, start to end: data -> model -> fit -> evaluate -> register -> report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlforge.config import RunConfig, load_config
from dlforge.config.load import default_config_path
from dlforge.data.prepare import PreparedData, prepare_data
from dlforge.models import build_model
from dlforge.pipeline.evaluate_model import Evaluation, evaluate_trained
from dlforge.pipeline.register import register_trained
from dlforge.pipeline.report_stage import write_run_report
from dlforge.registry import Store, current_code_version
from dlforge.runtime import configure_process, seed_everything, select_device
from dlforge.train.loop import fit
from dlforge.workspace import resolve_workspace


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced. `headline` lists the test metrics that matter most first."""

    run_id: str
    name: str
    workspace: Path
    report_path: Path
    model_ref: str | None
    bundle_path: Path | None
    headline: list[tuple[str, float]]
    test_metrics: dict[str, Any]
    baseline: dict[str, Any] | None
    diagnosis: dict[str, Any]
    history: list[dict[str, float]] = field(repr=False)

    @property
    def baseline_headline(self) -> dict[str, float]:
        return dict((self.baseline or {}).get("metrics", {}).get("headline", []))


def run(config: RunConfig | dict | str | Path | None = None, *, workspace: str | Path | None = None,
        progress: bool = True) -> RunResult:
    """Train, evaluate, register and report one model as `config` describes.

    Args:
        config: a RunConfig, a dict or YAML path of one, or None for the shipped default
            (digits with a small CNN).
        workspace: where the store and artifacts live; default $DLFORGE_WORKSPACE or
            ./dlforge-workspace.
        progress: show progress while training.

    Returns:
        The run's id, report path, registered model reference and test metrics.

    Raises:
        ConfigError, DataError: bad config or data, found before any training.

    Example:
        >>> result = dlforge.run({"train": {"epochs": 2}})  # doctest: +SKIP
        >>> result.model_ref
        'model@1'
    """
    cfg = load_config(default_config_path() if config is None else config)
    ws = resolve_workspace(workspace)
    configure_process(cfg.train.num_threads)
    seed_everything(cfg.seed)
    device = select_device(cfg.device)
    data = prepare_data(cfg)
    model = build_model(cfg.model, input_shape=data.preprocessor.output_shape,
                        num_outputs=data.task.num_outputs, vocab_size=data.preprocessor.vocab_size)
    store = Store.open(ws, cfg.registry.url)
    record = store.create_run(cfg.name, cfg.model_dump(mode="json"),
                              data.dataset.provenance.fingerprint, current_code_version(), cfg.seed)
    run_dir = ws / "artifacts" / "runs" / record.id
    try:
        return _train_and_publish(cfg, data, model, store, record.id, run_dir, device, progress)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        store.finish_run(record.id, status, error=f"{type(exc).__name__}: {exc}")
        raise


def _train_and_publish(cfg: RunConfig, data: PreparedData, model, store: Store, run_id: str,
                       run_dir: Path, device, progress: bool) -> RunResult:
    clock = Stopwatch()
    with clock("train"):
        trained = fit(model, data.loaders, cfg.train, data.task, checkpoint_dir=run_dir / "checkpoints",
                      seed=cfg.seed, device=device, progress=progress)
    with clock("evaluate"):
        evaluation: Evaluation = evaluate_trained(trained.model, data, cfg, device, trained.history)
    with clock("register"):
        version = register_trained(store, cfg, run_id, trained.model, data, evaluation,
                                   staging=run_dir / "bundle") if cfg.registry.enabled else None
    report = write_run_report(run_dir / "report.html", cfg, run_id, data, trained, evaluation,
                              clock.seconds)
    store.finish_run(run_id, "completed", history=trained.history,
                     metrics=evaluation.summary_metrics(), report_path=str(report))
    return RunResult(
        run_id=run_id, name=cfg.name, workspace=run_dir.parents[2], report_path=report,
        model_ref=f"{version.name}@{version.version}" if version else None,
        bundle_path=Path(version.bundle_path) if version else None,
        headline=[tuple(p) for p in evaluation.test_metrics["headline"]],
        test_metrics=evaluation.test_metrics, baseline=evaluation.baseline,
        diagnosis=evaluation.diagnosis.to_dict(), history=trained.history,
    )


class Stopwatch:
    """Seconds spent per named stage: ``with clock("train"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str):
        import contextlib
        import time

        @contextlib.contextmanager
        def timed():
            start = time.perf_counter()
            try:
                yield
            finally:
                self.seconds[stage] = round(time.perf_counter() - start, 3)

        return timed()
