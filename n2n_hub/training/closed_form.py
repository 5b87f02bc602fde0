"""Kinds solved in closed form (the ridge translator): every training pair once, one validation, no steps.

A module that has ``fit_closed_form(pairs) -> rows`` (see ``spec/kinds.py``) is fitted here
instead of by gradient steps. Rows with NaN/inf are left out of the fit, as the step leaves
them out of a batch. Under torchrun every process fits on the pairs it holds.
"""

from __future__ import annotations

import time
from typing import Iterable

import torch
from torch import Tensor, nn

from .batches import Batches, finite_rows, param_dtype, to_device
from .config import Log, TrainResult, nats_to_bits
from .events import emit
from .validation import evaluate


def fit_closed_form(model: nn.Module, name: str, batches: Batches, val_pairs: tuple[Tensor, Tensor] | None,
                    n_train: int | None, device: torch.device, log: Log | None) -> TrainResult:
    """Fit ``model`` on every training pair once and validate it; the result reports 0 steps."""
    start = time.perf_counter()
    emit(log, "start", f"fitting a {getattr(model, 'kind', '?')} translator in closed form "
         f"({n_train if n_train is not None else 'all'} training pairs, {name} objective)", steps=0)
    dtype = param_dtype(model) if any(True for _ in model.parameters()) else torch.float32

    def finite_pairs() -> Iterable[tuple[Tensor, Tensor]]:
        for c, z in batches.each_once():
            c, z = to_device(c, device, dtype), to_device(z, device, dtype)
            ok = finite_rows(c, z)
            yield (c, z) if bool(ok.all()) else (c[ok], z[ok])

    rows = model.fit_closed_form(finite_pairs())  # type: ignore[operator]
    model.eval()
    best = evaluate(model, val_pairs[0], val_pairs[1], device=device) if val_pairs is not None else None
    result = TrainResult(objective=name, steps=0, wall_time_s=time.perf_counter() - start,
                         best_step=0 if best is not None else None,
                         history=[{"step": 0, "val": best}] if best is not None else [])
    if name == "nll":
        result.val_nll = result.best_val_nll = best
        result.val_bits_per_dim = result.best_val_bits_per_dim = None if best is None else nats_to_bits(best)
    else:
        result.val_mse = result.best_val_mse = best
    emit(log, "done", f"fitted in closed form on {rows} pairs in {result.wall_time_s:.1f} s; "
         f"held-out {name} {best}", result=result.to_dict())
    return result
