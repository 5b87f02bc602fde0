"""Where a run stands: the step, the best validation so far, the skip counts, the loss average.

One object, so a checkpoint saves it and a resume restores it whole: the validation,
the step accounting and the checkpoint each update their own fields of the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

# The fields a checkpoint stores as JSON scalars, in its header.
SCALARS = ("step", "best_val", "best_step", "checks_without_gain", "skipped", "consecutive_bad", "train_loss_ema",
           "history")


@dataclass
class RunState:
    """The mutable state of one training run (weights and optimiser moments aside).

    Attributes:
        step: optimizer steps taken.
        best_val, best_step: the lowest finite validation value and the step it was reached at.
        best_weights: a copy of the model's state at ``best_step`` (restored at the end).
        checks_without_gain: validations since the last improvement (early stopping counts these).
        skipped: steps skipped for a non-finite loss or gradient; ``consecutive_bad`` the current run of them.
        train_loss_ema: exponential moving average (0.98) of the finite training losses.
        history: ``{"step", "val"}`` of every validation.
        resumed_from: the step a checkpoint restored, or None for a fresh run.
    """

    step: int = 0
    best_val: float | None = None
    best_step: int | None = None
    best_weights: dict[str, Tensor] | None = None
    checks_without_gain: int = 0
    skipped: int = 0
    consecutive_bad: int = 0
    train_loss_ema: float | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None

    def scalars(self) -> dict[str, Any]:
        """What a checkpoint stores in its header."""
        return {k: getattr(self, k) for k in SCALARS}

    def restore(self, scalars: dict[str, Any], best_weights: dict[str, Tensor] | None) -> None:
        """Take the state a checkpoint saved; the run resumes at its step."""
        for k in SCALARS:
            setattr(self, k, scalars[k])
        self.best_weights = best_weights
        self.resumed_from = self.step
