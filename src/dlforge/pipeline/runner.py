"""One run, start to end: prepare -> search? -> candidate -> test once -> report -> register."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from dlforge.candidate import TrainingPlan, check_plan, steps_per_epoch, train_candidate
from dlforge.config import RunConfig, load_config
from dlforge.config.auto import resolve_auto
from dlforge.config.auto_warmup import WARMUP, fit_warmup
from dlforge.config.load import default_config_path, from_defaults
from dlforge.config.model_schema import GAN_TYPE
from dlforge.config.rules import UNION
from dlforge.data.prepare import PreparedData, prepare_data
from dlforge.errors import CompletedRunError, ConfigError, DlforgeError, NotFoundError, first_line
from dlforge.lifecycle.promote import promote
from dlforge.lifecycle.transfer import transfer_plan
from dlforge.lifecycle.update import update_plan
from dlforge.pipeline.evaluate_model import evaluate_candidate
from dlforge.pipeline.gan_run import evaluate_gan, step_for, train_gan, write_gan_report
from dlforge.pipeline.hold_signals import holding_stop_signals
from dlforge.pipeline.recovery import check_resumable, claim_for_resume, heartbeat, unfinished_twin
from dlforge.pipeline.register import register_trained
from dlforge.pipeline.report_stage import write_run_report
from dlforge.pipeline.review_stage import margin_tracker, tracked_findings
from dlforge.registry import Run, Store, current_code_version
from dlforge.registry.engine import public_config, store_url_for
from dlforge.registry.liveness import resume_command
from dlforge.registry.store import DB_FILE
from dlforge.runtime import peak_rss_mb, setup_process
from dlforge.train.distributed import Stopped, note_run, share_config
from dlforge.train.progress_file import PROGRESS_FILE, ProgressFile
from dlforge.tune import SearchOutcome, search
from dlforge.tune.ladder import climb
from dlforge.tune.plots import outcome_plots
from dlforge.tune.retrain import plan_retraining
from dlforge.workspace import resolve_workspace

log = logging.getLogger(__name__)

PEAK_RSS = "peak RSS (MB)"  # a row of the run's timings, in MB, not seconds


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced. `headline` lists the test metrics that matter most first;
    `warnings` are the data validation's (e.g. anomalies left out of the training split)."""

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
    warnings: list[str] = field(default_factory=list)
    promotion: dict[str, Any] | None = None  # the gate's decision (evaluate.gate.promote)

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
        resume: id of an interrupted or failed run to continue from its last checkpoint (or
            from the start if it died before writing one); it ends with the same weights as an
            uninterrupted run would have, and with one registered version however it died.
        store_url: the store's SQLAlchemy URL when it is not in the config (`registry.url`).
        search_resume: with a `tune` section, first close trials a killed search left running
            so that they are run again (`dlforge tune --resume`).

    Returns:
        The run's id, report path, registered model reference and test metrics.

    Raises:
        ConfigError, DataError: bad config or data, found before any training.
        ConfigError: `resume` names a run that completed or whose process is still alive.
        NotFoundError: `resume` names no run.

    Example:
        >>> result = dlforge.run({"train": {"epochs": 2}})  # doctest: +SKIP
        >>> result.model_ref  # doctest: +SKIP
        'model@1'
    """
    ws = resolve_workspace(workspace)
    cfg = None if resume else load_config(default_config_path() if config is None else config)
    with Store.open(ws, store_url_for(cfg, store_url)) as store:
        record, checkpoint = None, None
        if resume is not None:
            record = check_resumable(store, store.get_run(resume))
            cfg, checkpoint = _stored_config(record), _last_checkpoint(ws, record.id)
            record = claim_for_resume(store, record.id, ws / "artifacts" / "runs" / record.id)
        device = setup_process(cfg.train.num_threads, cfg.device)
        plan, parent = _first_plan(cfg, store, echo=progress)
        data, cfg, searched = plan.data, plan.config, None
        if record is None:  # config mistakes that need the data's size: before any run is recorded
            check_plan(plan, device=device)
            if cfg.tune is not None:
                searched = _search(cfg, data, store, device, progress, search_resume)
                plan = _plan_after(searched, store, data)
            record, checkpoint = _record_for(store, ws, plan, resumed_search=search_resume)
        note_run(record.id)  # the launcher's line for a killed rank names it (--nproc)
        stages = _Stages(store, record.id, ws, device, searched, parent_version=parent)
        try:
            with heartbeat(store, record.id):
                return stages.train_and_publish(plan, progress, checkpoint)
        except BaseException as exc:
            stop = exc
            if stages.completed is None:  # stopped before its result was recorded
                stop = _record_stop(store, record.id, exc)
            if stop is None:  # or just after: the completed write committed as the signal acted
                stop, stages.completed = exc, stages.outcome or f"run {record.id} completed"
            line = stages.completed or (f"run {record.id} stopped; resume it with "
                                        f"`{resume_command(record.id, 'run')}`")
            said = _saying(stop, line, completed=stages.completed is not None)
            if said is exc:
                raise
            raise said from (exc if isinstance(said, CompletedRunError) else None)


def _record_stop(store: Store, run_id: str, exc: BaseException) -> BaseException | None:
    """Record the run `interrupted` (a Ctrl-C) or `failed` (anything else) with its error.
    Returns what stopped the run: `exc`, or a Ctrl-C held during the write (it acts after it)
    carrying `exc`'s first line, which the CLI's generic "run it again" line lost; None,
    writing nothing, when the run is recorded completed already (a signal handled past the
    hold's bound, after the completed write's COMMIT but before the runner noted it)."""
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
    # a second Ctrl-C (torchrun forwards one) must not leave the run `running`; held
    # until the write ends, then dropped when the run is stopping already; the line says
    # why the process does not stop at once (a locked store may take BUSY_TIMEOUT_S)
    stopping = isinstance(exc, (KeyboardInterrupt, Stopped))
    completed, stop = False, exc
    try:
        with holding_stop_signals(deliver=not stopping,
                                  line=f"recording the run as {status}; a moment\n"):
            completed = store.get_run(run_id).status == "completed"
            if not completed:
                store.finish_run(run_id, status, error=f"{type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        stop = exc if isinstance(exc, KeyboardInterrupt) else KeyboardInterrupt(first_line(exc))
    return None if completed else stop


def _saying(exc: BaseException, line: str, completed: bool) -> BaseException:
    """A Ctrl-C or torchrun's SIGTERM to rank 0 (pipeline/distributed_run) saying `line`, what
    to do next (the CLI prints it); any other error as it is, or once the run is `completed`
    as a `CompletedRunError` saying `line` too: told only the error, a user trained again."""
    if isinstance(exc, KeyboardInterrupt):  # after what stopped the run, when it says something
        return KeyboardInterrupt(f"{exc}: {line}" if str(exc) else line)
    if isinstance(exc, Stopped):
        return Stopped(f"{exc}: {line}")
    if completed and isinstance(exc, Exception):
        what = str(exc) if isinstance(exc, DlforgeError) else f"{type(exc).__name__}: {exc}"
        return CompletedRunError(f"{what}: {line}")
    return exc


def _record_for(store: Store, workspace: Path, plan: TrainingPlan,
                resumed_search: bool) -> tuple[Run, Path | None]:
    """A new run of `plan`, or (`dlforge tune --resume`) the run a killed search left while
    training the same best config, claimed to continue from its last checkpoint."""
    cfg, fingerprint = plan.config, plan.data.dataset.provenance.fingerprint
    twin = unfinished_twin(store, cfg.name, public_config(cfg), fingerprint) \
        if resumed_search and cfg.tune is not None and cfg.tune.retrain_on != UNION else None
    if twin is not None:
        log.warning("tune --resume: continuing run %s, which was training the best config when "
                    "the search was stopped", twin.id)
        return (claim_for_resume(store, twin.id, workspace / "artifacts" / "runs" / twin.id),
                _last_checkpoint(workspace, twin.id))
    return store.create_run(cfg.name, public_config(cfg), fingerprint, current_code_version(),
                            cfg.seed), None


def _first_plan(cfg: RunConfig, store: Store, echo: bool) -> tuple[TrainingPlan, int | None]:
    """The plan before any search, its `auto` keys filled in for the data (the run records
    the resolved config), and the version it descends from: a model trained from scratch,
    from `transfer.source` (`dlforge finetune`), or updated from `update.source`."""
    defaulted = from_defaults(cfg, WARMUP)  # before `auto` rebuilds the config
    if cfg.update.source is None and cfg.transfer.source is None:
        data = prepare_data(cfg)
        cfg = resolve_auto(cfg, data.facts, echo=echo)
        return _fitted(TrainingPlan(cfg, data, step=step_for(cfg)), defaulted, echo), None
    if cfg.update.source is not None:  # `dlforge update`: a version of the same model
        update = update_plan(cfg, store)
        plan, parent = update.plan, update.source.version
    else:
        transfer = transfer_plan(cfg, store, cfg.registry.model_name or cfg.name)
        plan, parent = transfer.plan, transfer.parent_version
    resolved = resolve_auto(plan.config, plan.data.facts, echo=echo)
    return _fitted(replace(plan, config=resolved), defaulted, echo), parent


def _fitted(plan: TrainingPlan, defaulted: bool, echo: bool) -> TrainingPlan:
    """`plan` with the default config's warm-up fitted to a run too short for it, counted in
    the steps this process trains (`--nproc N`: a rank's share of the batches)."""
    if not defaulted:
        return plan
    cfg = fit_warmup(plan.config, max(steps_per_epoch(plan), 1), defaulted=True, echo=echo)
    return replace(plan, config=cfg)


def _search(cfg: RunConfig, data: PreparedData, store: Store, device: torch.device,
            progress: bool, search_resume: bool) -> SearchOutcome:
    """The search, or the capacity ladder, over trials trained on the train split."""
    if cfg.tune.strategy == "capacity_ladder":
        return climb(cfg, data, store, device=device, progress=progress)
    return search(cfg, data, store, device=device, progress=progress, resume=search_resume)


def _plan_after(searched: SearchOutcome, store: Store, data: PreparedData) -> TrainingPlan:
    """The best config, trained as its trial was (on the train split), or on train +
    validation (`tune.retrain_on`)."""
    best = searched.require_best()
    if best.tune.retrain_on == UNION:
        return plan_retraining(best, searched, store, data).plan(data)
    return TrainingPlan(best, data)


def _promote(store: Store, version) -> dict[str, Any]:
    """Put the new version through its config's gate; the run is complete and registered
    whatever the gate decides, so a gate error is reported, not raised."""
    try:
        return promote(store, version.name, version.version).to_dict()
    except DlforgeError as exc:
        return {"passed": False, "error": str(exc)}


def resumed_config(run_id: str, *, workspace: str | Path | None = None,
                   store_url: str | None = None) -> RunConfig:
    """The config `dlforge run --resume RUN_ID` would continue with (read before processes start).
    It only reads: a workspace without a store is not created.

    Raises:
        NotFoundError: no such run, or no store in the workspace (and no `store_url`).
        ConfigError: a run a resume cannot rebuild.
    """
    ws = resolve_workspace(workspace, create=False)
    if store_url is None and not (ws / DB_FILE).is_file():
        raise NotFoundError(f"--resume: no run {run_id!r}: the workspace {ws} has no store "
                            f"({DB_FILE}); pass the run's workspace (-w) or its --store-url")
    with Store.open(ws, store_url) as store:
        return _stored_config(store.get_run(run_id))


def _stored_config(record) -> RunConfig:
    """The config a run was started with. Its store URL was masked when saved: the run is
    resumed in the store it was found in."""
    raw = dict(record.config)
    raw["registry"] = {**raw.get("registry", {}), "url": None}
    cfg = load_config(raw)
    if cfg.tune is not None and cfg.tune.retrain_on == UNION:
        raise ConfigError(f"resume: run {record.id} retrained a search's best config on "
                          f"train+validation, which a resume cannot rebuild; start it again with "
                          f"`dlforge run CONFIG`: the search's trials are kept and not run again")
    return cfg


def _last_checkpoint(workspace: Path, run_id: str) -> Path | None:
    """The run's last checkpoint; None (train from the start) if it died before writing one."""
    path = workspace / "artifacts" / "runs" / run_id / "checkpoints" / "last.pt"
    return path if path.is_file() else None


@dataclass
class _Stages:
    """The stages after data preparation (and the search), sharing one run's context."""

    store: Store
    run_id: str
    workspace: Path
    device: torch.device
    searched: SearchOutcome | None = None
    parent_version: int | None = None  # lineage of a model trained from another version
    seconds: dict[str, float] = field(default_factory=dict)
    completed: str | None = None  # once the run is recorded completed: what a stop then says
    outcome: str | None = None  # what `completed` will say, known before the write

    @property
    def run_dir(self) -> Path:
        return self.workspace / "artifacts" / "runs" / self.run_id

    def train_and_publish(self, plan: TrainingPlan, progress: bool,
                          resume_from: Path | None) -> RunResult:
        cfg, data = plan.config, plan.data
        if cfg.model.type == GAN_TYPE:
            return self._publish_gan(plan, progress, resume_from)
        if self.searched is not None:
            self.seconds["search"] = self.searched.seconds
        # the dashboard's live page reads the progress file the run writes after each epoch;
        # the margin tracker (review.in_run) feeds the report's suspicious training samples
        tracker = margin_tracker(cfg, data)
        run_callbacks = (ProgressFile(self.run_dir / PROGRESS_FILE), *([tracker] if tracker else []))
        plan = replace(plan, callbacks=(*plan.callbacks, *run_callbacks))
        with self._timed("train"):
            share_config(cfg.model_dump(mode="json"))  # the other data-parallel ranks, if any
            candidate = train_candidate(plan, device=self.device, progress=progress,
                                        checkpoint_dir=self.run_dir / "checkpoints",
                                        resume_from=resume_from)
        self.seconds[PEAK_RSS] = peak_rss_mb()  # after training: data, model and optimizer
        with self._timed("evaluate"):
            evaluation = evaluate_candidate(candidate, data, self.device)
        report = write_run_report(self.run_dir / "report.html", cfg, self.run_id, data, candidate,
                                  evaluation, self.seconds, public_config(cfg),
                                  outcome_plots(self.searched) if self.searched else (),
                                  margins=tracked_findings(tracker, data))
        version = register_trained(self.store, cfg, self.run_id, candidate.model, data, evaluation,
                                   staging=self.run_dir / "bundle",
                                   parent_version=self.parent_version) if cfg.registry.enabled else None
        gate = cfg.evaluate.gate
        gated = version is not None and gate is not None and gate.promote
        self._complete(version, gated, history=candidate.history,
                       metrics=self._metrics(evaluation.summary_metrics()), report_path=str(report))
        result = self._result(cfg, candidate.history, evaluation.test_metrics, report, version,
                              baseline=evaluation.baseline,
                              diagnosis=evaluation.diagnosis.to_dict(),
                              warnings=data.validation.warnings)
        if gated:
            result = replace(result, promotion=_promote(self.store, version))
        return result

    def _publish_gan(self, plan: TrainingPlan, progress: bool,
                     resume_from: Path | None) -> RunResult:
        """A GAN run's stages (pipeline/gan_run.py): train, test once, report, register."""
        cfg, data = plan.config, plan.data
        with self._timed("train"):
            candidate, space = train_gan(plan, self.run_dir, device=self.device,
                                         progress=progress, resume_from=resume_from)
        with self._timed("evaluate"):
            evaluation = evaluate_gan(candidate, data, space)
        report = write_gan_report(self.run_dir / "report.html", cfg, self.run_id, candidate,
                                  evaluation, data, self.seconds, public_config(cfg))
        version = register_trained(self.store, cfg, self.run_id, candidate.model, data, evaluation,
                                   staging=self.run_dir / "bundle") if cfg.registry.enabled else None
        self._complete(version, False, history=candidate.history,
                       metrics=evaluation.summary_metrics(), report_path=str(report))
        return self._result(cfg, candidate.history, evaluation.test_metrics, report, version)

    def _complete(self, version, gated: bool, **fields: Any) -> None:
        """Record the run completed (a Ctrl-C during the write acts once it is written), and
        what a stop after it says: nothing to resume, the version registered, and (`gated`:
        the run puts it through its promotion gate next) how to run the gate by hand."""
        self.outcome = f"run {self.run_id} completed"
        if version is not None:
            self.outcome += f" and registered {version.name} v{version.version}"
        if gated:
            self.outcome += (f"; its promotion gate did not finish: promote it by hand with "
                             f"`dlforge promote {version.name} --candidate {version.version}`")
        with holding_stop_signals():
            self.store.finish_run(self.run_id, "completed", **fields)
            self.completed = self.outcome

    def _result(self, cfg: RunConfig, history: list[dict[str, float]], test_metrics: dict[str, Any],
                report: Path, version, *, baseline: dict[str, Any] | None = None,
                diagnosis: dict[str, Any] | None = None, warnings: list[str] = ()) -> RunResult:
        """What a finished run gives back (a GAN has no baseline and no diagnosis)."""
        return RunResult(
            run_id=self.run_id, name=cfg.name, workspace=self.workspace, report_path=report,
            model_ref=f"{version.name}@{version.version}" if version else None,
            bundle_path=Path(version.bundle_path) if version else None,
            headline=[tuple(p) for p in test_metrics["headline"]], test_metrics=test_metrics,
            baseline=baseline, diagnosis=diagnosis or {}, history=history, warnings=list(warnings),
        )

    def _metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The run's metrics plus, after a search, its summary (study, counts, best trial)."""
        return metrics if self.searched is None else {**metrics, "tune": self.searched.to_dict()}

    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(time.perf_counter() - start, 3)
