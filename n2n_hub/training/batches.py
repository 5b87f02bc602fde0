"""Batches of (z_Φ, z_Θ) pairs: from tensors or a DataLoader, the held-out split, and each rank's share."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import torch
from torch import Tensor, nn

from ..base import distributed
from ..errors import InputError, ShapeError


class TensorBatches:
    """Shuffled batches of in-memory pairs, a pure function of (seed, step).

    Epoch ``e`` uses the permutation drawn from a generator seeded with ``(seed, e)``,
    so resuming at any step needs no saved data-loader state.
    """

    def __init__(self, source: Tensor, target: Tensor, batch_size: int, seed: int) -> None:
        self.source, self.target = source, target
        self.n = target.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.per_epoch = self.n // self.batch_size  # the incomplete last batch is dropped
        self.seed = seed
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * epoch + 1)
            self._perm = torch.randperm(self.n, generator=g).to(self.target.device)
            self._epoch = epoch
        idx = self._perm[j * self.batch_size:(j + 1) * self.batch_size]
        return self.source[idx], self.target[idx]

    def move_to(self, device: torch.device, max_bytes: int = 1 << 30) -> None:
        """Copy the pairs to ``device`` once when they fit in ``max_bytes``: one copy beats a copy per step."""
        if self.target.device == device:
            return
        nbytes = self.source.numel() * self.source.element_size() + self.target.numel() * self.target.element_size()
        if nbytes <= max_bytes:
            self.source, self.target = self.source.to(device), self.target.to(device)
            self._epoch = -1  # the permutation is redrawn on the new device

    def each_once(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Every training pair once, in order, in batches (the last one may be short): for a closed-form fit."""
        for i in range(0, self.n, self.batch_size):
            yield self.source[i:i + self.batch_size], self.target[i:i + self.batch_size]

    def peek_targets(self, rows: int) -> Tensor:
        """Up to ``rows`` training targets (a seeded subset when there are more) for data-dependent init."""
        if self.n <= rows:
            return self.target
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 17)
        return self.target[torch.randperm(self.n, generator=g)[:rows].to(self.target.device)]


class LoaderBatches:
    """Batches from a DataLoader, re-iterated each epoch; ``batch(step)`` must be called in order.

    Resuming skips (without computing anything) the batches already used, so a loader
    whose order is reproducible (a seeded ``generator`` or no shuffling) resumes exactly.
    """

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader
        self._it: Iterator[Any] | None = None
        self._next = 0
        self._last: tuple[int, tuple[Tensor, Tensor]] | None = None
        self._ahead: list[tuple[Tensor, Tensor]] = []  # pulled by peek_targets, not yet served

    @staticmethod
    def _pair(item: Any) -> tuple[Tensor, Tensor]:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InputError("a training DataLoader must yield (z_source, z_target) pairs of tensors, "
                             f"got {type(item).__name__}")
        return item[0], item[1]

    def _pull(self) -> tuple[Tensor, Tensor]:
        if self._ahead:
            return self._ahead.pop(0)
        for attempt in range(2):
            if self._it is None:
                self._it = iter(self.loader)
            try:
                item = next(self._it)
                break
            except StopIteration:
                self._it = None
                if attempt:
                    raise InputError("the training DataLoader yields no batches") from None
        return self._pair(item)

    def each_once(self) -> Iterator[tuple[Tensor, Tensor]]:
        """One pass over the loader: every training pair once, for a closed-form fit."""
        yielded = False
        for item in self.loader:
            yielded = True
            yield self._pair(item)
        if not yielded:
            raise InputError("the training DataLoader yields no batches")

    def peek_targets(self, rows: int) -> Tensor:
        """Targets of the coming batches, at least ``rows`` unless the first epoch ends sooner.

        The batches stay queued and are served in order, so peeking changes nothing the
        training sees (and a resumed run, which does not peek, sees the same batches).
        """
        got = sum(t.shape[0] for _, t in self._ahead)
        while got < rows:
            if self._it is None:
                if self._ahead:
                    break  # the epoch ended: do not wrap around
                self._it = iter(self.loader)
            try:
                pair = self._pair(next(self._it))
            except StopIteration:
                self._it = None
                if not self._ahead:
                    raise InputError("the training DataLoader yields no batches") from None
                break
            self._ahead.append(pair)
            got += pair[1].shape[0]
        return torch.cat([t for _, t in self._ahead])

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        if self._last is not None and self._last[0] == step:  # ActNorm init and step 0 share a batch
            return self._last[1]
        while self._next < step:  # fast-forward after a resume
            self._pull()
            self._next += 1
        self._next = step + 1
        self._last = (step, self._pull())
        return self._last[1]


Batches = TensorBatches | LoaderBatches


def held_out_split(source: Tensor, target: Tensor, fraction: float, seed: int, groups: Tensor | None = None
                   ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
    """Deterministic held-out split: the same seed and data always hold out the same rows.

    With ``groups`` (one item id per row), whole items are held out: rows made from one
    item (its mirror image, its other captions, its deformed copies) are either all in
    training or all in validation, so validation measures unseen items, not unseen copies.
    """
    n = target.shape[0]
    if fraction <= 0:
        return (source, target), None
    g = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    if groups is None:
        n_val = max(1, round(fraction * n))
        if n - n_val < 1:
            raise InputError(f"{n} pairs are too few to hold out val_fraction={fraction}; "
                             "give more data, a smaller val_fraction, or an explicit val set")
        perm = torch.randperm(n, generator=g).to(target.device)
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        return (source[train_idx], target[train_idx]), (source[val_idx], target[val_idx])
    if groups.shape != (n,):
        raise ShapeError(f"groups must hold one item id per pair, shape ({n},), got {tuple(groups.shape)}")
    _, item_of_row = torch.unique(groups, return_inverse=True)
    m = int(item_of_row.max()) + 1
    m_val = max(1, round(fraction * m))
    if m - m_val < 1:
        raise InputError(f"{m} items are too few to hold out val_fraction={fraction}; "
                         "give more data, a smaller val_fraction, or an explicit val set")
    held_out = torch.zeros(m, dtype=torch.bool)
    held_out[torch.randperm(m, generator=g)[:m_val]] = True
    is_val = held_out[item_of_row.cpu()].to(target.device)
    val_idx, train_idx = torch.nonzero(is_val).flatten(), torch.nonzero(~is_val).flatten()
    return (source[train_idx], target[train_idx]), (source[val_idx], target[val_idx])


# -- helpers ------------------------------------------------------------------------------
def param_dtype(model: nn.Module) -> torch.dtype:
    """The dtype the model's weights (and so its inputs) are in."""
    return next(model.parameters()).dtype


def noisy_condition(c: Tensor, scale: float) -> Tensor:
    """``c`` plus Gaussian noise whose std is ``scale`` times each row's RMS entry (see ``condition_noise``)."""
    flat = c.reshape(c.shape[0], -1)
    rms = flat.pow(2).mean(dim=1, keepdim=True).sqrt()
    return (flat + torch.randn_like(flat) * rms * scale).reshape(c.shape)


def to_device(x: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``x`` on ``device``, floating point in ``dtype``; integer conditions (token ids) keep theirs."""
    if device.type == "cuda" and x.device.type == "cpu" and not x.is_pinned():
        x = x.pin_memory()  # page-locked, so the copy below is asynchronous and overlaps the step
    if x.dtype.is_floating_point:
        return x.to(device=device, dtype=dtype, non_blocking=True)
    return x.to(device=device, non_blocking=True)


def check_pairs(model: nn.Module, source: Tensor, target: Tensor, what: str) -> None:
    """Raise ShapeError unless ``(source, target)`` are non-empty pairs the model reads and writes."""
    if not isinstance(source, Tensor) or not isinstance(target, Tensor):
        raise ShapeError(f"{what}: source and target must be torch tensors")
    model.condition.check(source, name=f"{what} source")  # type: ignore[union-attr]
    if target.dim() != 2 or target.shape[1] != model.dim:
        raise ShapeError(f"{what} target has shape {tuple(target.shape)}, expected (N, {model.dim})")
    if source.shape[0] != target.shape[0]:
        raise ShapeError(f"{what}: {source.shape[0]} source rows but {target.shape[0]} target rows")
    if target.shape[0] == 0:
        raise ShapeError(f"{what} is empty")


def finite_rows(c: Tensor, z: Tensor) -> Tensor:
    """A mask of the pairs with no NaN/inf in either side."""
    ok = torch.isfinite(z).all(dim=1)
    if c.dtype.is_floating_point:
        ok &= torch.isfinite(c.reshape(c.shape[0], -1)).all(dim=1)
    return ok


def init_rows(wanted: int, batches: Batches) -> int:
    """Training targets to peek at for an initialisation that asks for ``wanted`` of them.

    In-memory data give up to 100 000 (more when asked); a loader is read ahead by
    ``wanted`` rows, at least 4096, since every row peeked is a row held in memory.
    """
    return max(100_000, wanted) if isinstance(batches, TensorBatches) else max(4096, wanted)


def rank_share(c: Tensor, z: Tensor, w: distributed.World) -> tuple[Tensor, Tensor]:
    """This rank's rows of the global batch: the effective batch stays ``batch_size`` at any world size."""
    if z.shape[0] % w.size:
        raise InputError(f"a batch of {z.shape[0]} pairs does not split evenly over {w.size} processes; "
                         f"choose a batch size divisible by {w.size}")
    return distributed.rank_slice(c, w), distributed.rank_slice(z, w)

