"""Held-out evaluation and early stopping: score the held-out pairs, keep the best weights, stop without gain."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..base import distributed
from .batches import to_device
from .config import Log, objective
from .events import emit
from .state import RunState


@torch.no_grad()
def evaluate(model: nn.Module, source: Tensor, target: Tensor, batch_size: int = 1024,
             device: str | torch.device | None = None) -> float:
    """Mean objective per dimension (NLL nats/dim or MSE/dim) over a held-out set, in float32/64.

    The model is evaluated in eval mode; the running sum stays on the device and is read once.
    """
    _, f = objective(model)
    ref = next(model.parameters())
    device = torch.device(device) if device is not None else ref.device
    was = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    try:
        for i in range(0, target.shape[0], batch_size):
            c = to_device(source[i:i + batch_size], device, ref.dtype)
            z = to_device(target[i:i + batch_size], device, ref.dtype)
            total += f(z, c).double().sum()
    finally:
        model.train(was)
    return float(total) / target.shape[0]


class Validator:
    """Scores the held-out pairs (each rank its share) and decides when patience runs out."""

    def __init__(self, model: nn.Module, pairs: tuple[Tensor, Tensor], device: torch.device, patience: int,
                 log: Log | None) -> None:
        self.model, self.pairs, self.device, self.patience, self.log = model, pairs, device, patience, log
        self.name = objective(model)[0]

    def check(self, state: RunState, last: bool = False) -> bool:
        """Validate at ``state.step`` and remember the best weights.

        True, announced as an ``early_stop`` event, when patience runs out before the ``last`` step.
        """
        at = state.step
        value = distributed.sharded_mean(lambda s, t: evaluate(self.model, s, t, device=self.device), *self.pairs)
        state.history.append({"step": at, "val": value})
        if math.isfinite(value) and (state.best_val is None or value < state.best_val):
            state.best_val, state.best_step, state.checks_without_gain = value, at, 0
            state.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            state.checks_without_gain += 1
        unit = "nats/dim" if self.name == "nll" else "per dim"
        emit(self.log, "val", f"step {at}: validation {self.name} {value:.4f} {unit} "
             f"(best {state.best_val} at {state.best_step})", step=at, value=value, best=state.best_val)
        if last or not (self.patience > 0 and state.checks_without_gain >= self.patience):
            return False
        emit(self.log, "early_stop", f"no validation gain for {self.patience} checks: stopping at step {at}, "
             f"restoring the weights of step {state.best_step}", step=at)
        return True
