"""Dynamic batching: an asyncio queue per pair that merges concurrent requests.

A batch waits at most ``max_delay`` for company, counted from the moment the worker is free
or the first request arrives, whichever is later: requests that queued up while the previous
batch computed are joined by the callers that batch has just answered, so closed-loop clients
fill whole batches instead of splitting into a full one and a half-empty one. A batch holds
at most ``max_batch`` requests, and no request waits longer than ``max_delay`` past a free
worker. The work runs in one worker thread per pair, so the event loop stays free. The queue
is bounded: a full queue is refused at once instead of growing memory.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

P = TypeVar("P")


class QueueFull(Exception):
    """The pair's queue holds ``max_queue`` requests already."""


@dataclass
class _Item(Generic[P]):
    payload: P
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher(Generic[P]):
    """Collects payloads and runs ``run_batch(list[P]) -> list[result | Exception]`` on them together.

    ``run_batch`` returns one entry per payload, in order; an exception entry fails only
    that payload's caller. ``on_batch(size)`` is called once per batch (metrics).
    """

    def __init__(self, run_batch: Callable[[list[P]], list[Any]], max_batch: int, max_delay_s: float,
                 max_queue: int, name: str = "", on_batch: Callable[[int], None] | None = None) -> None:
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.max_delay_s = max(0.0, max_delay_s)
        self.max_queue = max_queue
        self.name = name
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item[P]] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"n2n-serve-{name}")
        self.busy = 0  # requests in the batch being computed
        self._free_since = 0.0  # monotonic time the worker finished its last batch

    @property
    def depth(self) -> int:
        """Requests waiting (not yet in a running batch)."""
        return self._queue.qsize() if self._queue is not None else 0

    def _start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    async def submit(self, payload: P) -> Any:
        """Wait for this payload's result; raises its exception, or :class:`QueueFull` at once."""
        self._start()
        assert self._queue is not None
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} requests are already waiting")
        item = _Item(payload, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(item)
        return await item.future

    async def _collect(self) -> list[_Item[P]]:
        assert self._queue is not None
        first = await self._queue.get()
        batch = [first]
        deadline = max(first.arrived, self._free_since) + self.max_delay_s
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [it for it in await self._collect() if not it.future.done()]  # drop callers who gave up
            if not batch:
                continue
            if self.on_batch is not None:
                self.on_batch(len(batch))
            self.busy = len(batch)
            try:
                results = await loop.run_in_executor(self._executor, self._run_safely, [it.payload for it in batch])
            finally:
                self.busy = 0
                self._free_since = time.monotonic()
            for it, res in zip(batch, results):
                if it.future.done():
                    continue
                if isinstance(res, BaseException):
                    it.future.set_exception(res)
                else:
                    it.future.set_result(res)

    def _run_safely(self, payloads: list[P]) -> list[Any]:
        try:
            results = self.run_batch(payloads)
            if len(results) != len(payloads):
                raise RuntimeError(f"batch of {len(payloads)} gave {len(results)} results")
            return results
        except Exception as e:  # noqa: BLE001 - a failing batch must not stop the queue
            return [e] * len(payloads)

    async def run_alone(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on this pair's worker thread, between batches (for calls that are not batched)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        """Stop taking work (in-flight batches have finished when the server calls this)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)
