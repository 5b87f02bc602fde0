"""What a training run is asked for (TrainConfig), what it returns (TrainResult), and its schedule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..spec.kinds import kind_of

Log = Callable[[dict[str, Any]], None]

# What N(0, I) data scores under N(0, I), per dimension: ½·log(2πe) ≈ 1.419 nats. Plain
# maths, kept here so the trainer needs nothing of the flow's package to report it.
REFERENCE_NLL_PER_DIM = 0.5 * (math.log(2 * math.pi) + 1.0)

# TrainConfig fields that change the training trajectory: a checkpoint only resumes a
# run that agrees on all of them (device, progress and checkpoint cadence may differ).
TRAJECTORY_FIELDS = ("steps", "batch_size", "lr", "warmup_steps", "min_lr_ratio", "weight_decay",
                      "grad_clip", "val_fraction", "val_every", "patience", "seed", "bf16")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run; values are checked when the config is built.

    Attributes:
        steps: optimizer steps (one batch each).
        batch_size: pairs per step over all processes. Under torchrun each of N processes
            trains on ``batch_size / N`` of them and DDP averages the gradients, so the effective
            batch, the update and hence the learning rate are those of one process: neither
            needs changing with N (it must divide ``batch_size``).
        lr: peak learning rate of Adam, reached after ``warmup_steps``.
        warmup_steps: linear warmup from ``lr / warmup_steps`` to ``lr``.
        min_lr_ratio: cosine decay ends at ``lr * min_lr_ratio`` at the last step.
        weight_decay: decoupled weight decay (AdamW); 0 is plain Adam.
        grad_clip: clip the global gradient norm to this (0 disables clipping).
        val_fraction: share of the data held out for validation when no ``val`` is given.
        val_every: validate every this many steps (and always after the last step).
        patience: validation checks without improvement before stopping early (0: never stop).
        seed: seeds the split, the batch order and any randomness in the model.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        bf16: bfloat16 autocast for the training step on CUDA; ignored (and said so) on CPU,
            where it is slower than float32 for these matmuls. Validation always runs in float32.
        max_bad_steps: consecutive non-finite steps tolerated before raising TrainingError.
        checkpoint_path: if set, a checkpoint is written there every ``checkpoint_every``
            steps, and training resumes from it when it exists.
        checkpoint_every: steps between checkpoints.
        run_key: what the run is for (the hub passes the translator's key); a checkpoint of
            another key is never resumed.
        progress: show a tqdm progress bar.
        condition_noise: Gaussian noise added to each training condition, with a standard
            deviation of this times the condition's root-mean-square entry (0: none). It
            spreads the training conditions, so the translator also answers conditions off
            the manifold of its training captions (prompts as people write them).
        target_noise: Gaussian noise of this standard deviation, in the target's own units,
            added to each training target (0: none). It smooths the density the flow learns
            around its training latents, so unseen latents of the same kind (held-out images)
            are not scored far below the training set and samples spread over the class
            rather than onto a few memorised codes; an autoencoder's posterior has noise of
            this kind too. Validation always scores clean targets.
        compile: ``torch.compile`` the training step: True always, False never, None (default)
            when the run's remaining steps repay the compile time, judged from a few timed eager
            steps and the compile cost recorded for these shapes (:mod:`n2n_hub.training.compiling`).
            How a translator is computed, not what it is: not part of its cache key.
    """

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    val_fraction: float = 0.1
    val_every: int = 200
    patience: int = 5
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    max_bad_steps: int = 10
    checkpoint_path: Path | None = None
    checkpoint_every: int = 500
    run_key: str | None = None
    progress: bool = True
    condition_noise: float = 0.0
    target_noise: float = 0.0
    compile: bool | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InputError(f"invalid training config: {msg}")

        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "max_bad_steps"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                 f"{name} must be an integer >= 1, got {v!r}")
        for name in ("warmup_steps", "patience", "seed"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                 f"{name} must be an integer >= 0, got {v!r}")
        need(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
             f"lr must be a positive number, got {self.lr!r} (1e-4 to 1e-3 is typical)")
        need(0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             f"weight_decay must be >= 0, got {self.weight_decay!r}")
        need(math.isfinite(self.grad_clip) and self.grad_clip >= 0,
             f"grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip!r}")
        need(math.isfinite(self.condition_noise) and self.condition_noise >= 0,
             f"condition_noise must be >= 0 (0 disables it), got {self.condition_noise!r}")
        need(math.isfinite(self.target_noise) and self.target_noise >= 0,
             f"target_noise must be >= 0 (0 disables it), got {self.target_noise!r}")
        need(0.0 <= self.val_fraction < 1.0, f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        need(self.compile is None or isinstance(self.compile, bool),
             f"compile must be True, False or None (decide from the run's length), got {self.compile!r}")
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise InputError(f"invalid training config: device {self.device!r} is not a torch device; "
                             "use 'cpu' or 'cuda'") from None
        need(dev.type in ("cpu", "cuda"), f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.checkpoint_path is not None:
            self.checkpoint_path = Path(self.checkpoint_path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkpoint_path"] = None if self.checkpoint_path is None else str(self.checkpoint_path)
        for name in ("condition_noise", "target_noise"):
            if not d[name]:  # off: keep the cache keys of translators trained before the option
                del d[name]
        if d["compile"] is None:  # how a step is computed, never what it computes
            del d["compile"]
        return d


@dataclass
class TrainResult:
    """What a run achieved. Validation numbers are per dimension; ``None`` without validation.

    For a cINN ``val_nll``/``best_val_nll`` are NLLs in nats/dim (``*_bits_per_dim`` the
    same in bits); ``reference_nll_per_dim`` = ½·log(2πe) is what N(0, I) data scores
    under N(0, I), so a value below it on standardised targets means the condition
    explains something. For the MLP baseline ``val_mse``/``best_val_mse`` are the
    squared error per dimension. The returned model holds the weights of ``best_step``.
    """

    objective: str
    val_nll: float | None = None
    best_val_nll: float | None = None
    val_bits_per_dim: float | None = None
    best_val_bits_per_dim: float | None = None
    val_mse: float | None = None
    best_val_mse: float | None = None
    reference_nll_per_dim: float = REFERENCE_NLL_PER_DIM
    train_loss: float | None = None
    steps: int = 0
    samples_per_s: float = 0.0
    wall_time_s: float = 0.0
    stopped_early: bool = False
    skipped_steps: int = 0
    best_step: int | None = None
    resumed_from: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def nats_to_bits(x: float) -> float:
    """A per-dimension NLL in nats, in bits."""
    return x / math.log(2)


# -- objectives ---------------------------------------------------------------------------
def objective(model: nn.Module) -> tuple[str, Callable[[Tensor, Tensor], Tensor]]:
    """``(name, f)`` with ``f(z, c)`` the per-sample loss per dimension the model trains on.

    ``name`` is the kind's objective (``nll`` or ``mse``, see :mod:`n2n_hub.spec.kinds`); the
    loss is the module's ``loss(z, c)`` of the translator contract.
    """
    name = kind_of(model).objective
    dim = getattr(model, "dim", None)
    return name, lambda z, c: model.loss(z, c) / dim  # type: ignore[operator]


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of 0-based ``step``: linear warmup, then cosine decay to ``lr·min_lr_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps - 1)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

