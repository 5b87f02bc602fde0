"""Exemplar-guided translation: keep each exemplar's residual, give it a new condition (Eq. 6)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import schemas
from ..dispatch import deadline_of, run_job, slot_for, state_of, within
from ..requests import Rejected, TransferRequest, parse_json_body, read_body, to_transfer_job, transfer_fields
from ..responses import png_bytes, safetensors_bytes, transfer_answer
from ..state import ServerState

router = APIRouter(tags=["translate"])


@router.post("/v1/transfer",
             summary="Keep exemplars' residuals, swap their condition (exemplar-guided translation, Eq. 6)",
             openapi_extra=schemas.body("application/json", schemas.TRANSFER))
async def transfer(request: Request) -> Response:
    state = state_of(request)
    deadline = deadline_of(state)
    limits = state.settings.limits
    tr = transfer_fields(parse_json_body(await read_body(request, limits.max_body_bytes)), limits)
    return await within(state, deadline, answer(state, tr, deadline))  # type: ignore[no-any-return]


async def answer(state: ServerState, tr: TransferRequest, deadline: float) -> Response:
    """Run one transfer through its pair's batch queue and encode the answer in its format."""
    req = tr.request
    slot = await slot_for(state, req.source, req.target, req.pair)
    t = slot.translator
    assert t is not None
    if req.format == "png" and t.target.spec.output_domain != "image":
        raise Rejected(400, f"{slot.target} does not produce images; ask for format 'json'")
    spec = t.source.spec
    job = await run_in_threadpool(to_transfer_job, tr, spec.input_domain, spec.input_shape, t.latent_shape,
                                  state.settings.limits)
    res = await run_job(state, slot, job, deadline)
    z = res.latents[:, 0]
    headers = {"X-N2N-Pair": slot.key}
    if req.format == "safetensors":
        return Response(await run_in_threadpool(safetensors_bytes, z), media_type="application/octet-stream",
                        headers=headers)
    if req.format == "png":
        return Response(await run_in_threadpool(png_bytes, res.outputs, z.shape[0]), media_type="image/png", headers=headers)
    body = await run_in_threadpool(transfer_answer, req, z, res.outputs, slot.source, slot.target)
    return JSONResponse(body, headers=headers)
