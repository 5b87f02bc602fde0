"""Training checkpoints: one safetensors file (model, optimiser, best weights; scalars as JSON in its header)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..base.atomic import atomic_path
from ..errors import TrainingError

CHECKPOINT_FORMAT = "n2n-hub-train-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                     best: dict[str, Tensor] | None, state: dict[str, Any]) -> None:
    """One file: model, optimizer moments and best weights as tensors; scalars as JSON in the header."""
    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if best is not None:
        tensors.update({f"best.{k}": v.to("cpu").contiguous() for k, v in best.items()})
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{i}.{k}"] = v.detach().to("cpu").contiguous().reshape(v.shape)
    tensors["rng.cpu"] = torch.get_rng_state()
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"n2n_hub": json.dumps(meta, sort_keys=True)})


def load_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("n2n_hub")
        tensors = load_file(str(path))
        meta = json.loads(raw) if raw is not None else None
    except (SafetensorError, OSError, ValueError) as e:
        raise TrainingError(f"checkpoint {path} is unreadable ({e}); delete it to start training afresh") from None
    if not meta or meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path} is not an n2n-hub training checkpoint of version {CHECKPOINT_VERSION}; "
                            "delete it or choose another checkpoint_path")
    return tensors, meta


def prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# -- the loop -----------------------------------------------------------------------------
