"""Training-serving skew: a sample of each model version's served inputs against its reference.

Each loaded version whose bundle has a reference.json gets a `Reservoir` of its preprocessed
inputs (filled by the predictor's `on_inputs` hook on the inference thread: a few numpy
operations per batch). A background task recomputes the drift of every sample every
`drift.refresh_seconds` in a worker thread, off the request path, publishes it at ``/metrics``
and saves the sample to ``<workspace>/drift/<name>/v<version>.npz`` for ``dlforge drift NAME
--served``. A server restarted on the same workspace continues the saved sample.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlforge.config.drift_schema import DriftConfig
from dlforge.errors import DlforgeError, NotFoundError
from dlforge.lifecycle.drift import DriftResult, check_drift
from dlforge.lifecycle.reservoir import Reservoir, served_sample_path
from dlforge.registry.bundle import read_reference

if TYPE_CHECKING:
    from dlforge.serve.metrics import ServeMetrics
    from dlforge.serve.models import Loaded

logger = logging.getLogger("dlforge.serve")
MIN_ROWS = 2  # fewer served inputs than this: nothing to compare yet


@dataclass
class Watched:
    """One model version under watch."""

    loaded: Loaded
    reference: dict[str, Any]
    reservoir: Reservoir
    path: Path


class DriftMonitor:
    """The served samples of the loaded model versions and their drift.

    Args:
        workspace: where samples are saved (``drift/`` inside it).
        cfg: the ``drift`` config section (reservoir size, refresh interval, thresholds).
        metrics: where the figures are published.

    Example:
        >>> monitor = DriftMonitor(ws, DriftConfig(reservoir=500), ServeMetrics())  # doctest: +SKIP
        >>> monitor.watch(loaded); monitor.refresh()                                 # doctest: +SKIP
    """

    def __init__(self, workspace: Path, cfg: DriftConfig, metrics: ServeMetrics) -> None:
        self.workspace, self.cfg, self.metrics = Path(workspace), cfg, metrics
        self._watched: dict[tuple[str, int], Watched] = {}
        self._lock = threading.Lock()  # one refresh at a time (the loop's and a caller's)

    def watch(self, loaded: Loaded) -> None:
        """Start sampling a freshly loaded version's inputs (versions without a reference, or
        with one damaged, are served unwatched; the log says why)."""
        version = loaded.version
        try:
            reference = read_reference(version.bundle_path, version.ref)
        except NotFoundError as exc:
            logger.info("drift: %s", exc)
            return
        except DlforgeError as exc:  # a damaged reference: the model still serves, unwatched
            logger.warning("drift: %s; serving %s without drift monitoring", exc, version.ref)
            return
        path = served_sample_path(self.workspace, version.name, version.version)
        key = (version.name, version.version)
        if key in self._watched:  # reloaded: continue from what the previous load sampled
            self._watched[key].reservoir.save(path)
        reservoir = Reservoir.load(path, self.cfg.reservoir, seed=version.version)
        loaded.predictor.on_inputs = reservoir.add
        self._watched[key] = Watched(loaded, reference, reservoir, path)

    def refresh(self) -> dict[tuple[str, int], DriftResult]:
        """Recompute, publish and save the drift of every sample with inputs; blocking (run it
        in a worker thread)."""
        results = {}
        with self._lock:
            for key, watched in list(self._watched.items()):
                sample = watched.reservoir.sample()
                if sample is None or len(sample) < MIN_ROWS:
                    continue
                try:
                    result = check_drift(watched.reference, sample, watched.loaded.predictor.bundle,
                                         model=watched.loaded.version.ref, source="served sample",
                                         cfg=self.cfg)
                except DlforgeError as exc:  # a reference that does not fit: say so, keep serving
                    logger.warning("drift: %s", exc)
                    continue
                self.metrics.observe_drift(*key, result)
                watched.reservoir.save(watched.path)
                results[key] = result
        return results

    async def run(self) -> None:
        """Refresh every `refresh_seconds` until cancelled."""
        while True:
            await asyncio.sleep(self.cfg.refresh_seconds)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # never let a drift bug stop the loop or the server
                logger.exception("drift: refresh failed")

    def save(self) -> None:
        """Save every sample (at shutdown)."""
        for watched in list(self._watched.values()):
            watched.reservoir.save(watched.path)
