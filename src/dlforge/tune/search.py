"""The search: an Optuna study around the one fit loop.

The data is prepared once and reused by every trial. A trial builds the model from its
config and makes ONE call to `train.loop.fit` with a pruning callback; it is recorded as a run
(kind ``trial``) in the store with its config and history. Pruned and failed trials keep
their reason and the study goes on. Only the VALIDATION metric is ever seen here.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

from dlforge.candidate import TrainingPlan, train_candidate
from dlforge.config.auto import resolve_auto
from dlforge.config.schema import RunConfig
from dlforge.data.prepare import PreparedData
from dlforge.errors import ConfigError, DlforgeError
from dlforge.registry.engine import public_config
from dlforge.registry.liveness import SEARCH_RESUME
from dlforge.registry.records import current_code_version
from dlforge.train.epoch_metrics import metric_name
from dlforge.tune.pruning import PruningCallback
from dlforge.tune.results import SearchOutcome, summarize
from dlforge.tune.retrain import trial_record
from dlforge.tune.space import apply_params, distributions, trial_values
from dlforge.tune.study import build_sampler, grid_size, open_study

if TYPE_CHECKING:
    import optuna

    from dlforge.registry import Store

# Trials that use up the budget; a FAIL without a reason was interrupted and is run again.
_COUNTED = ("COMPLETE", "PRUNED", "RUNNING", "WAITING")


def check_search(cfg: RunConfig, task_kind: str) -> None:
    """What about `tune:` depends on the data (the schema checked the rest when it loaded).

    Raises:
        ConfigError: `tune.metric` is not a validation metric this task logs.
    """
    allowed = ("val_loss", f"val_{metric_name(task_kind)}")
    if cfg.tune.metric not in allowed:
        raise ConfigError(f"tune.metric: the search optimizes a validation metric of this "
                          f"{task_kind} task: {' or '.join(allowed)} (got {cfg.tune.metric!r})")


def search(cfg: RunConfig, data: PreparedData, store: Store, *, device: Any = "cpu",
           progress: bool = True, resume: bool = False, worker: bool = False) -> SearchOutcome:
    """Run trials of the config's study until its budget is used, then return the trials.

    Several processes may call this with the same config and a shared store: they share one
    study and together run `tune.n_trials` trials (grid search: at most the grid's size).

    Args:
        cfg: a config with a `tune` section.
        data: prepared once, reused by every trial.
        store: trials are recorded here as runs; the study lives in its database unless
            `tune.storage` names another.
        device: where trials train.
        progress: one line per finished trial on stderr (state, value, best so far).
        resume: close trials a killed process left running (as failed, not counted) so that
            they are run again.
        worker: one of several processes sharing the study; its sampler draws its own values.

    Returns:
        SearchOutcome with every trial and the best by the validation metric.

    Raises:
        ConfigError: a bad `tune` section, before any trial.
        StoreError: the study's database does not answer, before any trial.
    """
    cfg = resolve_auto(cfg, data.facts)  # `auto` keys: as the pipeline resolves them
    check_search(cfg, data.task.kind)
    study = open_study(cfg, cfg.tune.storage or store.sqlalchemy_url,
                       data_fingerprint=data_identity(data))
    if resume:
        _close_interrupted(study, store)
    budget = min(cfg.tune.n_trials, grid_size(cfg)) if cfg.tune.sampler == "grid" else cfg.tune.n_trials
    start = time.monotonic()
    code_version = current_code_version()  # asks git: once per search, not once per trial
    while True:
        trials = study.get_trials(deepcopy=False)  # one read per trial: it is not free
        if _used(trials) >= budget or (cfg.tune.timeout_s is not None
                                       and time.monotonic() - start >= cfg.tune.timeout_s):
            break
        if cfg.tune.sampler != "grid":  # the grid's order is one permutation for every process
            # Seeded per trial, not per process: a resumed search draws new values, not trial 0's.
            study.sampler = build_sampler(cfg, trial_seed(cfg.seed, len(trials), worker))
        if not _run_trial(study, cfg, data, store, device, budget, trials, code_version,
                          worker=worker):
            break
        if progress:
            print(progress_line(collect(study, cfg), budget), file=sys.stderr, flush=True)
    result = collect(study, cfg)
    result.seconds = round(time.monotonic() - start, 3)
    return result


def trial_seed(seed: int, n_trials_so_far: int, worker: bool) -> int:
    """The sampler's seed for the next trial: reproducible, unless several workers share the
    study (they would otherwise all draw the same values)."""
    salt = os.getpid() if worker else 0
    return (seed * 1_000_003 + n_trials_so_far * 7919 + salt) % 2**32


def _used(trials: list[optuna.trial.FrozenTrial], before: int | None = None) -> int:
    """Trials that count against the budget (only those numbered below `before`, if given)."""
    return sum(1 for t in trials if (before is None or t.number < before)
               and "surplus" not in t.user_attrs
               and (t.state.name in _COUNTED or (t.state.name == "FAIL" and "reason" in t.user_attrs)))


def _close_interrupted(study: optuna.Study, store: Store) -> None:
    """Trials left RUNNING by a killed process: FAIL without a reason, so they are not counted."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        if "run_id" in t.user_attrs:
            store.finish_run(t.user_attrs["run_id"], "interrupted",
                             error="the search was interrupted during this trial")


def _ask(study: optuna.Study, cfg: RunConfig, budget: int,
         known: list[optuna.trial.FrozenTrial]) -> optuna.Trial | None:
    """A new trial, or None when other workers took the rest of the budget between the check
    and the ask: trials are numbered in creation order, so the trial is surplus exactly when
    `budget` counted trials are numbered below it. A surplus trial is closed, never run.

    `known` are the trials read before asking; the study is read again only when trials
    created since then (the gap in numbers) could have used the budget.
    """
    from optuna.trial import TrialState

    trial = study.ask(distributions(cfg))
    if _used(known) + (trial.number - len(known)) < budget:
        return trial
    if _used(study.get_trials(deepcopy=False), before=trial.number) < budget:
        return trial
    trial.set_user_attr("surplus", True)
    study.tell(trial, state=TrialState.FAIL)
    return None


def _run_trial(study: optuna.Study, cfg: RunConfig, data: PreparedData, store: Store,
               device: Any, budget: int, known: list[optuna.trial.FrozenTrial],
               code_version: str, *, worker: bool = False) -> bool:
    """Ask for a trial, train it with one call to `fit`, tell the study how it ended.

    Returns False when the budget was already used (see `_ask`).
    """
    import optuna
    from optuna.trial import TrialState

    trial = _ask(study, cfg, budget, known)
    if trial is None:
        return False
    values = trial_values(cfg, trial.params)
    run_id = None
    pruning = PruningCallback(trial, cfg.tune.metric)
    try:
        tcfg = apply_params(cfg, values)
        run_id = store.create_run(f"{cfg.name}-trial-{trial.number}", public_config(tcfg),
                                  data.dataset.provenance.fingerprint, code_version, cfg.seed,
                                  kind="trial").id
        trial.set_user_attr("run_id", run_id)
        candidate = train_candidate(TrainingPlan(tcfg, data, callbacks=(pruning,)), device=device)
        value = float(candidate.best_row(cfg.tune.metric)[cfg.tune.metric])
    except optuna.TrialPruned as exc:
        _record(store, run_id, trial, "pruned", str(exc), pruning.history, cfg.tune.metric)
        study.tell(trial, state=TrialState.PRUNED)
    except KeyboardInterrupt:
        if run_id is not None:
            store.finish_run(run_id, "interrupted", history=pruning.history,
                             error="the search was interrupted during this trial")
        study.tell(trial, state=TrialState.FAIL)  # no reason: --resume runs it again
        raise KeyboardInterrupt(_interrupted(trial.number, worker)) from None
    except (DlforgeError, RuntimeError, ValueError) as exc:  # a trial's failure, not the study's
        _record(store, run_id, trial, "failed", f"{type(exc).__name__}: {exc}", pruning.history,
                cfg.tune.metric)
        study.tell(trial, state=TrialState.FAIL)
    else:
        store.finish_run(run_id, "completed", history=candidate.history,
                         metrics={cfg.tune.metric: value, "trial": trial.number,
                                  "tune_state": "complete", "params": values,
                                  **trial_record(candidate)})
        study.tell(trial, value)
    return True


def _interrupted(number: int, worker: bool) -> str:
    """What to do after Ctrl-C in trial `number`. `--resume` fails every running trial, those
    of live workers too, so a worker is told to restart as a worker.

    Example:
        >>> _interrupted(3, worker=True).split("; ")[1]
        'restart this worker with `dlforge tune CONFIG --worker` (add --resume only when no other worker is running)'
    """
    if worker:
        return (f"the worker stopped during trial {number}; restart this worker with `dlforge "
                f"tune CONFIG --worker` (add --resume only when no other worker is running)")
    return f"the search stopped during trial {number}; continue it with `{SEARCH_RESUME}`"


def _record(store: Store, run_id: str | None, trial: optuna.Trial, state: str, reason: str,
            history: list[dict[str, float]], metric: str) -> None:
    """A pruned or failed trial keeps its reason, in the study and on its run."""
    trial.set_user_attr("reason", reason)
    if history:
        # the last row that logged it: under train.val_every not every epoch does
        last = next((row[metric] for row in reversed(history) if metric in row), float("nan"))
        trial.set_user_attr("last_value", float(last))
    if run_id is not None:
        status = "completed" if state == "pruned" else "failed"
        store.finish_run(run_id, status, history=history, error=reason,
                         metrics={"trial": trial.number, "tune_state": state})


def collect(study: optuna.Study, cfg: RunConfig) -> SearchOutcome:
    """The study's trials as summaries, and the best COMPLETE trial with its config."""
    trials = [summarize(t, trial_values(cfg, t.params)) for t in study.get_trials(deepcopy=False)
              if "surplus" not in t.user_attrs]
    complete = [t for t in trials if t.state == "complete"]
    best = None
    if complete:
        pick = max if study.direction.name == "MAXIMIZE" else min
        best = pick(complete, key=lambda t: (t.value, -t.number) if pick is max else (t.value, t.number))
    best_config = apply_params(cfg, best.params) if best else None
    return SearchOutcome("search", cfg.tune.metric, study.direction.name.lower(), trials, best,
                         best_config, study_name=study.study_name, study=study)


def progress_line(result: SearchOutcome, budget: int) -> str:
    """`trial 3 pruned | 4/10 done: 2 complete, 1 pruned, 1 failed | best val_loss 0.31 (trial 1)`."""
    last = max(result.trials, key=lambda t: t.number)
    c = result.counts
    done = c["complete"] + c["pruned"] + c["failed"]
    best = (f"best {result.metric} {result.best.value:.4g} (trial {result.best.number})"
            if result.best else "no trial complete yet")
    return (f"trial {last.number} {last.state} | {done}/{budget} done: {c['complete']} complete, "
            f"{c['pruned']} pruned, {c['failed']} failed | {best}")


def data_identity(data: PreparedData) -> str | None:
    """The data's fingerprint for the study's name, when it covers the files' contents (a
    streamed image folder's does not list its files: its `data.path` names it instead)."""
    provenance = data.dataset.provenance
    return provenance.fingerprint if provenance.files else None
