"""A linear translator fitted in closed form: ridge least squares z ≈ W·c + b.

The baseline of latent-space translation (Maiorca et al., "Latent Space Translation via
Semantic Alignment"; latentis): if a linear map from one network's features to another's
latent explains the target, the two spaces agree up to a linear change of coordinates.
It is not trained by steps: the trainer streams the training pairs through
:meth:`LinearTranslator.fit_closed_form` once (see the ``fit_closed_form`` hook in
:mod:`n2n_hub.spec.kinds`), which accumulates the sufficient statistics (sums and
second moments, in float64) and solves

    W = (X̃ᵀX̃ + λ I)⁺ X̃ᵀZ̃,   b = z̄ - W x̄

with X̃, Z̃ the centred conditions (flattened; labels one-hot) and targets, and
λ = ``ridge`` · trace(X̃ᵀX̃) / p, so ``ridge`` is relative to the features' own scale and
``ridge=0`` is ordinary least squares (the minimum-norm solution when X̃ᵀX̃ is singular).
Like the MLP baseline it predicts one point per condition: its samples repeat it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

from ..errors import InputError, ShapeError
from .embedders import ConditionSpec
from .fitted import FittedOnce

MAX_FEATURES = 16_384  # the normal equations are p×p in float64: 2 GiB at this size


def condition_features(condition: ConditionSpec) -> int:
    """Entries of one flattened condition (class count for labels, read one-hot)."""
    if condition.kind == "label":
        return int(condition.num_classes or 0)
    return math.prod(condition.shape)


class LinearTranslator(FittedOnce):
    kind = "linear"
    arch_version = 1

    def __init__(self, dim: int, condition: ConditionSpec, ridge: float = 1e-3) -> None:
        super().__init__()
        if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not math.isfinite(ridge) or ridge < 0:
            raise InputError(f"ridge must be a finite number >= 0 (0 is ordinary least squares), got {ridge!r}")
        p = condition_features(condition)
        if p > MAX_FEATURES:
            raise InputError(f"a linear translator solves a {p}×{p} system for a condition of {p} entries (shape "
                             f"{condition.shape}); the most it takes is {MAX_FEATURES}: read a smaller tap (e.g. "
                             "pooled features) or use the cinn or mlp translator")
        self.dim = dim
        self.condition = condition
        self.ridge = float(ridge)
        self.in_features = p
        self.weight = nn.Parameter(torch.zeros(dim, p))
        self.bias = nn.Parameter(torch.zeros(dim))

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "condition": self.condition.to_dict(), "ridge": self.ridge}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "LinearTranslator":
        cfg = dict(cfg)
        cfg["condition"] = ConditionSpec.from_dict(cfg["condition"])
        return cls(**cfg)

    def features(self, c: torch.Tensor) -> torch.Tensor:
        """Conditions as rows ``(B, p)``: flattened, or one-hot for labels."""
        c = self.condition.check(c)
        if self.condition.kind == "label":
            return nn.functional.one_hot(c.long(), self.in_features).to(self.weight.dtype)
        return c.reshape(c.shape[0], -1).to(self.weight.dtype)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.features(c) @ self.weight.T + self.bias

    def loss(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Per-sample squared error in the target latent space."""
        return (self(c) - z).pow(2).sum(dim=1)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, n: int = 1, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """The prediction repeated ``n`` times, shape ``(B, n, D)``: a linear map has no residual."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self(c).unsqueeze(1).expand(-1, n, -1).contiguous()

    def residual(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise ShapeError("a linear translator has no residual; use the cINN translator")

    @torch.no_grad()
    def fit_closed_form(self, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
        """Solve for W and b from every ``(c, z)`` batch of the training pairs, seen once; returns the row count."""
        p, d = self.in_features, self.dim
        dev = self.weight.device
        n = 0
        sx = torch.zeros(p, dtype=torch.float64, device=dev)
        sz = torch.zeros(d, dtype=torch.float64, device=dev)
        xx = torch.zeros(p, p, dtype=torch.float64, device=dev)
        xz = torch.zeros(p, d, dtype=torch.float64, device=dev)
        for c, z in pairs:
            x = self.features(c.to(dev)).double()
            z = z.to(dev).double().reshape(z.shape[0], -1)
            if z.shape[1] != d:
                raise ShapeError(f"training targets have {z.shape[1]} entries per row, the translator {d}")
            n += x.shape[0]
            sx += x.sum(0)
            sz += z.sum(0)
            xx += x.T @ x
            xz += x.T @ z
        if n < 2:
            raise InputError(f"a linear translator needs at least 2 training pairs, got {n}")
        mx, mz = sx / n, sz / n
        gram = xx - n * torch.outer(mx, mx)  # X̃ᵀX̃
        cross = xz - n * torch.outer(mx, mz)  # X̃ᵀZ̃
        w = ridge_solve(gram, cross, self.ridge)  # (p, d)
        self.weight.copy_(w.T.to(self.weight.dtype))
        self.bias.copy_((mz - mx @ w).to(self.bias.dtype))
        self.mark_fitted()
        return n


def ridge_solve(gram: torch.Tensor, cross: torch.Tensor, ridge: float) -> torch.Tensor:
    """``(G + λI)⁺ C`` with λ = ridge · trace(G)/p, by an eigendecomposition of the symmetric G.

    Eigenvalues below a relative tolerance count as zero, so ``ridge=0`` gives the
    minimum-norm least-squares solution that ``torch.linalg.lstsq`` (gelsd) returns.
    """
    p = gram.shape[0]
    evals, evecs = torch.linalg.eigh(0.5 * (gram + gram.T))
    evals = evals.clamp(min=0)
    lam = ridge * float(evals.sum()) / p
    tol = float(evals.max()) * p * torch.finfo(gram.dtype).eps if p else 0.0
    shifted = evals + lam
    inv = torch.where(shifted > tol, 1.0 / shifted.clamp(min=tol if tol > 0 else 1e-300), torch.zeros_like(shifted))
    return evecs @ (inv[:, None] * (evecs.T @ cross))
