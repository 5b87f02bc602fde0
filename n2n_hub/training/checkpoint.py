"""Training checkpoints: one safetensors file (model, optimiser, best weights; scalars as JSON in its header).

A :class:`Checkpointer` writes the run's state every ``checkpoint_every`` steps and, when
the file exists at the start, restores it, so an interrupted run resumes and ends with
exactly the weights of an uninterrupted one (the global RNG state travels with it).

A checkpoint carries a sha256 over its header and every tensor, and the fingerprint of
its run (the translator's key among it): a damaged file, a foreign one, or another run's
is a :class:`CheckpointError`, on which the hub starts the run afresh and says why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..base.atomic import atomic_path
from ..errors import CheckpointError
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
    header = json.dumps({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, sort_keys=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"n2n_hub": header, "sha256": digest(header, tensors)})


def digest(header: str, tensors: dict[str, Tensor]) -> str:
    """sha256 over the header and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(header.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors and the header scalars of a checkpoint; CheckpointError unless it is ours and whole."""
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
        tensors = load_file(str(path))
        header = raw.get("n2n_hub")
        meta = json.loads(header) if header is not None else None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({str(e).splitlines()[0][:200]})") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or \
            meta.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} is not an n2n-hub training checkpoint of version "
                              f"{CHECKPOINT_VERSION}")
    if raw.get("sha256") != digest(header, tensors):
        raise CheckpointError(f"checkpoint {path} is damaged: its contents do not match the sha256 it was "
                              "written with")
    return tensors, meta


def prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors whose names start with ``prefix``, without it."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def fingerprint(model: nn.Module, objective: str, n_train: int | None, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: the run's key, the module's config, the data size
    and the trajectory fields."""
    trajectory = {k: getattr(config, k) for k in TRAJECTORY_FIELDS}
    return {"model": getattr(model, "config", lambda: {})(), "objective": objective, "n_train": n_train,
            "config": trajectory, "run_key": config.run_key}


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
            mine, theirs = self.expected, meta.get("fingerprint") or {}
            what = [k for k in ("run_key", "model", "n_train", "config", "objective")
                    if not isinstance(theirs, dict) or theirs.get(k) != mine.get(k)]
            raise CheckpointError(f"checkpoint {self.path} belongs to another run (its "
                                  f"{', '.join(what) or 'fingerprint'} differ)")
        steps = self.expected["config"]["steps"]
        step = meta.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= steps:
            raise CheckpointError(f"checkpoint {self.path} says step {step!r}, outside this run's 0..{steps}")
        try:
            self.model.load_state_dict(prefixed(tensors, "model."), strict=True)
            self._load_optimizer(tensors)
            best = {k: v.to(device) for k, v in prefixed(tensors, "best.").items()} or None
            torch.set_rng_state(tensors["rng.cpu"])
            state.restore(meta, best)
        except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as e:
            raise CheckpointError(f"checkpoint {self.path} does not fit this run "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
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
