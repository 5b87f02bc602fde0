"""The per-pair Batcher alone: how it groups requests around a busy worker."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from n2n_hub.serve.batching import Batcher, QueueFull


def _slow_batcher(first_batch_s: float, max_batch: int, max_delay_s: float, max_queue: int = 64):
    """A Batcher whose first batch holds the worker for ``first_batch_s``; records batch sizes."""
    sizes: list[int] = []
    busy = threading.Event()

    def run(payloads: list[int]) -> list[object]:
        if not sizes[1:]:  # only the first batch is slow
            busy.set()
            time.sleep(first_batch_s)
        return [ValueError(f"bad {p}") if p < 0 else p * 10 for p in payloads]

    batcher = Batcher(run, max_batch=max_batch, max_delay_s=max_delay_s, max_queue=max_queue, name="t",
                      on_batch=sizes.append)
    return batcher, sizes, busy


@pytest.mark.slow  # over half a second: the quick subset leaves it out
def test_callers_answered_by_a_busy_batch_join_the_requests_that_queued_meanwhile():
    """Closed-loop clients: 4 queue while the worker is busy, 4 more come back as soon as it answers.

    The next batch must hold all 8: its wait starts when the worker is free, not when the first
    of the queued requests arrived (long before, while the worker was busy).
    """

    async def scenario() -> tuple[list[int], list[int]]:
        batcher, sizes, busy = _slow_batcher(first_batch_s=0.6, max_batch=8, max_delay_s=0.2)
        try:
            head = asyncio.create_task(batcher.submit(0))
            while not busy.is_set():
                await asyncio.sleep(0.005)
            queued = [asyncio.create_task(batcher.submit(i)) for i in range(1, 5)]  # wait ~0.6 s in the queue
            assert await head == 0
            again = [asyncio.create_task(batcher.submit(i)) for i in range(5, 9)]  # answered callers come back
            answers = await asyncio.gather(*queued, *again)
            return sizes, answers
        finally:
            await batcher.close()

    sizes, answers = asyncio.run(scenario())
    assert answers == [i * 10 for i in range(1, 9)]
    assert sizes == [1, 8]


def test_the_wait_after_a_free_worker_is_bounded_by_max_delay():
    async def scenario() -> float:
        batcher, sizes, busy = _slow_batcher(first_batch_s=0.0, max_batch=64, max_delay_s=0.05)
        try:
            t0 = time.monotonic()
            assert await batcher.submit(3) == 30  # alone: waits max_delay for company, then runs
            return time.monotonic() - t0
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) < 2.0  # bounded (the delay is 0.05 s; the margin is for a busy machine)


def test_one_bad_payload_fails_alone_and_a_full_queue_is_refused():
    async def scenario() -> None:
        batcher, sizes, busy = _slow_batcher(first_batch_s=0.3, max_batch=8, max_delay_s=0.01, max_queue=3)
        try:
            head = asyncio.create_task(batcher.submit(1))
            while not busy.is_set():
                await asyncio.sleep(0.005)
            waiting = [asyncio.create_task(batcher.submit(p)) for p in (2, -1, 4)]
            await asyncio.sleep(0.01)
            with pytest.raises(QueueFull):
                await batcher.submit(5)
            assert await head == 10
            results = await asyncio.gather(*waiting, return_exceptions=True)
            assert results[0] == 20 and results[2] == 40
            assert isinstance(results[1], ValueError) and str(results[1]) == "bad -1"
            assert sizes == [1, 3]
        finally:
            await batcher.close()

    asyncio.run(scenario())
