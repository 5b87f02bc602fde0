"""The optimisation step: the optimiser, one step's batch, and the step itself, which reads nothing back to the host."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..base import distributed
from .compiling import StepCompiler
from .batches import Batches, noisy_condition, param_dtype, rank_share, to_device
from .config import Log, TrainConfig, lr_at
from .ledger import StepLedger


def adam(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (AdamW when weight_decay > 0), fused into one kernel per step where torch has one.

    The default per-tensor Adam reads and writes every weight, gradient and moment several
    times; at Net2Net size (10⁸ weights, batch 64) that memory traffic took about as long on
    CPU as the matmuls of the step. The fused kernel makes one pass and gives the same update.
    """
    cls = torch.optim.AdamW if config.weight_decay > 0 else torch.optim.Adam
    kwargs: dict[str, Any] = {"lr": config.lr}
    if config.weight_decay > 0:
        kwargs["weight_decay"] = config.weight_decay
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without a fused kernel
        return cls(params, **kwargs)


def is_fused(opt: torch.optim.Optimizer) -> bool:
    """True for a fused Adam: it takes ``found_inf`` (skips a step without a host round trip) and
    ``grad_scale`` (divides the gradients in its own pass)."""
    return bool(opt.defaults.get("fused"))


def clip_in_update(opt: torch.optim.Optimizer, gnorm: Tensor, grad_clip: float, on_host: bool) -> None:
    """Give a fused Adam the clip as its ``grad_scale``: ``max(1, norm / clip)``, which it divides the gradients by.

    The fused kernel writes each divided gradient back, a pass of stores over every gradient
    (about a tenth of the update's time on CPU). ``on_host``, where reading the norm costs
    nothing, it gets no scale while the norm is within the clip: dividing by 1 changes nothing.
    """
    if grad_clip <= 0:
        opt.grad_scale = None  # type: ignore[attr-defined]
        return
    scale = torch.clamp((gnorm.float() + 1e-6) / grad_clip, min=1.0)
    opt.grad_scale = scale if not on_host or scale.item() > 1.0 else None  # type: ignore[attr-defined]


def set_lr(opt: torch.optim.Optimizer, step: int, config: TrainConfig) -> None:
    """The schedule's learning rate for 0-based ``step`` (:func:`~n2n_hub.training.lr_at`)."""
    for g in opt.param_groups:
        g["lr"] = lr_at(step, config)


def step_batch(batches: Batches, step: int, device: torch.device, dtype: torch.dtype, config: TrainConfig,
               w: distributed.World) -> tuple[Tensor, Tensor]:
    """This rank's share of the step's batch, on the device, with the configured training noise."""
    c, z = batches.batch(step)
    if w.distributed:
        c, z = rank_share(c, z, w)
    c, z = to_device(c, device, dtype), to_device(z, device, dtype)
    if config.condition_noise > 0 and c.is_floating_point():
        c = noisy_condition(c, config.condition_noise)
    if config.target_noise > 0:
        z = z + torch.randn_like(z) * config.target_noise
    return c, z


def train_step(step_loss: Callable[[Tensor, Tensor], Tensor], opt: torch.optim.Optimizer,
               params: list[nn.Parameter], c: Tensor, z: Tensor, grad_clip: float,
               autocast: Any, w: distributed.World, skips_on_device: bool) -> Tensor:
    """One step without reading anything back to the host; returns ``[loss, grad norm]`` on the device.

    The gradient norm is clipped to ``grad_clip`` as ``clip_grad_norm_`` clips it; a fused Adam
    applies the clip inside its update (its ``grad_scale``) instead of in a pass of its own.
    With ``skips_on_device`` the update is applied too, masked on the device: a fused
    Adam given ``found_inf = 1`` leaves weights, moments and its step count untouched, so
    a non-finite step is skipped exactly as if ``opt.step()`` had not been called.
    Otherwise the caller reads the result and decides whether to call ``opt.step()``.
    """
    opt.zero_grad(set_to_none=True)
    with autocast:
        loss = step_loss(z, c).float().mean()
    loss.backward()
    fused = is_fused(opt)
    if grad_clip > 0 and not fused:
        gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:
        gnorm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    if fused:  # the clip as the fused update's gradient divisor: one pass over every gradient less
        clip_in_update(opt, gnorm, grad_clip, on_host=not skips_on_device)
    stat = torch.stack([loss.detach(), gnorm.detach().float()])
    if w.distributed:  # the ranks' mean loss; the gradient norm is the same on every rank
        stat = distributed.all_reduce_sum(stat / w.size)
    if skips_on_device:
        opt.found_inf = (~torch.isfinite(stat).all()).float()  # type: ignore[attr-defined]
        opt.step()
    return stat


class Stepper:
    """Takes a run's optimisation steps: the batch, the learning rate, the update, and whether it counts.

    The step loss is wrapped for data parallelism when several processes train; build the
    stepper after the data-dependent initialisation, since wrapping broadcasts rank 0's weights.
    """

    def __init__(self, model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], opt: torch.optim.Optimizer,
                 config: TrainConfig, device: torch.device, use_bf16: bool, log: Log | None = None) -> None:
        self.opt, self.config, self.device = opt, config, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.dtype = param_dtype(model)
        self.world = distributed.world()
        self.autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if use_bf16
                         else contextlib.nullcontext())
        step_loss = distributed.data_parallel(model, loss, device)  # the loss itself in one process
        # eager for a few timed steps, then compiled where the rest of the run repays it
        self.compiler = StepCompiler(model, step_loss, config.compile, config.steps, device,
                                     self.world.distributed, log)
        # On CUDA the fused Adam skips bad steps itself and the numbers are read in batches; on
        # CPU a read costs nothing, so the step is decided on the host.
        self.on_device = device.type == "cuda" and is_fused(opt)

    def take(self, batches: Batches, step: int, ledger: StepLedger) -> int:
        """Take 0-based ``step``; returns the samples it used over all processes."""
        c, z = step_batch(batches, step, self.device, self.dtype, self.config, self.world)
        return self.compiler.timed(step, z.shape[0], lambda: self._take(c, z, step, ledger))

    def _take(self, c: Tensor, z: Tensor, step: int, ledger: StepLedger) -> int:
        set_lr(self.opt, step, self.config)
        stat = train_step(self.compiler.loss, self.opt, self.params, c, z, self.config.grad_clip, self.autocast,
                          self.world, self.on_device)
        ledger.add(step, stat)
        if not self.on_device:  # the optimizer cannot skip by itself: decide on the host
            if ledger.settle():
                self.opt.step()
            else:
                self.opt.zero_grad(set_to_none=True)
        elif ledger.due:
            ledger.settle()
        return z.shape[0] * self.world.size
