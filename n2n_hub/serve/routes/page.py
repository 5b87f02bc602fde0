"""The page at ``/`` and the offline OpenAPI page at ``/docs`` (their assets are mounted at ``/static``)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

STATIC = resources.files("n2n_hub.serve") / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


@router.get("/docs")
async def docs() -> HTMLResponse:
    """The OpenAPI page, rendered by our own script (Swagger UI would load from a CDN)."""
    return HTMLResponse((STATIC / "docs.html").read_text(encoding="utf-8"))
