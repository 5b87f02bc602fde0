"""Host-sync accounting: each step's ``[loss, grad norm]`` read back in one transfer per batch of steps.

A step whose loss or gradient is not finite must not reach Adam at all (even a masked
update would advance its moments and step count); the fused Adam skips it on the device
when given ``found_inf``, so on CUDA the numbers are read back every 32 steps, and always
before validation, a checkpoint and the end, so skip warnings, the loss average and the
early stop see every step. On CPU (where a read costs nothing) and with an optimiser
without a fused kernel, they are read after each step and the host decides whether to update.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor

from ..errors import TrainingError
from .config import Log, TrainConfig
from .events import emit
from .state import RunState

# Steps queued between host reads on CUDA, where the optimizer skips bad steps on the device:
# skip warnings and the progress bar lag by at most this many steps.
READ_EVERY_CUDA = 32


class StepLedger:
    """The steps not yet read back, and what reading them updates: skips, the loss average, the progress bar."""

    def __init__(self, state: RunState, config: TrainConfig, name: str, log: Log | None) -> None:
        self.state, self.config, self.name, self.log = state, config, name, log
        self.pending: list[tuple[int, Tensor]] = []  # (step, [loss, grad norm]) not yet read back
        self.samples, self.seconds = 0, 0.0
        self.bar = None
        if config.progress:
            from ..base.progress import tqdm

            self.bar = tqdm(total=config.steps, initial=state.step, desc=f"train ({name})", unit="step",
                            dynamic_ncols=True)

    def add(self, at: int, stat: Tensor) -> None:
        """Queue step ``at``'s numbers, still on the device."""
        self.pending.append((at, stat))

    @property
    def due(self) -> bool:
        """Whether enough steps are queued to read them back now."""
        return len(self.pending) >= READ_EVERY_CUDA

    def settle(self) -> bool:
        """Read the pending steps' numbers in one transfer and account for them; True if the last was finite."""
        if not self.pending:
            return True
        values = torch.stack([v for _, v in self.pending]).tolist()  # the only host read of the loop
        ok = True
        try:
            for (at, _), (loss_v, gnorm_v) in zip(self.pending, values):
                ok = self._account(at, loss_v, gnorm_v)
        finally:
            self.pending.clear()
        self._show()
        return ok

    def _account(self, at: int, loss_v: float, gnorm_v: float) -> bool:
        state = self.state
        if math.isfinite(loss_v) and math.isfinite(gnorm_v):
            state.consecutive_bad = 0
            ema = state.train_loss_ema
            state.train_loss_ema = loss_v if ema is None else 0.98 * ema + 0.02 * loss_v
            return True
        state.skipped += 1
        state.consecutive_bad += 1
        emit(self.log, "skip", f"step {at}: non-finite {'loss' if not math.isfinite(loss_v) else 'gradient'}"
             f" (loss {loss_v:.4g}, gradient norm {gnorm_v:.4g}), step skipped without updating the "
             "weights", logging.WARNING, step=at)
        if state.consecutive_bad >= self.config.max_bad_steps:
            raise TrainingError(
                f"{state.consecutive_bad} consecutive training steps had a non-finite loss or gradient "
                f"(last at step {at}). Lower the learning rate (lr={self.config.lr:g}), normalise the "
                "inputs (zero mean, unit variance per dimension), and check the data for NaN/inf.")
        return False

    def tick(self, samples: int, seconds: float) -> None:
        """Count one step's samples (over all processes) and its time."""
        self.samples += samples
        self.seconds += seconds
        if self.bar is not None:
            self.bar.update(1)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def _show(self) -> None:
        ema = self.state.train_loss_ema
        if self.bar is not None and ema is not None and self.seconds > 0:
            self.bar.set_postfix({self.name: f"{ema:.4f}", "samples/s": f"{self.samples_per_s:.0f}"}, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

