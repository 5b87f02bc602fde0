"""The FastAPI application, assembled from the routers of :mod:`.routes`.

Requests are decoded (:mod:`.requests`, :mod:`.uploads`), run through the pair's
:class:`~.batching.Batcher` (:mod:`.dispatch`, :mod:`.engine`) and encoded back
(:mod:`.responses`); the model work runs in one worker thread per pair, so the event loop keeps
answering health checks and the page while a batch computes. The API key, metrics and access
logs are one middleware (:mod:`.middleware`); what the server holds is :class:`.state.ServerState`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..errors import N2NError
from .. import Translator
from .dispatch import error, status_of
from .middleware import GuardAndLog
from .requests import Rejected
from .routes import catalogue, health, page, transfer, translate
from .settings import ServeSettings
from .state import ServerState


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServerState = app.state.n2n
    await run_in_threadpool(state.start)
    yield
    await state.close()  # uvicorn has already let in-flight requests finish


async def _rejected(request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, Rejected)
    return error(e.status, e.message, e.limit, e.headers or None)


async def _n2n_error(request: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, N2NError)
    return error(status_of(e), str(e))


async def _gone(request: Request, e: Exception) -> JSONResponse:
    """The client closed its connection mid-body: nobody reads this answer, but it is not our error."""
    return error(400, "the connection closed before the whole request body arrived")


def create_app(hub: Any, settings: ServeSettings | None = None, pairs: list[str] | None = None,
               translators: list[Translator] | None = None) -> FastAPI:
    """The server for ``hub``: serve ``pairs`` (names or ``SRC,TGT``; default: cached + the offline default)
    and any already loaded ``translators``. A pair that cannot be planned fails here, before anything starts."""
    settings = settings or ServeSettings()
    state = ServerState(hub, settings, list(pairs or []), list(translators or []))
    app = FastAPI(title="n2n-hub", summary="Network-to-network translations over HTTP",
                  version=_version(), lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.n2n = state
    app.add_middleware(GuardAndLog, metrics=state.metrics, api_key=settings.api_key,
                       body_timeout_s=settings.limits.body_timeout_s)
    app.add_exception_handler(Rejected, _rejected)
    app.add_exception_handler(N2NError, _n2n_error)
    app.add_exception_handler(ClientDisconnect, _gone)
    for router in (health.router, catalogue.router, translate.router, transfer.router, page.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(page.STATIC)), name="static")
    return app


def _version() -> str:
    from ..base.version import VERSION as __version__

    return __version__

