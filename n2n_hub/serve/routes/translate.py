"""Translating: texts, base64 images or source latents as JSON, or uploaded files as a multipart form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import schemas
from ..dispatch import deadline_of, run_job, slot_for, state_of, within
from ..requests import Rejected, TranslateRequest, from_fields, parse_json_body, read_body, to_job
from ..responses import json_answer, png_bytes, safetensors_bytes
from ..state import ServerState
from ..uploads import read_form

router = APIRouter(tags=["translate"])

ANSWERS = {200: {"content": {"application/json": {}, "image/png": {}, "application/octet-stream": {}}}}


@router.post("/v1/translate", summary="Translate texts, base64 images or source latents",
             openapi_extra=schemas.body("application/json", schemas.TRANSLATE), responses=ANSWERS)
async def translate(request: Request) -> Response:
    state = state_of(request)
    deadline = deadline_of(state)
    limits = state.settings.limits
    req = from_fields(parse_json_body(await read_body(request, limits.max_body_bytes)), limits)
    return await within(state, deadline, answer(state, req, deadline))  # type: ignore[no-any-return]


@router.post("/v1/translate/upload",
             summary="Translate uploaded image files (multipart: 'images', or a safetensors 'latents' file)",
             openapi_extra=schemas.body("multipart/form-data", schemas.UPLOAD), responses=ANSWERS)
async def translate_upload(request: Request) -> Response:
    state = state_of(request)
    deadline = deadline_of(state)
    req = await read_form(request, state.settings.limits)
    return await within(state, deadline, answer(state, req, deadline))  # type: ignore[no-any-return]


async def answer(state: ServerState, req: TranslateRequest, deadline: float) -> Response:
    """Run one translate request through its pair's batch queue and encode the answer in its format."""
    slot = await slot_for(state, req.source, req.target, req.pair)
    t = slot.translator
    assert t is not None
    spec, limits = t.source.spec, state.settings.limits
    if req.format == "png" and t.target.spec.output_domain != "image":
        raise Rejected(400, f"{slot.target} does not produce images; ask for format 'json'")
    if req.images is not None:  # decoding images is work: keep it off the event loop
        job = await run_in_threadpool(to_job, req, spec.input_domain, spec.input_shape, limits)
    else:
        job = to_job(req, spec.input_domain, spec.input_shape, limits)
    res = await run_job(state, slot, job, deadline)
    headers = {"X-N2N-Pair": slot.key}
    if req.format == "png":
        small = res.latents.shape[0] * req.n <= 4  # a thread hop costs more than encoding a few tiles
        body = png_bytes(res.outputs, req.n) if small else await run_in_threadpool(png_bytes, res.outputs, req.n)
        return Response(body, media_type="image/png", headers=headers)
    if req.format == "safetensors":
        return Response(await run_in_threadpool(safetensors_bytes, res.latents), media_type="application/octet-stream",
                        headers=headers)
    temperature = t.temperature if req.temperature is None else req.temperature
    answer = await run_in_threadpool(json_answer, req, res, slot.source, slot.target, temperature, limits)
    return JSONResponse(answer, headers=headers)
