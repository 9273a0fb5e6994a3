"""The loaded-model cache: one predictor and micro-batcher per (name, version).

Every request resolves its model reference against the store (one indexed read), so moving
an alias switches the next request to the new version at once, while requests already
holding the old version's entry finish on it: an entry is never mutated, only dropped, and a
dropped batcher drains its queue before it stops.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dlforge.errors import DataError, NotFoundError, StoreError
from dlforge.registry.refs import LATEST, parse_ref
from dlforge.serve.batching import MicroBatcher

if TYPE_CHECKING:
    from dlforge.registry import ModelVersion, Predictor, Store


@dataclass(frozen=True)
class Loaded:
    """A model version ready to serve."""

    version: ModelVersion
    predictor: Predictor
    batcher: MicroBatcher


class ModelCache:
    """Loads model versions on first use and keeps the `max_loaded` most recently used.

    Args:
        store: the registry.
        defaults: the alias (or version) a bare model name means, per name (``dlforge serve
            --model digits@production`` makes ``/v1/models/digits/predict`` serve production);
            other names mean their latest version.
        max_batch, max_wait_ms: micro-batching settings of every batcher.
        on_batch: called with each batch size (metrics).
    """

    def __init__(self, store: Store, *, defaults: Mapping[str, int | str] | None = None,
                 max_batch: int = 32, max_wait_ms: float = 5.0, max_loaded: int = 4,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.defaults = dict(defaults or {})
        self.max_batch, self.max_wait_ms, self.max_loaded = max_batch, max_wait_ms, max_loaded
        self.on_batch = on_batch
        self._entries: OrderedDict[tuple[str, int], Loaded] = OrderedDict()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._closing: set[asyncio.Task] = set()

    def selector(self, name: str) -> tuple[str, int | str]:
        """(name, version or alias) for a path's model: ``digits``, ``digits@3``, ``digits@staging``."""
        base, selector = parse_ref(name)
        if "@" not in name:
            selector = self.defaults.get(base, LATEST)
        return base, selector

    async def resolve(self, name: str) -> ModelVersion:
        """The version `name` refers to right now (NotFoundError listing what exists)."""
        base, selector = self.selector(name)
        return await asyncio.to_thread(self.store.get_version, base, selector)

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
                batcher = MicroBatcher(predictor.predict, max_batch=self.max_batch,
                                       max_wait_ms=self.max_wait_ms, on_batch=self.on_batch)
                batcher.start()
                entry = self._entries[key] = Loaded(version, predictor, batcher)
                self._evict()
        return entry

    def loaded(self) -> list[tuple[str, int]]:
        """The (name, version) pairs in memory, least recently used first."""
        return list(self._entries)

    def drop(self, name: str) -> list[int]:
        """Forget every loaded version of model `name`; the next request loads it afresh."""
        versions = [v for (n, v) in self._entries if n == name]
        for version in versions:
            self._retire(self._entries.pop((name, version)))
        return versions

    async def close(self) -> None:
        """Drain and stop every batcher."""
        for key in list(self._entries):
            self._retire(self._entries.pop(key))
        if self._closing:
            await asyncio.gather(*self._closing)

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
        return Predictor(load_bundle(version.bundle_path), version=version)
    except (DataError, NotFoundError) as exc:
        raise StoreError(f"model {version.ref}: its bundle cannot be loaded ({exc}); "
                         "re-register the model or check the artifacts folder") from None
