"""BigGAN's noise prior and the layout of z_Θ = [z̃, ĥ].

z̃ = truncation · x with x ~ N(0, I) truncated to [-2, 2], as pytorch-pretrained-biggan's
``truncated_noise_sample`` and TF Hub's BigGAN do; the same truncation value selects the
generator's batch-norm statistics when decoding, so both must agree. It is drawn by
inverse-CDF sampling from a torch generator, so results are reproducible without
touching numpy's or torch's global random state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from n2n_hub.kit import InputError

TRUNCATION_BOUND = 2.0


def check_truncation(truncation: float) -> float:
    t = float(truncation)
    if not 0.0 < t <= 1.0:
        raise InputError(f"BigGAN truncation must be in (0, 1] (it also picks batch-norm statistics), got {t}")
    return t


def truncated_normal(n: int, dim: int, truncation: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, dim)`` samples of truncation · TruncNormal(-2, 2)."""
    lo = 0.5 * (1.0 + math.erf(-TRUNCATION_BOUND / math.sqrt(2.0)))
    u = torch.rand(n, dim, generator=generator, dtype=torch.float64)
    u = lo + (1.0 - 2.0 * lo) * u
    x = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
    return (check_truncation(truncation) * x.clamp(-TRUNCATION_BOUND, TRUNCATION_BOUND)).float()


@dataclass(frozen=True)
class LatentLayout:
    """z_Θ = [z̃ (noise_dim), ĥ (embed_dim)], both read from the generator's config."""

    noise_dim: int
    embed_dim: int

    @property
    def dim(self) -> int:
        return self.noise_dim + self.embed_dim

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[:, : self.noise_dim], z[:, self.noise_dim:]

    def join(self, noise: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return torch.cat([noise, embedding], dim=1)
