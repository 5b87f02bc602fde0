"""Weights files: safetensors with the config (JSON) and training facts (test metrics) in the metadata.

No pickle anywhere: a file is tensors plus strings, so loading one cannot run code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from n2n_hub.atomic import atomic_path
from n2n_hub.errors import CacheError, InputError, MissingWeightsError

from .config import SegmenterConfig
from .model import Segmenter

FORMAT = "n2n-segmenter"
FORMAT_VERSION = "1"
TRAIN_HINT = "'n2n-hub train-expert segmenter --dataset animals'"


def save_weights(model: Segmenter, path: str | os.PathLike[str], info: dict[str, Any] | None = None,
                 dtype: torch.dtype = torch.float16) -> Path:
    """Write ``model`` atomically; floating tensors are stored as ``dtype`` (fp16 halves the size)."""
    tensors = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
               for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_json(),
                "info": json.dumps(info or {}, sort_keys=True)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def resolve_weights_file(path: str | os.PathLike[str]) -> Path:
    """A ``.safetensors`` file, or a folder holding exactly one (``segmenter.safetensors`` wins)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"))
        named = [f for f in files if f.name == "segmenter.safetensors"]
        if named:
            return named[0]
        if len(files) == 1:
            return files[0]
        if not files:
            raise MissingWeightsError(f"no .safetensors file in {p}; train one with {TRAIN_HINT[:-1]} "
                                      f"--out {p / 'segmenter.safetensors'}'")
        raise InputError(f"{p} holds several .safetensors files ({', '.join(f.name for f in files)}); "
                         "name one file, or call the one to use segmenter.safetensors")
    raise MissingWeightsError(f"segmenter weights not found at {p}; train them with {TRAIN_HINT[:-1]} --out {p}'")


def read_weights(path: str | os.PathLike[str]) -> tuple[SegmenterConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Config, float32 state dict and training info of a weights file."""
    file = resolve_weights_file(path)
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CacheError(f"{file} is not a readable safetensors file ({e}); delete it and train it again "
                         f"with {TRAIN_HINT}") from e
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CacheError(f"{file} is not a segmenter weights file (metadata format={meta.get('format')!r}); "
                         f"use a file written by {TRAIN_HINT}")
    try:
        cfg = SegmenterConfig.from_json(meta["config"])
        info = json.loads(meta.get("info", "{}"))
    except (ValueError, TypeError) as e:
        raise CacheError(f"{file} has an invalid segmenter config in its metadata ({e}); train it again") from e
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return cfg, state, info


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[Segmenter, dict[str, Any]]:
    """Rebuild the segmenter of a weights file, in eval mode on ``device``."""
    cfg, state, info = read_weights(path)
    model = Segmenter(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CacheError(f"{resolve_weights_file(path)} does not match its own config ({str(e)[:300]}); "
                         "train it again") from e
    return model.to(device).eval().requires_grad_(False), info
