"""Operations: is the process up, are its pairs ready, and its Prometheus metrics.

``/healthz`` and ``/readyz`` answer without the API key, so without it they say up or ready and
nothing more; a caller with the key (or any caller of a server without one) also gets the
uptime and every pair's state, with the reason a pair failed.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..dispatch import RETRY_AFTER_LOADING, state_of

router = APIRouter(tags=["operations"])


def _authorised(request: Request) -> bool:
    return bool(getattr(request.state, "n2n_authorised", False))


@router.get("/healthz", summary="The process is up (no API key needed; with it, the uptime too)")
async def healthz(request: Request) -> dict[str, Any]:
    if not _authorised(request):
        return {"status": "ok"}
    return {"status": "ok", "uptime_s": round(time.time() - state_of(request).started, 3)}


@router.get("/readyz", summary="Start-up pairs are loaded and none has failed (503 until then; with the key, the pairs)")
async def readyz(request: Request) -> JSONResponse:
    ok, slots = state_of(request).ready()
    body: dict[str, Any] = {"ready": ok}
    if _authorised(request):
        body["pairs"] = slots
    return JSONResponse(body, status_code=200 if ok else 503,
                        headers=None if ok else {"Retry-After": RETRY_AFTER_LOADING})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    state = state_of(request)
    state.update_gauges()
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
