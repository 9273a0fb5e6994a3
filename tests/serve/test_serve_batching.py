"""The micro-batcher: batches up to max_batch inputs or max_wait_ms, never splits a request,
keeps one bad request from failing its neighbours, and drains its queue when closed."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from dlforge.errors import DataError
from dlforge.serve.batching import MicroBatcher


class Recorder:
    """A fake predictor: one row per input, and the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[list] = []

    def __call__(self, items):
        items = list(items)
        self.batches.append(items)
        if any(isinstance(item, str) and item == "bad" for item in items):
            raise DataError("input: 'bad' is not allowed")
        return [{"echo": item if isinstance(item, str) else float(np.sum(item))} for item in items]


def run(coro):
    return asyncio.run(coro)


async def submit_all(batcher: MicroBatcher, jobs: list[tuple[object, str, int]]):
    batcher.start()
    results = await asyncio.gather(*(batcher.submit(items, kind, size) for items, kind, size in jobs),
                                   return_exceptions=True)
    await batcher.close()
    return results


def test_concurrent_requests_share_batches_of_at_most_max_batch():
    rec = Recorder()
    batcher = MicroBatcher(rec, max_batch=4, max_wait_ms=1000)
    jobs = [([f"t{i}"], "list", 1) for i in range(6)]
    start = time.perf_counter()
    results = run(submit_all(batcher, jobs))
    assert rec.batches == [["t0", "t1", "t2", "t3"], ["t4", "t5"]]
    assert results == [[{"echo": f"t{i}"}] for i in range(6)]
    assert time.perf_counter() - start < 5  # the first batch was full: it did not wait 1 s


def test_a_lone_request_waits_at_most_max_wait_ms():
    rec = Recorder()
    start = time.perf_counter()
    results = run(submit_all(MicroBatcher(rec, max_batch=8, max_wait_ms=50), [(["a", "b"], "list", 2)]))
    elapsed = time.perf_counter() - start
    assert results == [[{"echo": "a"}, {"echo": "b"}]]
    assert 0.04 <= elapsed < 2.0


def test_requests_are_never_split_and_overflow_starts_the_next_batch():
    rec = Recorder()
    jobs = [(["a", "b", "c"], "list", 3), (["d", "e"], "list", 2), (list("fghijk"), "list", 6)]
    results = run(submit_all(MicroBatcher(rec, max_batch=4, max_wait_ms=200), jobs))
    assert rec.batches == [["a", "b", "c"], ["d", "e"], list("fghijk")]
    assert [len(r) for r in results] == [3, 2, 6]


def test_arrays_are_concatenated_and_kinds_run_apart():
    rec = Recorder()
    ones = np.ones((1, 2, 2), dtype=np.float32)
    jobs = [(ones, "array", 1), (ones * 2, "array", 1), (["x"], "list", 1)]
    results = run(submit_all(MicroBatcher(rec, max_batch=8, max_wait_ms=100), jobs))
    assert results == [[{"echo": 4.0}], [{"echo": 8.0}], [{"echo": "x"}]]
    assert sorted(len(b) for b in rec.batches) == [1, 2]


def test_one_bad_request_does_not_fail_its_neighbours():
    rec = Recorder()
    jobs = [(["ok1"], "list", 1), (["bad"], "list", 1), (["ok2"], "list", 1)]
    results = run(submit_all(MicroBatcher(rec, max_batch=8, max_wait_ms=100), jobs))
    assert results[0] == [{"echo": "ok1"}] and results[2] == [{"echo": "ok2"}]
    assert isinstance(results[1], DataError) and str(results[1]) == "input: 'bad' is not allowed"
    assert rec.batches == [["ok1", "bad", "ok2"], ["ok1"], ["bad"], ["ok2"]]


def test_close_finishes_queued_jobs_and_later_jobs_run_alone():
    rec = Recorder()

    async def scenario():
        batcher = MicroBatcher(rec, max_batch=8, max_wait_ms=500)
        batcher.start()
        queued = asyncio.ensure_future(batcher.submit(["q"], "list", 1))
        await asyncio.sleep(0)
        await batcher.close()  # must not drop "q", which waits in the queue
        late = await batcher.submit(["late"], "list", 1)
        return await queued, late

    assert run(scenario()) == ([{"echo": "q"}], [{"echo": "late"}])


def test_zero_wait_takes_only_what_is_already_queued():
    rec = Recorder()
    jobs = [([f"t{i}"], "list", 1) for i in range(3)]
    results = run(submit_all(MicroBatcher(rec, max_batch=8, max_wait_ms=0.0), jobs))
    assert results == [[{"echo": "t0"}], [{"echo": "t1"}], [{"echo": "t2"}]]
    assert sum(len(b) for b in rec.batches) == 3


def test_the_wait_is_paid_only_after_a_batch_with_company():
    rec = Recorder()

    async def timed(batcher: MicroBatcher, *texts: str) -> float:
        start = time.perf_counter()
        await asyncio.gather(*(batcher.submit([t], "list", 1) for t in texts))
        return time.perf_counter() - start

    async def scenario() -> list[float]:
        batcher = MicroBatcher(rec, max_batch=8, max_wait_ms=300)
        batcher.start()
        waits = [await timed(batcher, "first"),    # nothing known yet: waits for company
                 await timed(batcher, "lone"),     # after a lone request: runs at once
                 await timed(batcher, "a", "b"),   # both already queued: one batch, no wait
                 await timed(batcher, "next")]     # after a batch with company: waits again
        await batcher.close()
        return waits

    first, lone, pair, after_pair = run(scenario())
    assert rec.batches == [["first"], ["lone"], ["a", "b"], ["next"]]
    assert first >= 0.29 and after_pair >= 0.29
    assert lone < 0.2 and pair < 0.2


def test_the_next_batch_is_gathered_while_a_forward_pass_runs():
    passes: list[tuple[list, float]] = []

    def slow(items):  # a forward pass of 0.5 s
        passes.append((list(items), time.perf_counter()))
        time.sleep(0.5)
        return [{"echo": item} for item in items]

    async def scenario() -> float:
        batcher = MicroBatcher(slow, max_batch=4, max_wait_ms=400)
        batcher.start()
        first = asyncio.gather(*(batcher.submit([t], "list", 1) for t in "ab"))
        await asyncio.sleep(0.5)  # [a, b] waited 0.4 s for company and runs until ~0.9 s
        second = asyncio.gather(*(batcher.submit([t], "list", 1) for t in "cd"))
        await first
        start = time.perf_counter()
        await second
        await batcher.close()
        return time.perf_counter() - start

    after_first = run(scenario())
    assert [items for items, _ in passes] == [["a", "b"], ["c", "d"]]
    # [c, d] gathered during the first pass: it starts when that pass ends, without waiting
    # another 0.4 s for company (which would end it 0.9 s after the first)
    assert 0.45 <= after_first < 0.75
