"""The OpenAPI descriptions of the request bodies (the routes read raw bodies, so FastAPI cannot infer them)."""

from __future__ import annotations

from typing import Any

EXAMPLE = {"pair": "bert-vaegan-animals", "texts": ["a photo of a zebra"], "n": 4, "temperature": 0.8, "seed": 0,
           "format": "json"}

TRANSLATE_FIELDS: dict[str, Any] = {
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
}

TRANSLATE = {"type": "object", "properties": TRANSLATE_FIELDS, "example": EXAMPLE}

UPLOAD = {"type": "object", "properties": {
    "images": {"type": "array", "items": {"type": "string", "format": "binary"}},
    "latents": {"type": "string", "format": "binary", "description": "safetensors file with a 'latents' tensor (B, ...)"},
    **{k: v for k, v in TRANSLATE_FIELDS.items() if k not in ("texts", "images", "latents")}}}

TRANSFER = {"type": "object", "properties": {
    "pair": {"type": "string"}, "source": {"type": "string"}, "target": {"type": "string"},
    "texts": {"type": "array", "items": {"type": "string"}, "description": "new conditions"},
    "images": {"type": "array", "items": {"type": "string"}, "description": "new conditions"},
    "exemplar": {"type": "object", "description": "'texts' or 'images' the exemplars were made from, and "
                                                  "'target_latents' (B, *latent_shape), e.g. from translate's latents"},
    "format": {"type": "string", "enum": ["json", "png", "safetensors"]},
    "include_latents": {"type": "boolean"}}}


def body(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is ``schema`` as ``media_type``."""
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}
