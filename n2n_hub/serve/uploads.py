"""Turning a multipart form (uploaded image files or a safetensors file of latents) into a request.

The form's other fields are the JSON body's fields as strings, checked by the same
:func:`~.requests.from_fields`.
"""

from __future__ import annotations

from typing import Any

import torch

from .requests import Rejected, TranslateRequest, from_fields, over
from .settings import Limits

MAX_FORM_FIELDS = 32


async def read_form(request: Any, limits: Limits) -> TranslateRequest:
    """The request of a ``multipart/form-data`` body with ``images`` files or a ``latents`` file."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise over("max_body_bytes", f"the request body has {declared} bytes; the limit is {limits.max_body_bytes}")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Rejected(415, "send multipart/form-data with 'images' files (or use POST /v1/translate with JSON)")
    try:
        form = await request.form(max_files=limits.max_inputs + 1, max_fields=MAX_FORM_FIELDS,
                                  max_part_size=limits.max_image_bytes + 1)
    except Rejected:
        raise  # the body's deadline passed
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
                latents = read_latents_file(data)
            else:
                raise Rejected(400, f"unexpected file field {key!r}; send 'images' or 'latents'")
        else:
            fields[key] = value
    return from_fields(fields, limits, images=images, latents=latents)


def read_latents_file(data: bytes) -> torch.Tensor:
    """The ``latents`` tensor of an uploaded safetensors file, as float32."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise Rejected(400, f"cannot read the 'latents' file as safetensors: {e}") from None
    if "latents" not in tensors:
        raise Rejected(400, f"the safetensors file has no 'latents' tensor (it has {sorted(tensors)})")
    return tensors["latents"].float()
