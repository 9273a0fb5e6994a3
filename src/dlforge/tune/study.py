"""The Optuna study of a search: where it lives (the store's database), its sampler and pruner.

The study is named after the config (`tune.study_names`), so that `dlforge tune --worker`
processes given the same config join one study, and a search started again after a kill
continues the same study; a study named the old way (a hash of every key, defaults included)
is still found and continued.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dlforge.config.schema import RunConfig
from dlforge.errors import ConfigError, StoreError
from dlforge.registry.engine import BUSY_TIMEOUT_S, mask_url
from dlforge.registry.retry import retrying
from dlforge.train.monitor import resolve_mode
from dlforge.tune.study_names import earlier_study_names, study_name

if TYPE_CHECKING:
    import optuna

# Median pruning compares a trial with the complete ones, so it waits for a few (Optuna's default
# of 5 would leave half of a 10-trial budget unpruned: one per 5 trials of the budget, 2 to 5),
# and it lets each trial warm up: the first epochs say little about where a trial ends, the
# more so the longer it trains (one epoch in ten, at least one).
MEDIAN_STARTUP_TRIALS = (2, 5)
MEDIAN_WARMUP_SHARE = 10

log = logging.getLogger(__name__)


def direction(metric: str) -> str:
    """`maximize` for accuracy-like metrics (see `resolve_mode`), else `minimize`."""
    return "maximize" if resolve_mode(metric, "auto") == "max" else "minimize"


def build_sampler(cfg: RunConfig, seed: int) -> optuna.samplers.BaseSampler:
    """Random (the default), grid or TPE, seeded by the run's seed."""
    import optuna

    tune = cfg.tune
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if tune.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return _grid_sampler_class()(grid(cfg), seed=seed)


def _grid_sampler_class() -> type:
    import optuna

    class AskTellGridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler without its `study.stop()` once the grid is covered: that
        only works inside `study.optimize`, and `search` already stops at the grid's size."""

        def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
            pass

    return AskTellGridSampler


def grid(cfg: RunConfig) -> dict[str, list[Any]]:
    """The values grid search tries per key: each `choice`, or every integer of an `int` range
    (the schema allows nothing else with `tune.sampler: grid`)."""
    from dlforge.tune.space import distributions

    return {key: list(dist.choices) if cfg.tune.space[key].choice is not None
            else list(range(dist.low, dist.high + 1))
            for key, dist in distributions(cfg).items()}


def grid_size(cfg: RunConfig) -> int:
    """How many distinct trials grid search has."""
    size = 1
    for values in grid(cfg).values():
        size *= len(values)
    return size


def build_pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    """No pruning, the median rule, or successive halving over epochs (Hyperband).

    The median rule starts after `n_trials // 5` complete trials (2 to 5) and prunes from
    epoch `epochs // 10` (at least 1, counting from 0) on.
    """
    import optuna

    if cfg.tune.pruner == "median":
        low, high = MEDIAN_STARTUP_TRIALS
        return optuna.pruners.MedianPruner(
            n_startup_trials=min(high, max(low, cfg.tune.n_trials // 5)),
            n_warmup_steps=max(1, cfg.train.epochs // MEDIAN_WARMUP_SHARE))
    if cfg.tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.train.epochs)
    return optuna.pruners.NopPruner()


def open_study(cfg: RunConfig, url: str, *, data_fingerprint: str | None) -> optuna.Study:
    """Create the config's study in the database at `url`, or load it when it exists (under
    `study_name`, or under one of `earlier_study_names` when only that one exists).

    Args:
        cfg: the config, `auto` resolved.
        url: the study database (SQLAlchemy URL).
        data_fingerprint: the data's `Provenance.fingerprint`, named in the study's name in
            place of `data.path` (see `study_name`); None when it lists no file checksums
            (builtin data, a streamed image folder). Required: left out, a config with a
            `data.path` would open another study than the search's.

    Raises:
        StoreError: the database does not answer or cannot hold a study (one line).
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(logging.WARNING)
    try:
        storage = _storage(url)
        return optuna.create_study(
            storage=storage, study_name=_name_in(storage, cfg, data_fingerprint), direction=direction(cfg.tune.metric),
            sampler=build_sampler(cfg, cfg.seed), pruner=build_pruner(cfg), load_if_exists=True)
    except (SQLAlchemyError, ImportError, ValueError, RuntimeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StoreError(f"tune.storage: cannot open the study database {mask_url(url)}: {first}; "
                         f"check that the server is running and the URL is right") from None


def _name_in(storage: optuna.storages.BaseStorage, cfg: RunConfig,
             data_fingerprint: str | None) -> str:
    """`study_name(cfg, data_fingerprint)`, unless only a study under an earlier name exists:
    that one goes on (and the log says so), so a search started before the names changed
    still resumes."""
    name = study_name(cfg, data_fingerprint)
    if _holds(storage, name):
        return name
    for earlier, how in earlier_study_names(cfg, data_fingerprint):
        if _holds(storage, earlier):
            log.warning("tune: continuing the study %s, named by an earlier dlforge (%s); a new "
                        "search of this config would be named %s", earlier, how, name)
            return earlier
    return name


def _holds(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _storage(url: str, attempts: int = 5) -> optuna.storages.RDBStorage:
    """Optuna's storage on `url`. Workers started together on a fresh database race to create
    Optuna's tables; the losers see a unique or "already exists" error and find them next time."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = {"connect_args": {"timeout": BUSY_TIMEOUT_S}} if url.startswith("sqlite") else {}
    def create() -> optuna.storages.RDBStorage:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        if url.startswith("sqlite"):
            _commit_without_fsync(storage.engine)
        return storage

    return retrying(create, attempts=attempts, on=SQLAlchemyError, when=_raced, backoff_s=0.2)


def _raced(exc: BaseException) -> bool:
    """A lost race to create Optuna's tables, which the next attempt finds made."""
    text = str(exc).lower()
    return "unique" in text or "already exists" in text or "duplicate" in text


def _commit_without_fsync(engine: Any) -> None:
    """Every epoch of every trial commits one reported value. SQLite's default in WAL mode
    (synchronous FULL) syncs the log to disk on each commit, about half of a report's 11 ms
    here; NORMAL syncs at checkpoints only. A power cut may lose the last few reports, never
    corrupt the file (SQLite's documented guarantee for WAL + NORMAL)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    engine.dispose()  # the connection Optuna opened to create its tables predates the hook
