"""From a checked request to its pair's batch queue and back: the steps every model route shares."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import IncompatiblePairError, N2NError, UnknownExpertError
from .batching import QueueFull
from .checks import OutOfRange
from .engine import Job, JobResult, TransferJob
from .pairs import AddressNotAllowed, PairSlot, TooManyPairs, UnknownPairError
from .requests import Rejected, over
from .state import ServerState

log = logging.getLogger("n2n_hub.serve")

RETRY_AFTER_LOADING = "5"


def state_of(request: Request) -> ServerState:
    return request.app.state.n2n  # type: ignore[no-any-return]


def error(status: int, message: str, limit: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one shape of every error answer: ``{"error": one line[, "limit": name]}``."""
    body: dict[str, Any] = {"error": message}
    if limit:
        body["limit"] = limit
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(e: N2NError) -> int:
    if isinstance(e, (UnknownExpertError, UnknownPairError)):
        return 404
    if isinstance(e, AddressNotAllowed):
        return 403
    if isinstance(e, IncompatiblePairError):
        return 422
    return 400


def deadline_of(state: ServerState) -> float:
    return time.monotonic() + state.settings.limits.request_timeout_s


def _too_slow(state: ServerState) -> Rejected:
    return over("request_timeout_s", f"the request took longer than the limit of "
                                     f"{state.settings.limits.request_timeout_s:g} s", status=408)


async def within(state: ServerState, deadline: float, work: Awaitable[Any]) -> Any:
    """``work``'s answer, or 408 once the request's time is up."""
    try:
        return await asyncio.wait_for(work, max(0.0, deadline - time.monotonic()))
    except asyncio.TimeoutError:
        raise _too_slow(state) from None


async def slot_for(state: ServerState, source: str | None, target: str | None, pair: str | None) -> PairSlot:
    """The ready slot of the pair a request names; 503 while it loads, 404 when it could not be loaded."""
    found = state.pool.known(source, target, pair)
    if found is None:  # first time these fields are seen: planning may import a plugin
        try:
            found = await run_in_threadpool(state.pool.slot_for, source, target, pair)
        except TooManyPairs as e:
            raise Rejected(503, str(e), limit="max_pairs") from None
    slot, seen = found
    if seen == "loading":
        raise Rejected(503, f"pair {slot.key} is loading; retry in a few seconds",
                       headers={"Retry-After": RETRY_AFTER_LOADING})
    if seen == "failed":
        wait = slot.retry_in(state.settings.retry_failed_s)
        raise Rejected(404, f"pair {slot.key} is not served: {slot.error} (tried again after {wait:.0f} s)")
    return slot


def check_inputs(slot: PairSlot, job: Job | TransferJob) -> None:
    """Latents a caller sent must be finite and in their expert's range (400 otherwise), whatever the route."""
    assert slot.checks is not None
    try:
        if isinstance(job, TransferJob):
            slot.checks.check_input(job.target_latents, "target_latents", target=True)
        elif job.kind == "latent":
            slot.checks.check_input(job.inputs, "latents")
    except OutOfRange as e:
        raise Rejected(e.status, e.message) from None


async def run_job(state: ServerState, slot: PairSlot, job: Any, deadline: float) -> JobResult:
    """Queue ``job`` on the slot's batcher and wait for its result, mapping failures to answers."""
    assert slot.batcher is not None
    check_inputs(slot, job)
    try:
        res: JobResult = await asyncio.wait_for(slot.batcher.submit(job), max(0.0, deadline - time.monotonic()))
    except QueueFull as e:
        raise Rejected(429, f"too many requests waiting for {slot.key} ({e}); retry shortly",
                       limit="max_queue", headers={"Retry-After": "1"}) from None
    except asyncio.TimeoutError:
        raise _too_slow(state) from None
    except OutOfRange as e:
        if e.status >= 500:
            log.error("pair %s: %s", slot.key, e.message)
        raise Rejected(e.status, e.message) from None
    except N2NError as e:
        raise Rejected(status_of(e), str(e)) from None
    except (ValueError, TypeError) as e:
        raise Rejected(400, str(e)) from None
    state.metrics.samples.labels(slot.key).inc(res.latents.shape[0] * res.latents.shape[1])
    return res
