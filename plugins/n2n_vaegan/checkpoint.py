"""vaegan weights files: safetensors with the config (JSON) and training facts in the metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from n2n_hub.errors import CacheError
from n2n_hub.weights_file import WeightsFormat

from .config import VAEGANConfig
from .model import VAEGAN

WEIGHTS = WeightsFormat(expert_id="vaegan", format="n2n-vaegan", train_command="n2n-hub train-expert vaegan --dataset animals")


def save_weights(model: VAEGAN, path: str | os.PathLike[str], info: dict[str, Any] | None = None,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write ``model`` atomically; floating tensors are stored as ``dtype``."""
    return WEIGHTS.save(model, model.config.to_json(), path, info, dtype)


def resolve_weights_file(path: str | os.PathLike[str]) -> Path:
    """A ``.safetensors`` file, or a folder holding exactly one (``vaegan.safetensors`` wins)."""
    return WEIGHTS.resolve(path)


def read_weights(path: str | os.PathLike[str]) -> tuple[VAEGANConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Config, float32 state dict and training info of a weights file."""
    config_json, state, info, file = WEIGHTS.read(path)
    try:
        cfg = VAEGANConfig.from_json(config_json)
    except (ValueError, TypeError) as e:
        raise CacheError(f"{file} has an invalid vaegan config in its metadata ({e}); train it again") from e
    return cfg, state, info


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[VAEGAN, dict[str, Any]]:
    """Rebuild the autoencoder of a weights file, in eval mode on ``device``."""
    cfg, state, info = read_weights(path)
    return WEIGHTS.load_into(VAEGAN(cfg), state, resolve_weights_file(path), device), info
