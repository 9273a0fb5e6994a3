"""One search process without the final training: what `dlforge tune --worker` runs."""

from __future__ import annotations

from pathlib import Path

from dlforge.config.auto import resolve_auto
from dlforge.config.schema import RunConfig
from dlforge.data.prepare import prepare_data
from dlforge.registry import Store
from dlforge.registry.engine import store_url_for
from dlforge.runtime import setup_process
from dlforge.tune.results import SearchOutcome
from dlforge.tune.search import search
from dlforge.workspace import resolve_workspace


def run_worker(cfg: RunConfig, *, workspace: str | Path | None = None, store_url: str | None = None,
               progress: bool = True, resume: bool = False) -> SearchOutcome:
    """Run trials of the config's shared study until its budget is used; train no final model.

    Start several with the same config and a shared store (`registry.url` or `store_url`, e.g.
    PostgreSQL): they share one study, and each trial runs in exactly one of them.

    Args:
        cfg: a config with a `tune` section.
        workspace: where the store (when SQLite) and artifacts live.
        store_url: the store's SQLAlchemy URL when `registry.url` is not set.
        progress: one line per finished trial on stderr.
        resume: close trials a killed process left running so they are run again; only when
            no other worker is running.

    Returns:
        Every trial of the study so far and the best one.
    """
    assert cfg.tune is not None, "callers check for a tune section"
    with Store.open(resolve_workspace(workspace), store_url_for(cfg, store_url)) as store:
        device = setup_process(cfg.train.num_threads, cfg.device)
        data = prepare_data(cfg)  # `auto` keys resolved as `pipeline.run` does: the same study
        return search(resolve_auto(cfg, data.facts, echo=progress), data, store, device=device,
                      progress=progress, resume=resume, worker=True)
