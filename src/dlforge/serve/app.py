"""The FastAPI application: `create_app(store, settings)`.

Models are loaded in the lifespan (those named with ``--model``) or on first use, never at
import time; the routes reach them through `Depends`.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from dlforge.config.drift_schema import DriftConfig
from dlforge.data.images import MAX_SIDE
from dlforge.registry.refs import parse_ref
from dlforge.serve.deps import TOKEN_ENV
from dlforge.serve.drift import DriftMonitor
from dlforge.serve.errors import install_handlers
from dlforge.serve.fastpath import ServeApp
from dlforge.serve.metrics import ServeMetrics
from dlforge.serve.middleware import BodyLimit, Observe
from dlforge.serve.models import ModelCache
from dlforge.serve.openapi import install_openapi
from dlforge.serve.routes import models_router, router

if TYPE_CHECKING:
    from dlforge.config.schema import ServeConfig
    from dlforge.registry import Store

DEFAULT_MAX_ITEMS = 1024
# Most pixels of the image files in one request together (one MAX_SIDE x MAX_SIDE image, 192
# MB decoded as RGB), read from their headers before any is decoded.
DEFAULT_MAX_PIXELS = MAX_SIDE * MAX_SIDE
# How stale an alias may be when another process moved it (this server's own moves and
# reloads apply at once): a store read per request would cost more than a small model's
# forward pass.
ALIAS_TTL_S = 0.5


def create_app(store: Store, settings: ServeConfig, *, models: Sequence[str] = (),
               max_items: int = DEFAULT_MAX_ITEMS, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_loaded: int = 4, alias_ttl: float = ALIAS_TTL_S,
               drift: DriftConfig | None = None) -> FastAPI:
    """The inference service over `store`.

    Args:
        store: the registry to serve from (the caller keeps it open while the app runs).
        settings: the ``serve`` config section (batching, inference threads, body limit, token).
        models: references such as ``digits@production``: each is loaded at startup, and its
            alias becomes what a bare ``/v1/models/digits/...`` serves (else the latest version).
        max_items: most inputs in one predict request.
        max_pixels: most pixels (width x height) of the image files of one predict request
            together; each file is also limited by its model (`Predictor.image_limit`).
        max_loaded: model versions kept in memory.
        alias_ttl: seconds a resolved alias is reused; a move made by another process (the
            CLI, another server) is served within this time, one through this app at once.
        drift: the ``drift`` config section: the sample of served inputs kept per version
            and how often its drift is recomputed for ``/metrics`` (`serve/drift.py`).

    Raises:
        ConfigError: a malformed reference in `models`.

    Example:
        >>> with TestClient(create_app(Store.open(ws), ServeConfig())) as client:  # doctest: +SKIP
        ...     client.post("/v1/models/digits/predict", json={"inputs": [[[0] * 8] * 8]})
    """
    defaults = dict(parse_ref(ref) for ref in models if "@" in ref)
    metrics = ServeMetrics()
    monitor = DriftMonitor(store.artifacts_dir.parent, drift or DriftConfig(), metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cache = ModelCache(store, defaults=defaults, max_batch=settings.max_batch,
                           max_wait_ms=settings.max_wait_ms, max_loaded=max_loaded,
                           on_batch=metrics.observe_batch, alias_ttl=alias_ttl,
                           threads=settings.threads, on_load=monitor.watch)
        app.state.models = cache
        refresher = asyncio.get_running_loop().create_task(monitor.run())
        for ref in models:
            await cache.get(ref)
        # Everything allocated so far (torch, FastAPI, the models) lives as long as the server:
        # move it out of the garbage collector's view, so that a full collection, which the
        # many small objects of JSON requests trigger now and then, does not walk millions of
        # long-lived objects in the middle of a request (a tail-latency spike).
        gc.freeze()
        try:
            yield
        finally:
            refresher.cancel()
            await cache.close()
            await asyncio.to_thread(monitor.save)

    app = ServeApp(title="dlforge inference", version=_version(), lifespan=lifespan,
                  description="Predictions from registered dlforge models.")
    app.state.store = store
    app.state.metrics = metrics
    app.state.drift = monitor
    app.state.token = settings.token or os.environ.get(TOKEN_ENV) or None
    app.state.protect_reads = settings.protect_reads
    app.state.max_items = max_items
    app.state.max_pixels = max_pixels
    app.state.max_body_bytes = body_bytes = int(settings.max_body_mb * 1024 * 1024)
    app.include_router(models_router)
    app.include_router(router)
    install_handlers(app)
    install_openapi(app, (models_router, router), protect_reads=settings.protect_reads,
                    max_items=max_items)
    app.add_middleware(BodyLimit, max_bytes=body_bytes)
    app.add_middleware(Observe, metrics=metrics)  # outermost: counts 413s and 500s too
    return app


def _version() -> str:
    from dlforge import __version__

    return __version__
