"""Turning an HTTP request into a :class:`Job`, checking every limit on the way.

Every problem becomes a :class:`Rejected` with one line saying what is wrong and what to
send instead; the messages match the command line's where the same mistake can be made there.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InputError
from ..base.validation import check_texts, number_problem
from .engine import Job
from .settings import Limits

FORMATS = ("json", "png", "safetensors")
TEMPERATURE_RULE = (False, 0.0, 10.0, True)  # as `translate --temperature`
MAX_SEED = 2**63 - 1


@dataclass
class Rejected(Exception):
    """A request the server will not run: HTTP ``status`` and a one-line ``message``."""

    status: int
    message: str
    limit: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict[str, Any]:
        d: dict[str, Any] = {"error": self.message}
        if self.limit:
            d["limit"] = self.limit
        return d


def over(limit: str, message: str, status: int = 413) -> Rejected:
    return Rejected(status, message, limit=limit)


@dataclass
class TranslateRequest:
    """What a caller asked for, before it is bound to a pair's domains."""

    source: str | None
    target: str | None
    pair: str | None
    texts: list[str] | None
    images: list[tuple[str, bytes]] | None      # (name, encoded bytes)
    latents: torch.Tensor | None
    n: int
    temperature: float | None
    seed: int | None
    format: str
    samples: bool                               # per-sample PNGs in the JSON answer
    include_latents: bool                       # latents as JSON arrays in the JSON answer


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Rejected(400, f"malformed JSON: {e}; send an object such as "
                            '{"pair": "bert-vaegan-animals", "texts": ["a zebra"], "n": 4}') from None
    if not isinstance(body, dict):
        raise Rejected(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


_FIELDS = {"source", "target", "pair", "texts", "images", "latents", "n", "temperature", "seed", "format",
           "samples", "include_latents"}


def _int(body: dict[str, Any], key: str, default: int | None, minimum: int) -> int | None:
    v = body.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        else:
            raise Rejected(400, f"'{key}' must be an integer, got {v!r}")
    if v < minimum:
        raise Rejected(400, f"'{key}' must be >= {minimum}, got {v}")
    if v > MAX_SEED:
        raise Rejected(400, f"'{key}' must be <= {MAX_SEED}, got {v}")
    return v


def _temperature(v: Any) -> float | None:
    """The CLI's rule and message for ``--temperature`` (``n2n_hub.base.validation``)."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    problem = number_problem("temperature", v, TEMPERATURE_RULE)
    if problem:
        raise Rejected(400, problem)
    return float(v)


def _bool(v: Any, key: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return v.lower() in ("1", "true", "yes", "on")
    raise Rejected(400, f"'{key}' must be true or false, got {v!r}")


def from_fields(body: dict[str, Any], limits: Limits, images: list[tuple[str, bytes]] | None = None,
                latents: torch.Tensor | None = None) -> TranslateRequest:
    """Check the common fields of a JSON body or a multipart form."""
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise Rejected(400, f"unknown field(s) {unknown}; allowed: {sorted(_FIELDS)}")
    n = _int(body, "n", 1, 1)
    assert n is not None
    if n > limits.max_n:
        raise over("max_n", f"n={n} is more than the limit of {limits.max_n} samples per input")
    fmt = str(body.get("format", "json")).lower()
    if fmt not in FORMATS:
        raise Rejected(400, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    for key in ("source", "target", "pair"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise Rejected(400, f"'{key}' must be a string, got {body[key]!r}")
    texts = body.get("texts")
    if texts is not None:
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise Rejected(400, "'texts' must be a list of strings")
        for i, t in enumerate(texts):
            if len(t) > limits.max_text_chars:
                raise over("max_text_chars", f"text {i} has {len(t)} characters; the limit is {limits.max_text_chars}")
        try:
            check_texts(texts)
        except InputError as e:
            raise Rejected(400, str(e)) from None
    if images is None and body.get("images") is not None:
        imgs = body["images"]
        if not isinstance(imgs, list) or not all(isinstance(s, str) for s in imgs):
            raise Rejected(400, "'images' must be a list of base64-encoded image files")
        images = []
        for i, s in enumerate(imgs):
            if len(s) > limits.max_image_bytes * 4 // 3 + 8:
                raise over("max_image_bytes", f"image {i} is larger than the limit of {limits.max_image_bytes} bytes")
            try:
                images.append((f"image {i}", base64.b64decode(s.split(",", 1)[-1], validate=True)))
            except (binascii.Error, ValueError):
                raise Rejected(400, f"image {i} is not valid base64") from None
    if latents is None and body.get("latents") is not None:
        try:
            latents = torch.tensor(body["latents"], dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise Rejected(400, "'latents' must be a list of equally long lists of numbers (source representations)") from None
        if latents.dim() < 2:
            latents = latents.reshape(1, -1)
        if not torch.isfinite(latents).all():
            raise Rejected(400, "'latents' must be finite numbers")
    given = [k for k, v in (("texts", texts), ("images", images), ("latents", latents)) if v is not None]
    if len(given) != 1:
        raise Rejected(400, "send exactly one of 'texts', 'images' or 'latents'" + (f" (got {given})" if given else ""))
    count = len(texts if texts is not None else images if images is not None else latents)  # type: ignore[arg-type]
    if count == 0:
        raise Rejected(400, f"'{given[0]}' is empty: send at least one input")
    if count > limits.max_inputs:
        raise over("max_inputs", f"{count} inputs is more than the limit of {limits.max_inputs} per request")
    if count * n > limits.max_samples:
        raise over("max_samples", f"{count} inputs x n={n} = {count * n} samples is more than the limit of "
                                  f"{limits.max_samples} per request")
    return TranslateRequest(
        source=body.get("source"), target=body.get("target"), pair=body.get("pair"), texts=texts, images=images,
        latents=latents, n=n, temperature=_temperature(body.get("temperature")), seed=_int(body, "seed", None, 0),
        format=fmt, samples=_bool(body.get("samples", False), "samples"),
        include_latents=_bool(body.get("include_latents", False), "include_latents"))


def decode_image(name: str, data: bytes, shape: tuple[int, ...] | list[int], limits: Limits) -> torch.Tensor:
    """An uploaded image file -> float (C, H, W) in [-1, 1] at the size the source reads."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if len(data) > limits.max_image_bytes:
        raise over("max_image_bytes", f"{name} has {len(data)} bytes; the limit is {limits.max_image_bytes}")
    c, h, w = shape
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise Rejected(400, f"cannot read images with {c} channels; expected 1 or 3")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > limits.max_image_pixels:
                raise over("max_image_pixels", f"{name} has {im.width}x{im.height} pixels; the limit is "
                                               f"{limits.max_image_pixels} pixels")
            im = im.convert(mode).resize((w, h), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32)
    except Rejected:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise Rejected(400, f"cannot read image {name}: {e}") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy()) / 127.5 - 1.0


def to_job(req: TranslateRequest, domain: str | None, input_shape: Any, limits: Limits) -> Job:
    """Bind a request to its pair's source domain."""
    decode = req.format != "safetensors"
    if req.latents is not None:
        return Job("latent", req.latents, req.n, req.temperature, req.seed, decode=decode)
    if req.texts is not None:
        if domain != "text":
            raise Rejected(400, f"this pair's source reads '{domain}' inputs, not texts; send 'images' or 'latents'")
        return Job("text", list(req.texts), req.n, req.temperature, req.seed, decode=decode)
    assert req.images is not None
    if domain != "image":
        raise Rejected(400, f"this pair's source reads '{domain}' inputs, not images; send "
                            f"{'texts' if domain == 'text' else 'latents'}")
    if not input_shape:
        raise Rejected(400, "the source expert does not declare the image size it reads; send 'latents'")
    batch = torch.stack([decode_image(name, data, input_shape, limits) for name, data in req.images])
    return Job("image", batch, req.n, req.temperature, req.seed, decode=decode)
