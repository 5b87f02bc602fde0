"""What the server offers: the experts its plugins provide and the pairs it serves or knows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..dispatch import state_of

router = APIRouter(tags=["catalogue"])


@router.get("/v1/experts", summary="Experts the installed plugins provide")
async def experts(request: Request) -> list[dict[str, Any]]:
    state = state_of(request)
    return state.catalogue("experts", lambda: [s.to_dict() for s in state.hub.experts()])  # type: ignore[no-any-return]


@router.get("/v1/pairs", summary="Pairs served (with their state) and pairs the registry knows")
async def pairs(request: Request) -> dict[str, Any]:
    state = state_of(request)
    return {"served": [s.to_dict() for s in state.pool.slots.values()],
            "registry": state.catalogue("registry", lambda: [e.to_dict() for e in state.hub.pairs()]),
            "allow_train": state.settings.allow_train}
