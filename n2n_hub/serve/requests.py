"""Turning an HTTP request into a :class:`Job`, checking every limit on the way.

Every problem becomes a :class:`Rejected` with one line saying what is wrong and what to
send instead; the messages match the command line's where the same mistake can be made there.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InputError
from ..base.validation import check_texts, number_problem
from .engine import Job, TransferJob
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


async def read_body(request: Any, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is past ``limit`` bytes."""
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


def shown(v: Any, width: int = 60) -> str:
    """``repr(v)`` cut to ``width`` characters: a message never echoes a caller's megabytes."""
    text = repr(v)
    return text if len(text) <= width else text[:width] + "..."


def parse_json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Rejected(400, f"malformed JSON: {e}; send an object such as "
                            '{"pair": "bert-vaegan-animals", "texts": ["a zebra"], "n": 4}') from None
    except RecursionError:
        raise Rejected(400, "the JSON body is nested too deeply; send an object such as "
                            '{"pair": "bert-vaegan-animals", "texts": ["a zebra"], "n": 4}') from None
    if not isinstance(body, dict):
        raise Rejected(400, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


_FIELDS = {"source", "target", "pair", "texts", "images", "latents", "n", "temperature", "seed", "format",
           "samples", "include_latents"}


_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,30}\s*\Z")  # ASCII digits: str.isdigit also takes '²'


def _int(body: dict[str, Any], key: str, default: int | None, minimum: int, optional: bool = True) -> int | None:
    v = body.get(key, default)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, str) and _INTEGER.match(v):
            v = int(v)
        else:
            raise Rejected(400, f"'{key}' must be an integer, got {shown(v)}")
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
            raise Rejected(400, f"temperature must be a number, got {shown(v)}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Rejected(400, f"temperature must be a number, got {shown(v)}")
    problem = number_problem("temperature", v, TEMPERATURE_RULE)
    if problem:
        raise Rejected(400, problem)
    return float(v)


def _bool(v: Any, key: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        return v.lower() in ("1", "true", "yes", "on")
    raise Rejected(400, f"'{key}' must be true or false, got {shown(v)}")


def from_fields(body: dict[str, Any], limits: Limits, images: list[tuple[str, bytes]] | None = None,
                latents: torch.Tensor | None = None) -> TranslateRequest:
    """Check the common fields of a JSON body or a multipart form."""
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise Rejected(400, f"unknown field(s) {shown(unknown)}; allowed: {sorted(_FIELDS)}")
    n = _int(body, "n", 1, 1, optional=False)
    assert n is not None
    if n > limits.max_n:
        raise over("max_n", f"n={n} is more than the limit of {limits.max_n} samples per input")
    fmt = body.get("format", "json")
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise Rejected(400, f"unknown format {shown(fmt)}; use one of {', '.join(FORMATS)}")
    fmt = fmt.lower()
    for key in ("source", "target", "pair"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise Rejected(400, f"'{key}' must be a string, got {shown(body[key])}")
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
        except (TypeError, ValueError, RuntimeError, OverflowError, RecursionError):
            raise Rejected(400, "'latents' must be a list of equally long lists of numbers (source representations)") from None
    if latents is not None:  # JSON arrays or an uploaded tensor: one row per input (their range: dispatch.check_inputs)
        if latents.dim() == 0:
            raise Rejected(400, "'latents' must hold one row per input (a list of lists), not a single number")
        if latents.dim() == 1:
            latents = latents.reshape(1, -1)
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
    """An uploaded image file -> float (C, H, W) in [-1, 1] at the size the source reads
    (the command line's reader, :func:`n2n_hub.base.inputs.read_image`, with the server's limits)."""
    from ..base.inputs import TooManyPixels, read_image

    if len(data) > limits.max_image_bytes:
        raise over("max_image_bytes", f"{name} has {len(data)} bytes; the limit is {limits.max_image_bytes}")
    try:
        return read_image(data, shape, name=name, max_pixels=limits.max_image_pixels)
    except TooManyPixels as e:
        raise over("max_image_pixels", str(e)) from None
    except InputError as e:
        raise Rejected(400, str(e)) from None


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


@dataclass
class TransferRequest:
    """A transfer: new conditions (``request``), the exemplars' inputs and their target latents."""

    request: TranslateRequest
    exemplar: TranslateRequest
    target_latents: Any


def transfer_fields(body: dict[str, Any], limits: Limits) -> TransferRequest:
    """Check a transfer body: the translate fields for the new conditions, plus ``exemplar``."""
    exemplar = body.pop("exemplar", None)
    if not isinstance(exemplar, dict) or "target_latents" not in exemplar:
        raise Rejected(400, "send 'exemplar': {'texts' or 'images': [...], 'target_latents': [[...], ...]} "
                            "with the exemplars' inputs and their target latents")
    exemplar = dict(exemplar)
    target_latents = exemplar.pop("target_latents")
    req = from_fields(body, limits)
    ex = from_fields({**{k: body[k] for k in ("pair", "source", "target") if k in body}, **exemplar}, limits)
    if req.latents is not None or ex.latents is not None:
        raise Rejected(400, "transfer takes 'texts' or 'images' (the source encodes them), not 'latents'")
    return TransferRequest(req, ex, target_latents)


def to_transfer_job(tr: TransferRequest, domain: str | None, input_shape: Any, latent_shape: tuple[int, ...],
                    limits: Limits) -> TransferJob:
    """Bind a transfer to its pair: both sets of inputs to the source's domain, the latents to the target's shape."""
    new = to_job(tr.request, domain, input_shape, limits)
    ex = to_job(tr.exemplar, domain, input_shape, limits)
    try:
        z = torch.tensor(tr.target_latents, dtype=torch.float32).reshape(-1, *latent_shape)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        raise Rejected(400, f"'target_latents' must hold {ex.count} latents of shape {list(latent_shape)}") from None
    if not (z.shape[0] == ex.count == new.count):
        raise Rejected(400, f"got {z.shape[0]} target latents, {ex.count} exemplar inputs and "
                            f"{new.count} new inputs; send one of each per exemplar")
    return TransferJob(new.kind, new.inputs, ex.inputs, z, decode=new.decode)
