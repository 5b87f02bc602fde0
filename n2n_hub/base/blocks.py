"""Running a batch function over blocks of rows: the one chunker of sampling and decoding.

Matrix and convolution kernels pick their algorithm, and so their rounding, by the shape of
the batch: the same row can come out with other last bits next to other rows. Run on blocks
of exactly ``block`` rows (the last one zero-padded), a row's result depends on that row
alone, which is what lets a server merge requests and still give each seeded request the
bits it gets alone. Without padding, blocks only bound the memory one call takes.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def _rows(out: Any, count: int) -> Any:
    return out[:count]


def in_blocks(fn: Callable[..., Any], *xs: torch.Tensor, block: int | None, pad: bool = True,
              cpu: bool = False) -> Any:
    """``fn(*xs)`` computed on blocks of ``block`` rows of every ``xs``, results joined in row order.

    ``fn`` returns a tensor or a list with one entry per row. ``pad``: blocks of exactly
    ``block`` rows (batch-invariant bits); else the last block is short and a batch that fits
    in one block is one call. ``block=None``: one call on all rows. ``cpu``: tensor results of
    several blocks are gathered on the CPU (decoded images of many samples).
    """
    if not xs:
        raise ValueError("in_blocks needs at least one tensor of rows")
    total = xs[0].shape[0]
    if block is None or total == 0 or (not pad and total <= block):
        return fn(*xs)
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    parts = []
    for first in range(0, total, block):
        chunk = [x[first:first + block] for x in xs]
        count = chunk[0].shape[0]
        if pad and count < block:
            chunk = [torch.cat([c, c.new_zeros(block - count, *c.shape[1:])]) for c in chunk]
        parts.append(_rows(fn(*chunk), count))
    if isinstance(parts[0], torch.Tensor):
        if cpu and len(parts) > 1:
            parts = [p.cpu() for p in parts]
        return torch.cat(parts)
    return [item for part in parts for item in part]
