"""Micro-batching: concurrent requests for one model version share one forward pass.

Each loaded model version has one `MicroBatcher`: a list of waiting jobs and a worker task.
The worker gathers the next batch WHILE the previous one runs its forward pass (in a thread,
so the event loop keeps accepting and parsing requests meanwhile; the model cache gives every
batcher the same single inference thread), and hands it over as soon as that pass ends: so
the forward passes follow each other without a gap while requests keep arriving. A batch is
handed over when it holds `max_batch` inputs, or when no pass is running and either
`max_wait_ms` has passed since its first job arrived or the previous batch held a single
request (a lone request after a lone request runs at once, so a single client never pays the
wait). A request is never split: one larger than `max_batch` runs on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

PredictFn = Callable[[Any], list[dict[str, Any]]]


@dataclass
class Job:
    """One request's inputs: `kind` "array" (an ndarray batch) or "list" (texts, rows, files)."""

    inputs: Any
    kind: str
    size: int
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    arrived: float = field(default_factory=lambda: asyncio.get_running_loop().time())


class MicroBatcher:
    """Batches the jobs of one model version.

    Args:
        predict: runs the model on a batch of raw inputs and returns one dict per input.
        max_batch: most inputs in one forward pass.
        max_wait_ms: longest time the first job of a batch waits for company while the
            model is idle.
        on_batch: called with the size of every batch run (for metrics).
        executor: the thread(s) that run `predict`; None = asyncio's default pool.

    Example:
        >>> batcher = MicroBatcher(lambda x: predictor.predict(x), max_batch=32, max_wait_ms=5)  # doctest: +SKIP
        >>> batcher.start(); rows = await batcher.submit(["a text"], "list")                  # doctest: +SKIP
    """

    def __init__(self, predict: PredictFn, *, max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[int], None] | None = None,
                 executor: Executor | None = None) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.on_batch = on_batch
        self.executor = executor
        self._pending: deque[Job] = deque()
        self._pending_size = 0
        self._wakeup: asyncio.Future | None = None  # what the worker sleeps on
        self._running: asyncio.Task | None = None  # the forward pass in flight
        self._alone = False  # the last batch held one request: expect no company
        self._task: asyncio.Task | None = None
        self.closed = False

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def submit(self, inputs: Any, kind: str, size: int) -> list[dict[str, Any]]:
        """Predict `inputs` (a batch of `size` raw inputs) together with concurrent requests.

        Raises:
            Whatever the predictor raised for these inputs (DataError for bad input).
        """
        job = Job(inputs, kind, size)
        if self.closed:  # evicted while this request was on its way: run it alone
            await self._run([job])
        else:
            self._pending.append(job)
            self._pending_size += size
            # wake the worker only when it may act: a first job, or a full batch
            if len(self._pending) == 1 or self._pending_size >= self.max_batch:
                self._wake()
        return await job.future

    async def close(self) -> None:
        """Finish the queued jobs, then stop the worker (in-flight requests are not dropped)."""
        if self.closed:
            return
        self.closed = True
        self._wake()
        if self._task is not None:
            await self._task

    def _wake(self, *_: Any) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _sleep(self, until: float | None = None) -> None:
        """Sleep until a submit, the end of the running pass, close(), or `until` (loop time)."""
        loop = asyncio.get_running_loop()
        self._wakeup = loop.create_future()
        timer = None if until is None else loop.call_at(until, self._wake)
        try:
            await self._wakeup
        finally:
            self._wakeup = None
            if timer is not None:
                timer.cancel()

    async def _work(self) -> None:
        while True:
            jobs = await self._collect()
            if self._running is not None:
                await self._running  # one pass at a time: the next batch waits its turn
            if not jobs:  # closed and drained
                return
            self._running = asyncio.get_running_loop().create_task(self._run(jobs))
            self._running.add_done_callback(self._wake)

    async def _collect(self) -> list[Job]:
        """The next batch, once `_ready` says so; empty when closed with nothing queued."""
        while not self._pending:
            if self.closed:
                return []
            await self._sleep()
        while not self._ready():
            running = self._running is not None and not self._running.done()
            await self._sleep(None if running else self._pending[0].arrived + self.max_wait)
        jobs = [self._pending.popleft()]
        size = jobs[0].size
        while self._pending and size + self._pending[0].size <= self.max_batch:
            size += self._pending[0].size
            jobs.append(self._pending.popleft())
        self._pending_size -= size
        self._alone = len(jobs) == 1 and not self._pending
        return jobs

    def _ready(self) -> bool:
        """Hand the waiting jobs over now: a full batch, or an idle model with nothing to wait for."""
        if self._pending_size >= self.max_batch or self.closed:
            return True
        if self._running is not None and not self._running.done():
            return False
        loop_time = asyncio.get_running_loop().time()
        return self._alone or loop_time >= self._pending[0].arrived + self.max_wait

    async def _run(self, jobs: Sequence[Job]) -> None:
        """Run the jobs, one forward pass per input kind; never raises."""
        for kind in {job.kind for job in jobs}:
            group = [job for job in jobs if job.kind == kind]
            try:
                rows = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.predict, _combine(group))
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0], error=exc)
                    continue
                # One bad request must not fail its neighbours: run each alone, so each gets
                # its own result or its own error message.
                for job in group:
                    await self._run([job])
                continue
            if self.on_batch is not None:
                self.on_batch(sum(job.size for job in group))
            start = 0
            for job in group:
                _settle(job, result=rows[start:start + job.size])
                start += job.size


def _combine(group: Sequence[Job]) -> Any:
    if len(group) == 1:
        return group[0].inputs
    if group[0].kind == "array":
        return np.concatenate([job.inputs for job in group])
    return [item for job in group for item in job.inputs]


def _settle(job: Job, *, result: Any = None, error: BaseException | None = None) -> None:
    if job.future.done():  # the client went away and its request was cancelled
        return
    if error is not None:
        job.future.set_exception(error)
    else:
        job.future.set_result(result)
