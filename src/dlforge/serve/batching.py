"""Micro-batching: concurrent requests for one model version share one forward pass.

Each loaded model version has one `MicroBatcher`: an asyncio queue and a worker task. The
worker takes the first waiting request, then keeps collecting until the batch holds
`max_batch` inputs or `max_wait_ms` has passed (it waits only when the previous batch held
more than one request: a lone request after a lone request runs at once, so a single client
never pays the wait), and runs the predictor once, in a thread so
the event loop keeps accepting requests (the model cache gives every batcher the same single
inference thread). A request is never split: one larger than `max_batch` runs on its own.
"""

from __future__ import annotations

import asyncio
import logging
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


class MicroBatcher:
    """Batches the jobs of one model version.

    Args:
        predict: runs the model on a batch of raw inputs and returns one dict per input.
        max_batch: most inputs in one forward pass.
        max_wait_ms: longest time the first job of a batch waits for company.
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
        self._queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self._carried: Job | None = None
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
            self._queue.put_nowait(job)
        return await job.future

    async def close(self) -> None:
        """Finish the queued jobs, then stop the worker (in-flight requests are not dropped)."""
        if self.closed:
            return
        self.closed = True
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def _work(self) -> None:
        while True:
            jobs, stop = await self._collect()
            if jobs:
                await self._run(jobs)
            if stop:
                return

    async def _collect(self) -> tuple[list[Job], bool]:
        """The next batch, and whether the batcher was closed while collecting it."""
        first, self._carried = self._carried or await self._queue.get(), None
        if first is None:
            return [], True
        jobs, size = [first], first.size
        deadline = asyncio.get_running_loop().time() + (0.0 if self._alone else self.max_wait)
        while size < self.max_batch:
            try:
                remaining = deadline - asyncio.get_running_loop().time()
                nxt = (self._queue.get_nowait() if remaining <= 0
                       else await asyncio.wait_for(self._queue.get(), remaining))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            if nxt is None:
                return jobs, True
            if size + nxt.size > self.max_batch:
                self._carried = nxt  # starts the next batch
                break
            jobs.append(nxt)
            size += nxt.size
        self._alone = len(jobs) == 1 and self._carried is None
        return jobs, False

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
