"""What a planned training run will cost, before it runs: parameters, steps, and time from one timed step.

The step is the trainer's own (loss, backward, clip, Adam) on random rows of the planned
shapes, so the estimate needs neither the experts nor the data; encoding the data is
extra and depends on the experts, and the estimate says so.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..base.distributed import World
from .config import TrainConfig
from .step import adam, train_step


@dataclass(frozen=True)
class TrainingEstimate:
    """Parameters of the module, the run's steps and batch, and the seconds one step and the run take here."""

    parameters: int
    steps: int
    batch_size: int
    step_seconds: float
    device: str

    @property
    def seconds(self) -> float:
        return self.steps * self.step_seconds

    def to_dict(self) -> dict[str, Any]:
        return {"parameters": self.parameters, "steps": self.steps, "batch_size": self.batch_size,
                "step_seconds": round(self.step_seconds, 5), "training_seconds": round(self.seconds, 1),
                "device": self.device}

    def describe(self) -> str:
        return (f"{self.steps} steps of batch {self.batch_size}, {self.parameters:,} parameters; one step takes "
                f"{self.step_seconds * 1e3:.0f} ms on {self.device} here, so training takes about "
                f"{_duration(self.seconds)} (plus encoding the data once; cached features make that free)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate(module: nn.Module, condition_shape: tuple[int, ...], condition_dtype: torch.dtype, dim: int,
             config: TrainConfig, timed_steps: int = 3) -> TrainingEstimate:
    """Time the trainer's step on ``module`` with random rows; the best of ``timed_steps`` counts.

    ``module`` is trained for those few steps, so pass a fresh one that will not be used.
    """
    device = torch.device(config.device)
    module = module.to(device).train()
    g = torch.Generator().manual_seed(0)
    b = config.batch_size
    z = torch.randn(b, dim, generator=g).to(device)
    if condition_dtype.is_floating_point:
        c = torch.randn(b, *condition_shape, generator=g).to(device)
    else:
        classes = int(getattr(getattr(module, "condition", None), "num_classes", None) or 2)
        c = torch.randint(classes, (b, *condition_shape), generator=g).to(device)
    fit, wants_fit = getattr(module, "fit_condition", None), getattr(module, "needs_condition_fit", None)
    if callable(fit) and callable(wants_fit) and wants_fit():  # a fitted part (the class probe): any labels do
        classes = int(getattr(module, "condition_projection", None) or 2)
        fit(c, torch.arange(b, device=device) % classes)
    init = getattr(module, "initialize", None)
    needs = getattr(module, "needs_data_init", None)
    if callable(init) and callable(needs) and needs():
        rows = int(getattr(module, "data_init_rows", lambda: 0)())
        init(z, c, whitening_rows=torch.randn(max(rows, b), dim, generator=g).to(device) if rows else None)
    params = [p for p in module.parameters() if p.requires_grad]
    opt = adam(params, config)
    best = float("inf")
    for i in range(timed_steps + 1):  # the first step warms allocators and kernels up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        train_step(module.loss, opt, params, c, z, config.grad_clip, contextlib.nullcontext(), World(), False)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            best = min(best, time.perf_counter() - t)
    return TrainingEstimate(sum(p.numel() for p in module.parameters()), config.steps, b, best, str(device))
