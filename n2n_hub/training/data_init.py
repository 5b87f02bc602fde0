"""Data-dependent initialisation before step 0, through the translator contract (:mod:`n2n_hub.spec.kinds`).

A module fits what it must from data once: ``fit_condition(c, labels)`` for a part fitted
to the training conditions' class labels, and ``initialize(z, c)`` from the first finite
batch, with more training targets when it asks for them (``data_init_rows``). The trainer
knows nothing of what those parts are.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import TrainingError
from ..spec.kinds import data_init_rows, needs_condition_fit, needs_data_init
from .batches import Batches, TensorBatches, finite_rows, init_rows, param_dtype, to_device
from .config import Log
from .events import emit


def prepare(model: nn.Module, batches: Batches, labels: Tensor | None, device: torch.device,
            log: Log | None) -> None:
    """Run whatever fitting the module (already on ``device``) waits for: the condition fit, then the data init."""
    if needs_condition_fit(model):
        fit_condition(model, batches, labels, log)
    if needs_data_init(model):
        initialize(model, batches, device, param_dtype(model))


def fit_condition(model: nn.Module, batches: Batches, labels: Tensor | None, log: Log | None) -> None:
    """Fit the module's condition part to every training condition and its class label."""
    if labels is None or not isinstance(batches, TensorBatches):
        raise TrainingError("this translator reads its condition through a projection fitted to class labels "
                            "(condition_projection), but the training pairs come without labels: use a "
                            "dataset recipe whose items have a 'label' domain, or drop condition_projection")
    model.fit_condition(batches.source, labels)  # type: ignore[operator]
    emit(log, "fit", f"condition projection fitted to the labels of {labels.shape[0]} training pairs",
         rows=int(labels.shape[0]))


def initialize(model: nn.Module, batches: Batches, device: torch.device, dtype: torch.dtype) -> None:
    """``model.initialize`` from the finite pairs of the first batch, and the training targets it asks for."""
    wanted = data_init_rows(model)
    rows = _finite_targets(batches, wanted, device, dtype) if wanted > 0 else None
    c0, z0 = batches.batch(0)
    c0, z0 = to_device(c0, device, dtype), to_device(z0, device, dtype)
    ok = finite_rows(c0, z0)
    if int(ok.sum()) < 2:
        raise TrainingError("the first batch has fewer than 2 finite pairs, so the translator's data-dependent "
                            "initialisation cannot run: check the data for NaN/inf")
    if rows is not None:
        model.initialize(z0[ok], c0[ok], whitening_rows=rows)  # type: ignore[operator]
    else:
        model.initialize(z0[ok], c0[ok])  # type: ignore[operator]


def _finite_targets(batches: Batches, wanted: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    rows = to_device(batches.peek_targets(init_rows(wanted, batches)), device, dtype)
    rows = rows[torch.isfinite(rows).all(dim=1)]
    if rows.shape[0] < 2:
        raise TrainingError("fewer than 2 finite training targets, so the translator's data-dependent "
                            "initialisation cannot run: check the data for NaN/inf")
    return rows
