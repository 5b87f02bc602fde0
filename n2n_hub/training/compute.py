"""What training a translator cost: wall time, device, processes, steps, samples, FLOPs, energy.

The paper reports the compute of each of its translators (Table S1: GPU, hours, kWh);
this record lets a user compare. Matmul FLOPs are counted, not estimated: one training
step (forward and backward of one global batch) runs under
:class:`torch.utils.flop_counter.FlopCounterMode`, which counts every matmul-type op
(mm, addmm, bmm, convolutions) at 2 FLOPs per multiply-add. The total is that count per
sample times the samples seen; validation and the data-dependent initialisation are
not included (they are small next to training and not part of the optimisation).

Energy comes from the GPU driver's cumulative counter (NVML ``TotalEnergyConsumption``)
when the run is on CUDA and ``pynvml`` can read it; it is then labelled
``"source": "nvml"``. On CPU the record has no energy: there is no counter to read and we
do not guess.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn


@dataclass
class ComputeRecord:
    """The cost of one training run, as stored in the translator's metadata under ``compute``.

    ``samples_seen`` counts every pair the optimiser stepped on across all processes
    (steps × global batch); ``train_flops`` = ``flops_per_sample`` × ``samples_seen``.
    ``energy_kwh`` is ``None`` unless read from the driver (``energy_source``).
    """

    wall_time_s: float
    device: str
    device_name: str
    world_size: int
    steps: int
    samples_seen: int
    flops_per_sample: float
    train_flops: float
    energy_kwh: float | None = None
    energy_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for the CLI."""
        energy = f", {self.energy_kwh:.4f} kWh ({self.energy_source})" if self.energy_kwh is not None else ""
        procs = "process" if self.world_size == 1 else "processes"
        return (f"{self.wall_time_s:.1f} s on {self.device_name} × {self.world_size} {procs}: {self.steps} steps, "
                f"{self.samples_seen} samples, {self.train_flops / 1e12:.3g} TFLOP (matmul){energy}")


def device_name(device: torch.device) -> str:
    """A readable name for the device the run used (GPU model, or the CPU's)."""
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def step_flops(loss_fn: Callable[[Tensor, Tensor], Tensor], params: list[nn.Parameter], c: Tensor, z: Tensor) -> int:
    """Matmul FLOPs of one forward + backward of ``loss_fn(z, c).mean()`` (the optimiser step excluded).

    Gradients are computed with :func:`torch.autograd.grad`, so the parameters' ``.grad``
    fields are left untouched.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loss = loss_fn(z, c).float().mean()
        torch.autograd.grad(loss, [p for p in params if p.requires_grad], allow_unused=True)
    return int(counter.get_total_flops())


class EnergyMeter:
    """Reads the GPU driver's cumulative energy counter at start and stop (NVML), when it can.

    Everything that can fail (no pynvml, no driver, a GPU without the counter) leaves the
    meter silent: ``kwh()`` is then ``None``, never a guess.
    """

    def __init__(self, device: torch.device) -> None:
        self._handle: Any = None
        self._start: int | None = None
        self._nvml: Any = None
        if device.type != "cuda" or not torch.cuda.is_available():
            return
        try:
            import pynvml  # type: ignore[import-not-found]

            pynvml.nvmlInit()
            index = device.index if device.index is not None else torch.cuda.current_device()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._start = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))  # millijoules
            self._nvml = pynvml
        except Exception:  # noqa: BLE001 - any NVML failure just means no reading
            self._handle = None

    def kwh(self) -> float | None:
        """Energy used by the device since the meter was made, in kWh, or ``None``."""
        if self._handle is None or self._start is None:
            return None
        try:
            now = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception:  # noqa: BLE001
            return None
        return (now - self._start) / 3.6e9  # mJ -> kWh


class Stopwatch:
    """Wall time and energy of a span of work (training, on every rank)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.meter = EnergyMeter(device)
        self.t0 = time.perf_counter()
        self._stopped: tuple[float, float | None] | None = None

    def stop(self) -> None:
        """Freeze the wall time and energy (later work, such as counting FLOPs, is not charged)."""
        if self._stopped is None:
            if self.device.type == "cuda" and torch.cuda.is_available():
                torch.cuda.synchronize(self.device)
            self._stopped = (time.perf_counter() - self.t0, self.meter.kwh())

    def record(self, *, steps: int, samples_seen: int, flops_per_sample: float, world_size: int) -> ComputeRecord:
        self.stop()
        assert self._stopped is not None
        wall, kwh = self._stopped
        return ComputeRecord(
            wall_time_s=wall, device=str(self.device), device_name=device_name(self.device), world_size=world_size,
            steps=steps, samples_seen=samples_seen, flops_per_sample=flops_per_sample,
            train_flops=flops_per_sample * samples_seen,
            energy_kwh=None if kwh is None else kwh * world_size,
            energy_source=None if kwh is None else ("nvml" if world_size == 1 else
                                                    f"nvml, rank 0's GPU × {world_size}"),
        )


def training_cost(model: nn.Module, source: Tensor, target: Tensor, batch_size: int, steps: int,
                  stopwatch: Stopwatch, world_size: int = 1) -> ComputeRecord:
    """The :class:`ComputeRecord` of a finished run that took ``steps`` steps of ``batch_size`` pairs.

    FLOPs are counted on one batch of the training data (up to ``batch_size`` rows) with
    the model in training mode, so the count is exactly what a step performs.
    """
    from . import objective

    stopwatch.stop()
    rows = min(batch_size, target.shape[0])
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    c = source[:rows].to(device)
    c = c.to(dtype) if c.dtype.is_floating_point else c
    z = target[:rows].to(device=device, dtype=dtype)
    _, f = objective(model)
    was = model.training
    model.train()
    try:
        flops = step_flops(f, list(model.parameters()), c, z)
    finally:
        model.train(was)
    return stopwatch.record(steps=steps, samples_seen=steps * rows, flops_per_sample=flops / rows,
                            world_size=world_size)


__all__ = ["ComputeRecord", "EnergyMeter", "Stopwatch", "device_name", "step_flops", "training_cost"]
