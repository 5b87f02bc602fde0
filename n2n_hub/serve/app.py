"""The FastAPI application: routes, limits and errors (API key, metrics and access logs: :mod:`.middleware`).

Requests are decoded here, run through the pair's :class:`~.batching.Batcher` and encoded
back; the model work runs in one worker thread per pair, so the event loop keeps answering
health checks and the page while a batch computes.
"""

from __future__ import annotations

import asyncio
import base64
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, AsyncIterator, Callable

import torch
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ..errors import IncompatiblePairError, N2NError, UnknownExpertError
from ..translators.translator import Translator
from .batching import Batcher, QueueFull
from .engine import Job, JobResult, run_jobs
from .metrics import Metrics
from .middleware import GuardAndLog
from .pairs import PairPool, PairSlot, pair_key
from .requests import Rejected, TranslateRequest, from_fields, over, parse_json_body, to_job
from .responses import json_answer, png_bytes, safetensors_bytes
from .settings import ServeSettings

RETRY_AFTER_LOADING = "5"

_EXAMPLE = {"pair": "bert-vaegan-animals", "texts": ["a photo of a zebra"], "n": 4, "temperature": 0.8, "seed": 0,
            "format": "json"}
_REQUEST_SCHEMA = {
    "type": "object",
    "properties": {
        "pair": {"type": "string", "description": "a registry pair name (see GET /v1/pairs)"},
        "source": {"type": "string", "description": "source expert address, e.g. bert"},
        "target": {"type": "string", "description": "target expert address, e.g. vaegan@animals"},
        "texts": {"type": "array", "items": {"type": "string"}, "description": "inputs of a text source"},
        "images": {"type": "array", "items": {"type": "string"}, "description": "base64 image files for an image source"},
        "latents": {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
                    "description": "source representations z_Φ, one row per input (skips the source encoder)"},
        "n": {"type": "integer", "minimum": 1, "default": 1, "description": "samples per input"},
        "temperature": {"type": "number", "minimum": 0, "description": "residual noise scale (default: the pair's)"},
        "seed": {"type": "integer", "minimum": 0, "description": "identical seeded requests give identical bytes"},
        "format": {"type": "string", "enum": ["json", "png", "safetensors"], "default": "json",
                   "description": "json: per-sample facts + base64 PNG grid; png: the grid; safetensors: latents"},
        "samples": {"type": "boolean", "default": False, "description": "add one base64 PNG per sample (json)"},
        "include_latents": {"type": "boolean", "default": False, "description": "add the latents as arrays (json)"},
    },
    "example": _EXAMPLE,
}


def _error(status: int, message: str, limit: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if limit:
        body["limit"] = limit
    return JSONResponse(body, status_code=status, headers=headers)


def _status_of(e: N2NError) -> int:
    if isinstance(e, UnknownExpertError):
        return 404
    if isinstance(e, IncompatiblePairError):
        return 422
    return 400


class ServerState:
    """Everything one app holds: the hub, its pairs, their batchers, metrics."""

    def __init__(self, hub: Any, settings: ServeSettings, pairs: list[str], translators: list[Translator]) -> None:
        self.hub = hub
        self.settings = settings
        self.metrics = Metrics()
        self.pool = PairPool(hub, settings.allow_train, on_ready=self._attach_batcher)
        self.requested_pairs = pairs
        self.preloaded = translators
        self.started = time.time()
        self.calls: dict[str, int] = {"encode": 0, "translate": 0, "decode": 0}
        self._catalogue: dict[str, Any] = {}

    def catalogue(self, what: str, make: Callable[[], Any]) -> Any:
        """A listing that cannot change while the server runs (experts, registry pairs), made once."""
        if what not in self._catalogue:
            self._catalogue[what] = make()
        return self._catalogue[what]

    def _attach_batcher(self, slot: PairSlot) -> None:
        t = slot.translator
        assert t is not None
        key = slot.key

        def run(jobs: list[Job]) -> list[Any]:
            return run_jobs(t, jobs, on_call=self._count, merge_encode=self.settings.merge_encode)

        def on_batch(size: int) -> None:
            self.metrics.batch_size.labels(key).observe(size)
            self.metrics.batches.labels(key).inc()

        slot.batcher = Batcher(run, self.settings.max_batch, self.settings.max_delay_ms / 1000,
                               self.settings.limits.max_queue, name=key, on_batch=on_batch)

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def start(self) -> None:
        for t in self.preloaded:
            self.pool.add_ready(t)
        if self.settings.lazy:
            return
        for src, tgt, name in self.pool.startup_pairs(self.requested_pairs):
            self.pool.ensure(src, tgt, name=name, startup=True)

    def ready(self) -> tuple[bool, list[dict[str, Any]]]:
        slots = list(self.pool.slots.values())
        startup = [s for s in slots if s.startup]
        ok = all(s.state != "loading" for s in startup) and (any(s.state == "ready" for s in slots) or
                                                               (self.settings.lazy and not startup))
        return ok, [s.to_dict() for s in slots]

    def update_gauges(self) -> None:
        for slot in self.pool.slots.values():
            if slot.batcher is not None:
                self.metrics.queue_depth.labels(slot.key).set(slot.batcher.depth)

    async def close(self) -> None:
        for slot in list(self.pool.slots.values()):
            if slot.batcher is not None:
                await slot.batcher.close()


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise over("max_body_bytes", f"the request body has {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise over("max_body_bytes", f"the request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(hub: Any, settings: ServeSettings | None = None, pairs: list[str] | None = None,
               translators: list[Translator] | None = None) -> FastAPI:
    """The server for ``hub``: serve ``pairs`` (names or ``SRC,TGT``; default: cached + the offline default)
    and any already loaded ``translators``."""
    settings = settings or ServeSettings()
    state = ServerState(hub, settings, list(pairs or []), list(translators or []))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(state.start)
        yield
        await state.close()  # uvicorn has already let in-flight requests finish

    app = FastAPI(title="n2n-hub", summary="Network-to-network translations over HTTP",
                  version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.n2n = state

    app.add_middleware(GuardAndLog, metrics=state.metrics, api_key=settings.api_key)

    @app.exception_handler(Rejected)
    async def rejected(request: Request, e: Rejected) -> JSONResponse:
        return _error(e.status, e.message, e.limit, e.headers or None)

    @app.exception_handler(N2NError)
    async def n2n_error(request: Request, e: N2NError) -> JSONResponse:
        return _error(_status_of(e), str(e))

    # -- operations -------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"], summary="The process is up (never needs the API key)")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 3)}

    @app.get("/readyz", tags=["operations"], summary="Start-up pairs are loaded (503 until then)")
    async def readyz() -> JSONResponse:
        ok, slots = state.ready()
        return JSONResponse({"ready": ok, "pairs": slots}, status_code=200 if ok else 503,
                            headers=None if ok else {"Retry-After": RETRY_AFTER_LOADING})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        state.update_gauges()
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- catalogue --------------------------------------------------------------------
    @app.get("/v1/experts", tags=["catalogue"], summary="Experts the installed plugins provide")
    async def experts() -> list[dict[str, Any]]:
        return state.catalogue("experts", lambda: [s.to_dict() for s in state.hub.experts()])

    @app.get("/v1/pairs", tags=["catalogue"], summary="Pairs served (with their state) and pairs the registry knows")
    async def list_pairs() -> dict[str, Any]:
        return {"served": [s.to_dict() for s in state.pool.slots.values()],
                "registry": state.catalogue("registry", lambda: [e.to_dict() for e in state.hub.pairs()]),
                "allow_train": settings.allow_train}

    # -- translating ------------------------------------------------------------------
    async def _slot_for(req: TranslateRequest) -> PairSlot:
        pair = state.pool.resolved(req.source, req.target, req.pair)
        if pair is None:  # first time these fields are seen: the look-up may import a plugin
            pair = await run_in_threadpool(state.pool.resolve, req.source, req.target, req.pair)
        src, tgt, name = pair
        slot = state.pool.slots.get(pair_key(src, tgt))
        if slot is None:
            await run_in_threadpool(state.hub.plan, src, tgt)  # an impossible pair fails now, with its reason
            slot = state.pool.ensure(src, tgt, name=name)
        if slot.state == "loading":
            raise Rejected(503, f"pair {slot.key} is loading; retry in a few seconds",
                           headers={"Retry-After": RETRY_AFTER_LOADING})
        if slot.state == "failed":
            raise Rejected(404, f"pair {slot.key} is not served: {slot.error}")
        return slot

    async def _translate(req: TranslateRequest, deadline: float) -> Response:
        slot = await _slot_for(req)
        t = slot.translator
        assert t is not None and slot.batcher is not None
        spec = t.source.spec
        if req.format == "png" and t.target.spec.output_domain != "image":
            raise Rejected(400, f"{slot.target} does not produce images; ask for format 'json'")
        if req.images is not None:  # decoding images is work: keep it off the event loop
            job = await run_in_threadpool(to_job, req, spec.input_domain, spec.input_shape, settings.limits)
        else:
            job = to_job(req, spec.input_domain, spec.input_shape, settings.limits)
        try:
            res: JobResult = await asyncio.wait_for(slot.batcher.submit(job), max(0.0, deadline - time.monotonic()))
        except QueueFull as e:
            raise Rejected(429, f"too many requests waiting for {slot.key} ({e}); retry shortly",
                           limit="max_queue", headers={"Retry-After": "1"}) from None
        except asyncio.TimeoutError:
            raise over("request_timeout_s", f"the request took longer than the limit of "
                                            f"{settings.limits.request_timeout_s:g} s", status=408) from None
        except N2NError as e:
            raise Rejected(_status_of(e), str(e)) from None
        except (ValueError, TypeError) as e:
            raise Rejected(400, str(e)) from None
        state.metrics.samples.labels(slot.key).inc(res.latents.shape[0] * req.n)
        headers = {"X-N2N-Pair": slot.key}
        temperature = t.temperature if req.temperature is None else req.temperature
        small = res.latents.shape[0] * req.n <= 4  # a thread hop costs more than encoding a few tiles
        if req.format == "png":
            body = png_bytes(res.outputs, req.n) if small else await run_in_threadpool(png_bytes, res.outputs, req.n)
            return Response(body, media_type="image/png", headers=headers)
        if req.format == "safetensors":
            body = await run_in_threadpool(safetensors_bytes, res.latents)
            return Response(body, media_type="application/octet-stream", headers=headers)
        answer = await run_in_threadpool(json_answer, req, res, slot.source, slot.target, temperature,
                                         settings.limits)
        return JSONResponse(answer, headers=headers)

    async def _with_deadline(req_coro: Any, deadline: float) -> Response:
        try:
            return await asyncio.wait_for(req_coro, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise over("request_timeout_s", f"the request took longer than the limit of "
                                            f"{settings.limits.request_timeout_s:g} s", status=408) from None

    @app.post("/v1/translate", tags=["translate"], summary="Translate texts, base64 images or source latents",
              openapi_extra={"requestBody": {"required": True,
                                             "content": {"application/json": {"schema": _REQUEST_SCHEMA}}}},
              responses={200: {"content": {"application/json": {}, "image/png": {},
                                           "application/octet-stream": {}}}})
    async def translate(request: Request) -> Response:
        deadline = time.monotonic() + settings.limits.request_timeout_s
        raw = await _read_capped(request, settings.limits.max_body_bytes)
        req = from_fields(parse_json_body(raw), settings.limits)
        return await _with_deadline(_translate(req, deadline), deadline)

    @app.post("/v1/translate/upload", tags=["translate"],
              summary="Translate uploaded image files (multipart: 'images', or a safetensors 'latents' file)",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "properties": {
                      "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
                      "latents": {"type": "string", "format": "binary",
                                  "description": "safetensors file with a 'latents' tensor (B, ...)"},
                      **{k: v for k, v in _REQUEST_SCHEMA["properties"].items()  # type: ignore[attr-defined]
                         if k not in ("texts", "images", "latents")}}}}}}})
    async def translate_upload(request: Request) -> Response:
        deadline = time.monotonic() + settings.limits.request_timeout_s
        limits = settings.limits
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise over("max_body_bytes", f"the request body has {declared} bytes; the limit is {limits.max_body_bytes}")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Rejected(415, "send multipart/form-data with 'images' files (or use POST /v1/translate with JSON)")
        try:
            form = await request.form(max_files=limits.max_inputs + 1, max_fields=32,
                                      max_part_size=limits.max_image_bytes + 1)
        except Exception as e:  # noqa: BLE001 - starlette raises its own types for bad multipart
            raise Rejected(400, f"malformed multipart form: {getattr(e, 'detail', e)}") from None
        fields: dict[str, Any] = {}
        images: list[tuple[str, bytes]] | None = None
        latents = None
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                data = await value.read()
                if key == "images":
                    if len(data) > limits.max_image_bytes:
                        raise over("max_image_bytes", f"{value.filename} has {len(data)} bytes; the limit is "
                                                      f"{limits.max_image_bytes}")
                    images = (images or []) + [(value.filename or f"image {len(images or [])}", data)]
                elif key == "latents":
                    latents = _read_latents(data)
                else:
                    raise Rejected(400, f"unexpected file field {key!r}; send 'images' or 'latents'")
            else:
                fields[key] = value
        req = from_fields(fields, limits, images=images, latents=latents)
        return await _with_deadline(_translate(req, deadline), deadline)

    @app.post("/v1/transfer", tags=["translate"],
              summary="Keep exemplars' residuals, swap their condition (exemplar-guided translation, Eq. 6)",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "type": "object", "properties": {
                      "pair": {"type": "string"}, "source": {"type": "string"}, "target": {"type": "string"},
                      "texts": {"type": "array", "items": {"type": "string"}, "description": "new conditions"},
                      "images": {"type": "array", "items": {"type": "string"}, "description": "new conditions"},
                      "exemplar": {"type": "object", "description": "'texts' or 'images' the exemplars were made "
                                   "from, and 'target_latents' (B, *latent_shape), e.g. from translate's latents"},
                      "format": {"type": "string", "enum": ["json", "png", "safetensors"]},
                      "include_latents": {"type": "boolean"}}}}}}})
    async def transfer(request: Request) -> Response:
        deadline = time.monotonic() + settings.limits.request_timeout_s
        body = parse_json_body(await _read_capped(request, settings.limits.max_body_bytes))
        exemplar = body.pop("exemplar", None)
        if not isinstance(exemplar, dict) or "target_latents" not in exemplar:
            raise Rejected(400, "send 'exemplar': {'texts' or 'images': [...], 'target_latents': [[...], ...]} "
                                "with the exemplars' inputs and their target latents")
        exemplar = dict(exemplar)
        target_latents = exemplar.pop("target_latents")
        req = from_fields(body, settings.limits)
        ex = from_fields({**{k: body[k] for k in ("pair", "source", "target") if k in body}, **exemplar},
                         settings.limits)
        if req.latents is not None or ex.latents is not None:
            raise Rejected(400, "transfer takes 'texts' or 'images' (the source encodes them), not 'latents'")

        async def work() -> Response:
            slot = await _slot_for(req)
            t = slot.translator
            assert t is not None and slot.batcher is not None
            spec = t.source.spec
            new_job = await run_in_threadpool(to_job, req, spec.input_domain, spec.input_shape, settings.limits)
            ex_job = await run_in_threadpool(to_job, ex, spec.input_domain, spec.input_shape, settings.limits)
            try:
                z_ex = torch.tensor(target_latents, dtype=torch.float32).reshape(-1, *t.latent_shape)
            except (TypeError, ValueError, RuntimeError):
                raise Rejected(400, f"'target_latents' must hold {ex_job.count} latents of shape "
                                    f"{list(t.latent_shape)}") from None
            if not (z_ex.shape[0] == ex_job.count == new_job.count):
                raise Rejected(400, f"got {z_ex.shape[0]} target latents, {ex_job.count} exemplar inputs and "
                                    f"{new_job.count} new inputs; send one of each per exemplar")

            def run() -> tuple[torch.Tensor, Any]:
                z = t.transfer(z_ex, ex_job.inputs, new_job.inputs).cpu()
                out = t.target.decode(z.reshape(-1, *t.latent_shape).to(t.target.device)) if req.format != "safetensors" else None
                return z, out

            try:
                z, out = await slot.batcher.run_alone(run)
            except N2NError as e:
                raise Rejected(_status_of(e), str(e)) from None
            headers = {"X-N2N-Pair": slot.key}
            if req.format == "safetensors":
                return Response(await run_in_threadpool(safetensors_bytes, z), media_type="application/octet-stream",
                                headers=headers)
            if req.format == "png":
                if not isinstance(out, torch.Tensor):
                    raise Rejected(400, f"{slot.target} does not produce images; ask for format 'json'")
                return Response(await run_in_threadpool(png_bytes, out, out.shape[0]), media_type="image/png",
                                headers=headers)
            answer: dict[str, Any] = {"source": slot.source, "target": slot.target, "count": int(z.shape[0])}
            if isinstance(out, torch.Tensor):
                answer["grid_png"] = base64.b64encode(await run_in_threadpool(png_bytes, out, out.shape[0])).decode()
            elif isinstance(out, list):
                answer["outputs"] = [str(o) for o in out]
            if req.include_latents:
                answer["latents"] = z.tolist()
            return JSONResponse(answer, headers=headers)

        return await _with_deadline(work(), deadline)

    # -- the page ---------------------------------------------------------------------
    static = resources.files("n2n_hub.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """The OpenAPI page, rendered by our own script (Swagger UI would load from a CDN)."""
        return HTMLResponse((static / "docs.html").read_text(encoding="utf-8"))

    return app


def _read_latents(data: bytes) -> Any:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise Rejected(400, f"cannot read the 'latents' file as safetensors: {e}") from None
    if "latents" not in tensors:
        raise Rejected(400, f"the safetensors file has no 'latents' tensor (it has {sorted(tensors)})")
    return tensors["latents"].float()


def _version() -> str:
    from ..base.version import VERSION as __version__

    return __version__
