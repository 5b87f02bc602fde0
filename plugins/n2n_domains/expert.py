"""The set-indicator expert: validates domain ids (or names) and returns them as int64."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from n2n_hub import Expert, ExpertSpec, Representation
from n2n_hub.kit import InputError, ShapeError


class DomainExpert(Expert):
    """``encode`` maps domain ids ``(B,)`` or names to int64 ids; the names come from the variant."""

    def __init__(self, spec: ExpertSpec, variant: str | None, device: str | torch.device = "cpu") -> None:
        super().__init__(spec, variant, device)
        chosen = spec.variant(variant or spec.default_variant or "")
        names = tuple(chosen.settings.get("names", ())) if chosen is not None else ()
        if not names:
            raise InputError(f"{spec.id}@{variant}: a domain variant must name its domains (settings 'names')")
        self.names = names
        self.spec = dataclasses.replace(spec, class_names=names,
                                        representation=Representation((), "int64", len(names)))

    def representation_for(self, tap: str | None = None) -> Representation:
        if tap is not None:
            self.spec.tap_representation(tap)
        return Representation((), "int64", len(self.names))

    def index(self, name: str) -> int:
        """The id of a domain name; an unknown name is one line listing the known ones."""
        try:
            return self.names.index(name.strip().lower())
        except ValueError:
            raise InputError(f"unknown domain {name!r} for {self.spec.id}@{self.variant}; "
                             f"domains: {', '.join(self.names)}") from None

    def encode(self, inputs: Any, tap: str | None = None) -> torch.Tensor:
        if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str)):
            inputs = torch.tensor([self.index(n) for n in ([inputs] if isinstance(inputs, str) else inputs)])
        if not isinstance(inputs, torch.Tensor) or inputs.ndim != 1 or inputs.dtype.is_floating_point:
            raise ShapeError(f"{self.spec.id} reads domain ids as an integer tensor (B,) or domain names")
        ids = inputs.long()
        if ids.numel() and (ids.min() < 0 or ids.max() >= len(self.names)):
            raise ShapeError(f"domain ids must lie in 0..{len(self.names) - 1}, got {ids.min().item()}..{ids.max().item()}")
        return ids.to(self.device)

    def fingerprint(self) -> str:
        return f"domain-1-{','.join(self.names)}"
