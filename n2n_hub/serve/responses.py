"""Turning results into answers: a PNG grid, JSON with per-sample facts, or safetensors latents."""

from __future__ import annotations

import base64
import io
from typing import Any

import torch

from ..base.images import grid_image
from .engine import JobResult
from .requests import Rejected, TranslateRequest
from .settings import Limits

# zlib level 1: half the time of PIL's default level 6 on these grids (0.12 against 0.25 ms for
# one vaegan@animals tile), about 14 % larger, and as deterministic (same pixels, same bytes),
# which seeded answers need.
PNG_LEVEL = 1


def png_bytes(images: torch.Tensor, ncol: int, native: bool = False) -> bytes:
    """A grid of ``(N, C, H, W)`` images in [-1, 1]: one row per input, one column per sample.

    ``native``: no padding or enlargement (one sample at the target's own resolution).
    """
    buf = io.BytesIO()
    kw = {"min_tile": 1, "pad": 0} if native else {}
    grid_image(images.cpu(), ncol=ncol, **kw).save(buf, format="PNG", compress_level=PNG_LEVEL)
    return buf.getvalue()


def safetensors_bytes(latents: torch.Tensor) -> bytes:
    """The latents alone: safetensors writes a metadata table in no fixed order, and seeded
    answers must be byte-identical, so the pair travels in the ``X-N2N-Pair`` header instead."""
    from safetensors.torch import save

    return save({"latents": latents.contiguous()})


def input_labels(req: TranslateRequest, count: int) -> list[str]:
    if req.texts is not None:
        return list(req.texts)
    if req.images is not None:
        return [name for name, _ in req.images]
    return [f"latent {i}" for i in range(count)]


def json_answer(req: TranslateRequest, res: JobResult, source: str, target: str, temperature: float,
                limits: Limits) -> dict[str, Any]:
    """The same facts as ``n2n-hub translate --json``, plus the grid and optional extras."""
    count, n = res.latents.shape[0], req.n
    labels = input_labels(req, count)
    rows = [{"input": label, "samples": res.info[i * n:(i + 1) * n]} for i, label in enumerate(labels)]
    out: dict[str, Any] = {"source": source, "target": target, "temperature": temperature, "n": n, "seed": req.seed,
                           "results": rows}
    images = res.outputs if isinstance(res.outputs, torch.Tensor) else None
    if images is not None:
        out["grid_png"] = base64.b64encode(png_bytes(images, ncol=n)).decode()
        if req.samples:
            for i, row in enumerate(rows):
                row["images_png"] = [base64.b64encode(png_bytes(images[k:k + 1], ncol=1, native=True)).decode()
                                     for k in range(i * n, (i + 1) * n)]
    elif isinstance(res.outputs, list):
        for i, row in enumerate(rows):
            row["outputs"] = [str(o) for o in res.outputs[i * n:(i + 1) * n]]
    if req.include_latents:
        if res.latents.numel() > limits.max_json_latents:
            raise Rejected(413, f"{res.latents.numel()} latent numbers are more than the limit of "
                                f"{limits.max_json_latents} as JSON; ask for format 'safetensors'",
                           limit="max_json_latents")
        out["latent_shape"] = list(res.latents.shape)
        out["latents"] = res.latents.tolist()
    return out


def transfer_answer(req: TranslateRequest, z: torch.Tensor, outputs: Any, source: str, target: str) -> dict[str, Any]:
    """A transfer's JSON: the pair, the count, one grid row of the outputs, optionally the latents."""
    answer: dict[str, Any] = {"source": source, "target": target, "count": int(z.shape[0])}
    if isinstance(outputs, torch.Tensor):
        answer["grid_png"] = base64.b64encode(png_bytes(outputs, outputs.shape[0])).decode()
    elif isinstance(outputs, list):
        answer["outputs"] = [str(o) for o in outputs]
    if req.include_latents:
        answer["latents"] = z.tolist()
    return answer
