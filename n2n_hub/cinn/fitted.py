"""Modules fitted once from data before training (the whitening, the condition probe)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FittedOnce(nn.Module):
    """A ``fitted`` flag kept as a buffer, so it travels with the weights through save and load.

    The Python-side ``_fitted`` mirrors it: reading a 0-d buffer on every forward would
    synchronise a GPU. :meth:`mark_fitted` sets both; loading a state dict restores both.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._fitted = False

    def mark_fitted(self) -> None:
        self.fitted.fill_(True)
        self._fitted = True

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,  # type: ignore[override]
                              **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        key = prefix + "fitted"
        if key in state_dict:
            self._fitted = bool(state_dict[key])
