"""The loaded-model cache: one predictor and micro-batcher per (name, version).

A model reference (``digits``, ``digits@production``) is resolved against the store at most
once every `alias_ttl` seconds, in the background once known (a store read costs
milliseconds, a large share of a small model's request, and would show in the tail latency);
this server's own alias moves and reloads forget the resolution at once, so they switch the
next request immediately, while moves made elsewhere (the CLI, another server) are seen
within `alias_ttl` plus one store read. Requests already holding the old version's entry finish
on it: an entry is never mutated, only dropped, and a dropped batcher drains its queue before
it stops. Every forward pass runs on one inference thread, so that concurrent batches do not
fight over the cores (and torch keeps one warm thread pool).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from dlforge.errors import DataError, NotFoundError, StoreError
from dlforge.registry.refs import LATEST, parse_ref
from dlforge.runtime import configure_process, physical_cores, use_threads
from dlforge.serve.batching import MicroBatcher

if TYPE_CHECKING:
    from dlforge.registry import ModelVersion, Predictor, Store


@dataclass(frozen=True)
class Loaded:
    """A model version ready to serve."""

    version: ModelVersion
    predictor: Predictor
    batcher: MicroBatcher


# A batch of at least this many samples runs on every physical core when `serve.threads` is
# unset: under load the batches are full and the forward pass is the bottleneck (quiet 2-core
# EPYC, 32 clients: 3,212 requests/s on 2 threads vs 2,608 on 1); alone, a request runs on
# cores - 1 and leaves the event loop its core (benchmarks/RESULTS.md, serving sections).
LARGE_BATCH = 8


def inference_threads(threads: int | None, batch: int) -> int:
    """Torch threads for a forward pass of `batch` samples: `threads` when set; else every
    physical core for a batch of `LARGE_BATCH` or more and physical cores - 1 (at least 1)
    below that.

    Example:
        >>> inference_threads(3, 1), inference_threads(3, 32)
        (3, 3)
        >>> inference_threads(None, 32) == physical_cores()
        True
    """
    if threads is not None:
        return threads
    cores = physical_cores()
    return cores if batch >= LARGE_BATCH else max(1, cores - 1)


def _on_threads(predict: Callable, threads: int | None) -> Callable:
    """`predict`, run on `inference_threads(threads, len(inputs))` torch threads (in the
    inference thread, where the batcher calls it)."""
    def run(inputs):
        use_threads(inference_threads(threads, len(inputs)))
        return predict(inputs)
    return run


class ModelCache:
    """Loads model versions on first use and keeps the `max_loaded` most recently used.

    Args:
        store: the registry.
        defaults: the alias (or version) a bare model name means, per name (``dlforge serve
            --model digits@production`` makes ``/v1/models/digits/predict`` serve production);
            other names mean their latest version.
        max_batch, max_wait_ms: micro-batching settings of every batcher.
        on_batch: called with each batch size (metrics).
        alias_ttl: seconds a resolved reference is reused before the store is asked again;
            0 asks on every request.
        threads: torch threads of the inference thread; None chooses per batch
            (`inference_threads`).
        clock: monotonic seconds (tests pass a fake one).
        on_load: called with each newly loaded version (the drift monitor starts sampling it).
    """

    def __init__(self, store: Store, *, defaults: Mapping[str, int | str] | None = None,
                 max_batch: int = 32, max_wait_ms: float = 5.0, max_loaded: int = 4,
                 on_batch: Callable[[int], None] | None = None, alias_ttl: float = 0.0,
                 threads: int | None = None, clock: Callable[[], float] = time.monotonic,
                 on_load: Callable[[Loaded], None] | None = None) -> None:
        self.store = store
        self.defaults = dict(defaults or {})
        self.max_batch, self.max_wait_ms, self.max_loaded = max_batch, max_wait_ms, max_loaded
        self.on_batch, self.on_load = on_batch, on_load
        self.alias_ttl, self.clock = alias_ttl, clock
        self._entries: OrderedDict[tuple[str, int], Loaded] = OrderedDict()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._closing: set[asyncio.Task] = set()
        self._resolved: dict[tuple[str, int | str], tuple[float, ModelVersion]] = {}
        self._refreshing: dict[tuple[str, int | str], asyncio.Task] = {}
        self._generation = 0  # bumped by forget(): a lookup that started before must not be kept
        self.threads = threads
        # The thread count is set in the inference thread itself, so the process's other
        # threads (the caller's, in tests) keep theirs.
        self._inference = ThreadPoolExecutor(
            1, thread_name_prefix="dlforge-inference", initializer=configure_process,
            initargs=(inference_threads(threads, 1),))

    def selector(self, name: str) -> tuple[str, int | str]:
        """(name, version or alias) for a path's model: ``digits``, ``digits@3``, ``digits@staging``."""
        base, selector = parse_ref(name)
        if "@" not in name:
            selector = self.defaults.get(base, LATEST)
        return base, selector

    async def resolve(self, name: str) -> ModelVersion:
        """The version `name` refers to (NotFoundError listing what exists).

        With `alias_ttl` > 0 a known answer is returned at once; once it is older than
        `alias_ttl`, the store is asked again in the background (stale-while-revalidate), so
        no request waits for the store after the first; a move made elsewhere is served
        from the request after that read. With 0, every call asks the store.
        """
        key = self.selector(name)
        cached = self._resolved.get(key)
        if cached is None or self.alias_ttl <= 0:
            return await self._lookup(key)
        if self.clock() - cached[0] >= self.alias_ttl and key not in self._refreshing:
            task = asyncio.get_running_loop().create_task(self._lookup(key))
            self._refreshing[key] = task
            task.add_done_callback(lambda t, key=key: self._refreshed(key, t))
        return cached[1]

    async def settle(self) -> None:
        """Wait for the background alias reads in flight (tests, shutdown)."""
        if self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def _lookup(self, key: tuple[str, int | str]) -> ModelVersion:
        generation, asked_at = self._generation, self.clock()
        version = await asyncio.to_thread(self.store.get_version, *key)
        if generation == self._generation:
            self._resolved[key] = (asked_at, version)
        return version

    def _refreshed(self, key: tuple[str, int | str], task: asyncio.Task) -> None:
        self._refreshing.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            # the alias was deleted, or the store is unreachable: the next request asks again
            # and gets the store's error itself instead of a stale answer
            self._resolved.pop(key, None)

    def forget(self, name: str) -> None:
        """Resolve every reference to model `name` from the store again on its next request
        (after this server moved one of its aliases)."""
        self._generation += 1
        for key in [key for key in self._resolved if key[0] == name]:
            del self._resolved[key]

    async def get(self, name: str) -> Loaded:
        """The loaded version `name` refers to right now, loading it if needed."""
        version = await self.resolve(name)
        key = (version.name, version.version)
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._entries.get(key)  # loaded by a request that held the lock first?
            if entry is None:
                predictor = await asyncio.to_thread(_load_predictor, version)
                batcher = MicroBatcher(_on_threads(predictor.predict, self.threads),
                                       max_batch=self.max_batch,
                                       max_wait_ms=self.max_wait_ms, on_batch=self.on_batch,
                                       executor=self._inference)
                batcher.start()
                entry = self._entries[key] = Loaded(version, predictor, batcher)
                if self.on_load is not None:
                    self.on_load(entry)
                self._evict()
        return entry

    def loaded(self) -> list[tuple[str, int]]:
        """The (name, version) pairs in memory, least recently used first."""
        return list(self._entries)

    def drop(self, name: str) -> list[int]:
        """Forget every loaded version of model `name` and what its references point at; the
        next request resolves and loads it afresh."""
        self.forget(name)
        versions = [v for (n, v) in self._entries if n == name]
        for version in versions:
            self._retire(self._entries.pop((name, version)))
        return versions

    async def close(self) -> None:
        """Drain and stop every batcher."""
        await self.settle()
        for key in list(self._entries):
            self._retire(self._entries.pop(key))
        if self._closing:
            await asyncio.gather(*self._closing)
        self._inference.shutdown(wait=True)

    def _evict(self) -> None:
        while len(self._entries) > self.max_loaded:
            _, entry = self._entries.popitem(last=False)
            self._retire(entry)

    def _retire(self, entry: Loaded) -> None:
        task = asyncio.get_running_loop().create_task(entry.batcher.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


def _load_predictor(version: ModelVersion) -> Predictor:
    """Load a version's bundle; a broken bundle is the server's problem (503), not the client's."""
    from dlforge.registry import Predictor, load_bundle

    try:
        bundle = load_bundle(version.bundle_path)
    except (DataError, NotFoundError) as exc:
        raise StoreError(f"model {version.ref}: its bundle cannot be loaded ({exc}); "
                         "re-register the model or check the artifacts folder") from None
    # oneDNN runs convolutions several times faster on channels-last weights (the activations
    # follow the weights); only 4-D weights change, the outputs are the same up to rounding.
    bundle.model.to(memory_format=torch.channels_last)
    return Predictor(bundle, version=version)
