"""One run, start to end: data -> model -> fit -> evaluate -> report -> register."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlforge.config import RunConfig, load_config
from dlforge.config.load import default_config_path
from dlforge.data.prepare import PreparedData, make_loaders, prepare_data
from dlforge.errors import ConfigError, NotFoundError
from dlforge.models.for_data import build_for_data
from dlforge.pipeline.evaluate_model import Evaluation, evaluate_trained
from dlforge.pipeline.register import register_trained
from dlforge.pipeline.report_stage import write_run_report
from dlforge.registry import Store, current_code_version
from dlforge.registry.engine import public_config
from dlforge.runtime import configure_process, seed_everything, select_device
from dlforge.train.loop import fit, preflight
from dlforge.train.progress_file import PROGRESS_FILE, ProgressFile
from dlforge.tune import SearchResult, check_space, search
from dlforge.tune.ladder import LadderResult, climb
from dlforge.tune.retrain import UNION, Retraining, plan_retraining, union_data
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
        progress: bool = True, resume: str | None = None, store_url: str | None = None,
        search_resume: bool = False) -> RunResult:
    """Train, evaluate, report and register one model as `config` describes.

    Args:
        config: a RunConfig, a dict or YAML path of one, or None for the shipped default
            (digits with a small CNN). Ignored with `resume`, which reuses the run's config.
        workspace: where the store and artifacts live; default $DLFORGE_WORKSPACE or
            ./dlforge-workspace.
        progress: show progress while training.
        resume: id of an interrupted or failed run to continue from its last checkpoint; it
            ends with the same weights as an uninterrupted run would have.
        store_url: the store's SQLAlchemy URL when it is not in the config (`registry.url`).
        search_resume: with a `tune` section, first close trials a killed search left running
            so that they are run again (`dlforge tune --resume`).

    Returns:
        The run's id, report path, registered model reference and test metrics.

    Raises:
        ConfigError, DataError: bad config or data, found before any training.
        NotFoundError: `resume` names no run, or the run left no checkpoint.

    Example:
        >>> result = dlforge.run({"train": {"epochs": 2}})  # doctest: +SKIP
        >>> result.model_ref
        'model@1'
    """
    ws = resolve_workspace(workspace)
    cfg = None if resume else load_config(default_config_path() if config is None else config)
    with Store.open(ws, (cfg.registry.url if cfg else None) or store_url) as store:
        record, checkpoint = None, None
        if resume is not None:
            record = store.get_run(resume)
            cfg, checkpoint = _stored_config(record, store_url), _last_checkpoint(ws, record.id)
        refuse_unsupported(cfg)
        configure_process(cfg.train.num_threads)
        seed_everything(cfg.seed)
        device = select_device(cfg.device)
        data = prepare_data(cfg)
        model = _build(cfg, data)
        if record is None:  # config mistakes that need the data's size: before any run is recorded
            preflight(model, data.loaders, cfg.train, data.task, device=device)
        searched, retrained = None, None
        if cfg.tune is not None and record is None:
            cfg, data, searched, retrained = _search_and_choose(cfg, data, store, device, progress,
                                                                search_resume)
            seed_everything(cfg.seed)
            model = _build(cfg, data)
        if record is None:
            record = store.create_run(cfg.name, public_config(cfg), data.dataset.provenance.fingerprint,
                                      current_code_version(), cfg.seed)
        stage = _Stages(cfg, data, store, record.id, ws / "artifacts" / "runs" / record.id, device,
                        searched, retrained)
        try:
            return stage.train_and_publish(model, progress, checkpoint)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.finish_run(record.id, status, error=f"{type(exc).__name__}: {exc}")
            raise


def _search_and_choose(cfg: RunConfig, data: PreparedData, store: Store, device: Any,
                       progress: bool, search_resume: bool):
    """Search (or climb the capacity ladder), then the best config and the data to retrain it on:
    the train split exactly as its trial ran, or train + validation (`tune.retrain_on`)."""
    searched = climb(cfg, data, store, device=device, progress=progress) \
        if cfg.tune.strategy == "capacity_ladder" else \
        search(cfg, data, store, device=device, progress=progress, resume=search_resume)
    best = searched.require_best()
    if best.tune.retrain_on == UNION:
        retrained = plan_retraining(best, searched, store, data)
        return retrained.config, union_data(retrained.config, data), searched, retrained
    data.loaders = make_loaders(best, data.dataset, data.tensors, data.balanced, data.preprocessor)
    return best, data, searched, None


def _build(cfg: RunConfig, data: PreparedData):
    return build_for_data(cfg.model, data)


def refuse_unsupported(cfg: RunConfig) -> None:
    """Config that validates but that `run` cannot honour yet fails here, before any work."""
    if cfg.tune is not None:
        check_space(cfg)
    if cfg.model.type == "autoencoder":
        raise ConfigError("model.type: autoencoder reconstructs its input (anomaly detection), which "
                          "`dlforge run` does not do yet; choose a classifier or regressor such as "
                          "mlp or basic_cnn")


def _stored_config(record, store_url: str | None) -> RunConfig:
    """The config a run was started with; the store URL was masked when saved, so take it again."""
    raw = dict(record.config)
    raw["registry"] = {**raw.get("registry", {}), "url": store_url}
    cfg = load_config(raw)
    if cfg.tune is not None and cfg.tune.retrain_on == UNION:
        raise ConfigError(f"resume: run {record.id} retrained a search's best config on "
                          f"train+validation, which a resume cannot rebuild; start it again with "
                          f"`dlforge run CONFIG`: the search's trials are kept and not run again")
    return cfg


def _last_checkpoint(workspace: Path, run_id: str) -> Path:
    path = workspace / "artifacts" / "runs" / run_id / "checkpoints" / "last.pt"
    if not path.is_file():
        raise NotFoundError(f"run {run_id} left no checkpoint to resume from ({path}); "
                            f"start a new run with `dlforge run CONFIG`")
    return path


@dataclass
class _Stages:
    """The stages after data preparation, sharing one run's context."""

    cfg: RunConfig
    data: PreparedData
    store: Store
    run_id: str
    run_dir: Path
    device: Any
    searched: SearchResult | LadderResult | None = None
    retrained: Retraining | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def train_and_publish(self, model, progress: bool, resume_from: Path | None) -> RunResult:
        cfg, data = self.cfg, self.data
        if self.searched is not None:
            self.seconds["search"] = self.searched.seconds
        # retrained on train + validation: stop after the best trial's epochs of its schedule
        stop = {"callbacks": [*(self.retrained.callbacks() if self.retrained else []), ProgressFile(self.run_dir / PROGRESS_FILE)]}  # the live page reads it
        with self._timed("train"):
            trained = fit(model, data.loaders, cfg.train, data.task, seed=cfg.seed, device=self.device,
                          checkpoint_dir=self.run_dir / "checkpoints", resume_from=resume_from,
                          progress=progress, **stop)
        with self._timed("evaluate"):
            es = cfg.train.early_stopping
            restored = trained.best_epoch if es is not None and es.restore_best else None
            evaluation: Evaluation = evaluate_trained(trained.model, data, cfg, self.device,
                                                      trained.history, restored, self.retrained)
            evaluation.model_info["training_precision"] = trained.precision
        report = write_run_report(self.run_dir / "report.html", cfg, self.run_id, data, trained,
                                  evaluation, self.seconds, public_config(cfg),
                                  self.searched.plots() if self.searched else ())
        version = register_trained(self.store, cfg, self.run_id, trained.model, data, evaluation,
                                   staging=self.run_dir / "bundle") if cfg.registry.enabled else None
        self.store.finish_run(self.run_id, "completed", history=trained.history,
                              metrics=_with_search(evaluation.summary_metrics(), self.searched),
                              report_path=str(report))
        return RunResult(
            run_id=self.run_id, name=cfg.name, workspace=self.run_dir.parents[2], report_path=report,
            model_ref=f"{version.name}@{version.version}" if version else None,
            bundle_path=Path(version.bundle_path) if version else None,
            headline=[tuple(p) for p in evaluation.test_metrics["headline"]],
            test_metrics=evaluation.test_metrics, baseline=evaluation.baseline,
            diagnosis=evaluation.diagnosis.to_dict(), history=trained.history,
        )

    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - start, 3)


def _with_search(metrics: dict[str, Any],
                 searched: SearchResult | LadderResult | None) -> dict[str, Any]:
    """The run's metrics plus, after a search, its summary (study, counts, best trial)."""
    return metrics if searched is None else {**metrics, "tune": searched.to_dict()}
