"""A conditional density with a closed-form answer, to check that a flow learns the right thing.

z_Θ = A z_Φ + L ε with z_Φ ~ N(0, I_C), ε ~ N(0, I_D), A (D×C) and L lower triangular with a
positive diagonal. Then p(z_Θ | z_Φ = c) = N(A c, L Lᵀ) and the conditional entropy per dimension is

    H = ½·log((2πe)^D · det(L Lᵀ)) / D = ½·log(2πe) + Σ_i log L_ii / D,

which is the best held-out NLL (nats/dim) any model can reach. Used by tests/test_analytic.py and
bench/bench_cinn.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LinearGaussianTask:
    """The task's parameters; ``sample`` and ``true_nll`` are exact."""

    A: Tensor  # (D, C)
    L: Tensor  # (D, D) lower triangular, positive diagonal

    @property
    def dim(self) -> int:
        return self.A.shape[0]

    @property
    def cond_dim(self) -> int:
        return self.A.shape[1]

    @property
    def covariance(self) -> Tensor:
        return self.L @ self.L.T

    @property
    def entropy_per_dim(self) -> float:
        """½·log((2πe)^D det(LLᵀ)) / D in nats."""
        d = self.dim
        logdet = 2.0 * torch.log(torch.diagonal(self.L.double())).sum().item()
        return 0.5 * (d * math.log(2 * math.pi * math.e) + logdet) / d

    def mean(self, c: Tensor) -> Tensor:
        return c @ self.A.T.to(c.dtype)

    def sample(self, n: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
               ) -> tuple[Tensor, Tensor]:
        """``(c, z)``: n conditions and one target each."""
        c = torch.randn(n, self.cond_dim, generator=generator, dtype=torch.float64)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        z = c @ self.A.T.double() + eps @ self.L.T.double()
        return c.to(dtype), z.to(dtype)

    def true_nll(self, z: Tensor, c: Tensor) -> Tensor:
        """Per-sample -log p(z | c) in nats under the true conditional (float64)."""
        r = (z.double() - c.double() @ self.A.T.double()).T
        u = torch.linalg.solve_triangular(self.L.double(), r, upper=False)
        d = self.dim
        return 0.5 * u.pow(2).sum(0) + 0.5 * d * math.log(2 * math.pi) + torch.log(torch.diagonal(self.L.double())).sum()


def make_task(dim: int, cond_dim: int, seed: int = 0) -> LinearGaussianTask:
    """A random task: A has unit-scale entries, L has diagonal in [0.3, 1.2] and small off-diagonal terms.

    The spread of the diagonal makes the per-dimension noise levels differ by up to 4×, so a flow must
    learn a non-trivial conditional covariance, not just a shift.
    """
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(dim, cond_dim, generator=g, dtype=torch.float64) / math.sqrt(cond_dim)
    diag = 0.3 + 0.9 * torch.rand(dim, generator=g, dtype=torch.float64)
    off = torch.tril(torch.randn(dim, dim, generator=g, dtype=torch.float64), diagonal=-1) * 0.3
    L = off + torch.diag(diag)
    return LinearGaussianTask(A=A, L=L)
