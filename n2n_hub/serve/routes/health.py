"""Operations: is the process up, are its pairs ready, and its Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..dispatch import RETRY_AFTER_LOADING, state_of

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up (never needs the API key)")
async def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", "uptime_s": round(time.time() - state_of(request).started, 3)}


@router.get("/readyz", summary="Start-up pairs are loaded (503 until then)")
async def readyz(request: Request) -> JSONResponse:
    ok, slots = state_of(request).ready()
    return JSONResponse({"ready": ok, "pairs": slots}, status_code=200 if ok else 503,
                        headers=None if ok else {"Retry-After": RETRY_AFTER_LOADING})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    state = state_of(request)
    state.update_gauges()
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
