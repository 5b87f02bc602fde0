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
MAX_KEPT = 2**28  # pairs × features held for the n×n (dual) form, in float64: 2 GiB


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

    def _too_wide(self, n: int) -> str:
        return _too_wide_message(self.in_features, tuple(self.condition.shape), n)

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
        """Solve for W and b from every ``(c, z)`` batch of the training pairs, seen once; returns the row count.

        With fewer pairs than features (a wide spatial tap) the same solution comes from the n×n
        Gram matrix of the pairs, W = X̃ᵀ(X̃X̃ᵀ + λI)⁺Z̃, instead of the p×p one: the rows are kept
        while there are at most p of them, and folded into the p×p statistics once there are more.
        """
        p, d = self.in_features, self.dim
        dev = self.weight.device
        n = 0
        kept: list[tuple[torch.Tensor, torch.Tensor]] | None = []
        sx = torch.zeros(p, dtype=torch.float64, device=dev)
        sz = torch.zeros(d, dtype=torch.float64, device=dev)
        xx = xz = None
        for c, z in pairs:
            x = self.features(c.to(dev)).double()
            z = z.to(dev).double().reshape(z.shape[0], -1)
            if z.shape[1] != d:
                raise ShapeError(f"training targets have {z.shape[1]} entries per row, the translator {d}")
            n += x.shape[0]
            sx += x.sum(0)
            sz += z.sum(0)
            if kept is not None:
                kept.append((x, z))
                if n <= p:
                    if n * p > MAX_KEPT:
                        raise InputError(self._too_wide(n))
                    continue
                if p > MAX_FEATURES:
                    raise InputError(self._too_wide(n))
                x, z = torch.cat([k[0] for k in kept]), torch.cat([k[1] for k in kept])
                kept = None
                xx = torch.zeros(p, p, dtype=torch.float64, device=dev)
                xz = torch.zeros(p, d, dtype=torch.float64, device=dev)
            xx += x.T @ x
            xz += x.T @ z
        if n < 2:
            raise InputError(f"a linear translator needs at least 2 training pairs, got {n}")
        mx, mz = sx / n, sz / n
        if kept is not None:  # n <= p: the dual form
            xc = torch.cat([k[0] for k in kept]) - mx
            zc = torch.cat([k[1] for k in kept]) - mz
            w = xc.T @ ridge_solve(xc @ xc.T, zc, self.ridge, features=p)
        else:
            gram = xx - n * torch.outer(mx, mx)  # X̃ᵀX̃
            cross = xz - n * torch.outer(mx, mz)  # X̃ᵀZ̃
            w = ridge_solve(gram, cross, self.ridge)  # (p, d)
        self.weight.copy_(w.T.to(self.weight.dtype))
        self.bias.copy_((mz - mx @ w).to(self.bias.dtype))
        self.mark_fitted()
        return n


def _too_wide_message(p: int, shape: tuple[int, ...], n: int) -> str:
    return (f"a linear translator on a condition of {p} entries (shape {shape}) solves a {p}×{p} system once there "
            f"are more training pairs than entries, or holds pairs × entries numbers below that; with {n}+ pairs "
            f"that is past the {MAX_FEATURES}-entry / {MAX_KEPT:,}-number limits: read a smaller tap (e.g. pooled "
            "features), use fewer pairs, or use the cinn or mlp translator")


def ridge_solve(gram: torch.Tensor, cross: torch.Tensor, ridge: float, features: int | None = None) -> torch.Tensor:
    """``(G + λI)⁺ C`` with λ = ridge · trace(G)/p: a Cholesky solve for λ > 0, else by an
    eigendecomposition of the symmetric G.

    ``p`` is ``features`` (the feature count, when G is the n×n Gram matrix of the dual form;
    its trace is the same), else G's size. Eigenvalues below a relative tolerance count as
    zero, so ``ridge=0`` gives the minimum-norm least-squares solution that
    ``torch.linalg.lstsq`` (gelsd) returns.
    """
    size = gram.shape[0]
    p = features if features is not None else size
    sym = 0.5 * (gram + gram.T)
    if ridge > 0:  # G + λI is positive definite: a Cholesky solve, several times cheaper than eigh
        lam = ridge * float(torch.diagonal(sym).sum()) / p
        factor, info = torch.linalg.cholesky_ex(sym + lam * torch.eye(size, dtype=sym.dtype, device=sym.device))
        if int(info) == 0 and lam > 0:
            return torch.cholesky_solve(cross, factor)
    evals, evecs = torch.linalg.eigh(sym)
    evals = evals.clamp(min=0)
    lam = ridge * float(evals.sum()) / p
    tol = float(evals.max()) * size * torch.finfo(gram.dtype).eps if size else 0.0
    shifted = evals + lam
    inv = torch.where(shifted > tol, 1.0 / shifted.clamp(min=tol if tol > 0 else 1e-300), torch.zeros_like(shifted))
    return evecs @ (inv[:, None] * (evecs.T @ cross))
