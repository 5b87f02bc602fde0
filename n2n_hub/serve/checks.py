"""Latents are checked before they enter and before they leave: finite and within a sane range.

A target with a prior (``sample_prior``) sets its own range: ``PRIOR_FACTOR`` times the largest
entry of ``PRIOR_SAMPLES`` latents drawn from it, which leaves room for any temperature the API
accepts and still refuses garbage. Any other representation (a source's, a target without a
prior) is held to ``ABS_LIMIT``, past which no expert's numbers lie and float32 maths stops
being meaningful. Out-of-range inputs are the caller's to fix (400); out-of-range outputs from
in-range inputs are the server's fault (500); out-of-range outputs of latents the caller sent
(source representations, exemplar latents) are blamed on those latents (422). Each message says which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger("n2n_hub.serve")

ABS_LIMIT = 1e4
PRIOR_FACTOR = 100.0
PRIOR_SAMPLES = 256


class OutOfRange(Exception):
    """Latents outside their range: ``status`` says whose fault (4xx the caller's, 5xx ours)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class LatentRange:
    """Entries of one expert's latents (or representations) must be finite and below ``bound`` in size."""

    who: str
    bound: float
    why: str

    def problem(self, x: torch.Tensor) -> str | None:
        """What is wrong with ``x``, or None."""
        if x.numel() == 0 or not x.is_floating_point():
            return None
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            return f"{bad} value(s) that are NaN or infinite"
        top = float(x.abs().max())
        if top > self.bound:
            return f"values up to {top:.3g} in size, where {self.who} stays below {self.bound:.3g} ({self.why})"
        return None


def fixed_range(who: str) -> LatentRange:
    return LatentRange(who, ABS_LIMIT, "the server's bound for any representation")


def prior_range(expert: Any, who: str) -> LatentRange:
    """The range of ``expert``'s latents from its prior, else the fixed one."""
    if not getattr(expert.spec, "prior", None):
        return fixed_range(who)
    try:
        z = expert.sample_prior(PRIOR_SAMPLES, generator=torch.Generator().manual_seed(0)).latents
        top = float(z.detach().float().abs().max())
    except Exception as e:  # noqa: BLE001 - a prior that cannot be sampled leaves the fixed bound
        log.warning("cannot sample %s's prior for its latent range (%s); using %g", who, e, ABS_LIMIT)
        return fixed_range(who)
    bound = min(ABS_LIMIT, max(1.0, PRIOR_FACTOR * top))
    return LatentRange(who, bound, f"{PRIOR_FACTOR:g} x the largest entry of {PRIOR_SAMPLES} samples of its prior")


@dataclass(frozen=True)
class PairChecks:
    """The ranges of one served pair: what the source produces, what the target decodes."""

    source: LatentRange
    target: LatentRange

    @classmethod
    def of(cls, translator: Any) -> "PairChecks":
        return cls(fixed_range(f"{translator.source_address}'s representation"),
                   prior_range(translator.target, f"{translator.target_address}'s latent"))

    def check_input(self, x: torch.Tensor, field: str, target: bool = False) -> None:
        """Refuse (400) latents a caller sent: ``field`` names them in the message."""
        problem = (self.target if target else self.source).problem(x)
        if problem:
            raise OutOfRange(400, f"'{field}' holds {problem}; send latents in that range")

    def check_output(self, z: torch.Tensor, callers_latents: bool) -> None:
        """Refuse latents about to leave: 422 when the caller's latents led to them, else 500 (ours)."""
        problem = self.target.problem(z)
        if problem is None:
            return
        if callers_latents:
            raise OutOfRange(422, f"the latents sent translate to {problem}; send latents like the experts' own "
                                  "(from their encoders, or from this server's answers)")
        raise OutOfRange(500, f"the translator produced {problem}: a fault of this server's translator, not of "
                              "the request")
