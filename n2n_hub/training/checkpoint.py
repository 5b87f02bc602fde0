"""Training checkpoints: one safetensors file (model, optimiser, best weights; scalars as JSON in its header).

A :class:`Checkpointer` writes the run's state every ``checkpoint_every`` steps and, when
the file exists at the start, restores it, so an interrupted run resumes and ends with
exactly the weights of an uninterrupted one (the global RNG state travels with it).
"""

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
from .config import TRAJECTORY_FIELDS, Log, TrainConfig
from .events import emit
from .state import RunState

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
    """The tensors and the header scalars of a checkpoint; TrainingError if it is not one of ours."""
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
    """The tensors whose names start with ``prefix``, without it."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def fingerprint(model: nn.Module, objective: str, n_train: int | None, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: the module's config, the data size, the trajectory fields."""
    trajectory = {k: getattr(config, k) for k in TRAJECTORY_FIELDS}
    return {"model": getattr(model, "config", lambda: {})(), "objective": objective, "n_train": n_train,
            "config": trajectory}


class Checkpointer:
    """Writes a run's checkpoint and resumes from it; one per run with a ``checkpoint_path``."""

    def __init__(self, path: Path, model: nn.Module, opt: torch.optim.Optimizer, run: dict[str, Any],
                 log: Log | None) -> None:
        self.path, self.model, self.opt, self.log = path, model, opt, log
        self.run = run  # the run's fingerprint
        self.expected = json.loads(json.dumps(run))  # as it reads back from a header

    def resume(self, state: RunState, device: torch.device) -> bool:
        """Restore model, optimiser, RNG and ``state`` from the file, if there is one; True when resumed."""
        if not self.path.exists():
            return False
        tensors, meta = load_checkpoint(self.path)
        if meta.get("fingerprint") != self.expected:
            raise TrainingError(f"checkpoint {self.path} belongs to a different run (model, data size or "
                                "training config differ); delete it or choose another checkpoint_path")
        try:
            self.model.load_state_dict(prefixed(tensors, "model."), strict=True)
        except RuntimeError as e:
            raise TrainingError(f"checkpoint {self.path} does not fit the model ({str(e).splitlines()[0]}); "
                                "delete it to start afresh") from None
        self._load_optimizer(tensors)
        best = {k: v.to(device) for k, v in prefixed(tensors, "best.").items()} or None
        torch.set_rng_state(tensors["rng.cpu"])
        state.restore(meta, best)
        emit(self.log, "resume", f"resuming from checkpoint {self.path} at step {state.step}", step=state.step)
        return True

    def _load_optimizer(self, tensors: dict[str, Tensor]) -> None:
        moments: dict[int, dict[str, Tensor]] = {}
        for k, v in prefixed(tensors, "optim.").items():
            i, key = k.split(".", 1)
            moments.setdefault(int(i), {})[key] = v
        self.opt.load_state_dict({"state": moments, "param_groups": self.opt.state_dict()["param_groups"]})

    def save(self, state: RunState) -> None:
        """Write the file at ``state.step`` (atomically: a crash leaves the previous one)."""
        save_checkpoint(self.path, self.model, self.opt, state.best_weights,
                        {**state.scalars(), "fingerprint": self.run})
        emit(self.log, "checkpoint", f"checkpoint written at step {state.step}", step=state.step)
