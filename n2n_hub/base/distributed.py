"""Running under ``torchrun``: who this process is, and the few collectives the hub needs.

Nothing here needs a flag. ``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous variables; when they are absent the process is a world of one, and every
helper is a no-op that costs a dictionary lookup. The process group is created on first
use (gloo on CPU, NCCL when training on CUDA) and torn down at exit.
"""

from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from torch import nn

from ..errors import InputError


@dataclass(frozen=True)
class World:
    """This process's place among the processes torchrun started."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """Rank and world size from torchrun's environment (a world of one without it)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise InputError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (they are set by torchrun); "
                         "unset them to run in one process") from None
    if size < 1 or not 0 <= rank < size:
        raise InputError(f"RANK={rank} does not fit WORLD_SIZE={size}; launch with torchrun or unset both")
    return World(rank, size, local)


def backend_for(device: str | torch.device) -> str:
    """gloo for CPU tensors, plus NCCL for CUDA tensors when this machine has a GPU.

    One group serves both, so extraction (CPU tensors) and GPU training share it.
    """
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def init(device: str | torch.device = "cpu", timeout_s: float = 1800.0) -> World:
    """Join the process group if launched by torchrun (idempotent); return this process's :class:`World`.

    On CUDA each process uses the GPU of its ``LOCAL_RANK``.
    """
    w = world()
    if not w.distributed or dist.is_initialized():
        return w
    if torch.device(device).type == "cuda":
        torch.cuda.set_device(w.local_rank)
    dist.init_process_group(backend_for(device), timeout=datetime.timedelta(seconds=timeout_s))
    atexit.register(_shutdown)
    return w


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True when this process is one of several in an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all processes, in place (unchanged in a world of one)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy rank ``src``'s ``t`` into every process's ``t``, in place."""
    if active():
        dist.broadcast(t, src=src)
    return t


def rank_slice(t: torch.Tensor, w: World) -> torch.Tensor:
    """This rank's equal share of a global batch (rows ``[rank·b, (rank+1)·b)``, ``b = len / size``)."""
    if w.size == 1:
        return t
    b = t.shape[0] // w.size
    return t[w.rank * b:(w.rank + 1) * b]


def sharded_mean(fn: Callable[[torch.Tensor, torch.Tensor], float], source: torch.Tensor,
                 target: torch.Tensor) -> float:
    """``fn``'s per-row mean over all rows, each rank scoring its contiguous share once.

    ``fn(source_rows, target_rows)`` returns the mean over the rows it is given; the
    weighted sums are added across ranks, so every rank gets the same number.
    """
    w = world()
    n = target.shape[0]
    if not active():
        return fn(source, target)
    start, end = shard_range(n, w.rank, w.size)
    local = fn(source[start:end], target[start:end]) * (end - start) if end > start else 0.0
    total = torch.tensor([local, float(end - start)], dtype=torch.float64)
    all_reduce_sum(total)
    return float(total[0] / total[1])


class _Objective(nn.Module):
    """The per-sample loss as a module's ``forward``, so DDP sees the call and syncs gradients."""

    def __init__(self, model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self._loss = loss

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self._loss(z, c)


def data_parallel(model: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                  device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss`` wrapped in DistributedDataParallel when several processes train, else ``loss`` itself.

    DDP broadcasts rank 0's weights and buffers (whitening, ActNorm) when it is built and
    averages gradients over ranks in backward, so with equal per-rank batches the update
    is the one a single process makes on the whole global batch.
    """
    if not active():
        return loss
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(_Objective(model, loss), device_ids=ids)


def shard_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous ``[start, end)`` of ``n`` items that ``rank`` of ``size`` owns (sizes differ by ≤ 1)."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


__all__ = ["World", "active", "all_reduce_sum", "backend_for", "barrier", "broadcast", "data_parallel", "init",
           "rank_slice", "shard_range", "sharded_mean", "world"]
