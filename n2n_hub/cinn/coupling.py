"""Conditional alternating affine coupling (Eqs. 20-22) and the INN block of Fig. S7."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .actnorm import ActNorm


def soft_clamp(s: torch.Tensor, clamp: float) -> torch.Tensor:
    """Bound log-scales smoothly to (-clamp, clamp) so exp(s) can never overflow."""
    return clamp * torch.tanh(s / clamp)


def _sum(s: torch.Tensor) -> torch.Tensor:
    """Row sums of log-scales accumulated in at least float32 (bf16 autocast keeps log-dets exact)."""
    return s.sum(dim=1, dtype=torch.promote_types(s.dtype, torch.float32))


class ConditionalSubnet(nn.Module):
    """Table S3a subnet on ``[x; h]`` that emits both log-scale ``s`` and shift ``t``.

    The first layer is split into the part acting on ``x`` (here) and the part acting on
    the condition ``h``; the flow computes the latter for all subnets in one matmul and
    passes each subnet its slice as ``c``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: int, depth: int, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = slope
        self.inp = nn.Linear(in_features, hidden, bias=False)
        layers: list[nn.Module] = []
        for _ in range(depth - 1):  # in place: each Linear's output is fresh and used once
            layers += [nn.Linear(hidden, hidden), nn.LeakyReLU(slope, inplace=True)]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, 2 * out_features)
        # Start close to the identity map: small (not zero) output weights keep every
        # parameter trainable from the first step.
        with torch.no_grad():
            self.out.weight.mul_(0.05)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # c + x·Wᵀ in one GEMM (the condition's slice is the accumulator), activated in place.
        a = F.leaky_relu_(torch.addmm(c, x, self.inp.weight.t()), self.slope)
        s, t = self.out(self.body(a)).chunk(2, dim=-1)
        return s, t


class AlternatingCoupling(nn.Module):
    """Transforms both halves once: ``x2`` given ``x1``, then ``x1`` given the new ``x2``.

    Works for odd dimensions (the first half has ``dim // 2`` entries).
    """

    def __init__(self, dim: int, hidden: int, depth: int = 3, clamp: float = 2.0) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"an affine coupling needs dim >= 2, got {dim}")
        self.d1 = dim // 2
        self.d2 = dim - self.d1
        self.clamp = clamp
        self.f1 = ConditionalSubnet(self.d1, self.d2, hidden, depth)
        self.f2 = ConditionalSubnet(self.d2, self.d1, hidden, depth)

    def forward(
        self, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, rev: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = x[:, : self.d1], x[:, self.d1 :]
        if not rev:
            s, t = self.f1(x1, c1)
            s = soft_clamp(s, self.clamp)
            x2 = torch.addcmul(t, x2, torch.exp(s))
            logdet = _sum(s)
            s, t = self.f2(x2, c2)
            s = soft_clamp(s, self.clamp)
            x1 = torch.addcmul(t, x1, torch.exp(s))
            return torch.cat([x1, x2], dim=1), logdet + _sum(s)
        s, t = self.f2(x2, c2)
        s = soft_clamp(s, self.clamp)
        x1 = (x1 - t) * torch.exp(-s)
        logdet = s.sum(dim=1)
        s, t = self.f1(x1, c1)
        s = soft_clamp(s, self.clamp)
        x2 = (x2 - t) * torch.exp(-s)
        return torch.cat([x1, x2], dim=1), -(logdet + s.sum(dim=1))


class FixedPermutation(nn.Module):
    """A random but fixed permutation, drawn from its own seeded generator (never the global RNG)."""

    def __init__(self, dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(dim, generator=g)
        self.register_buffer("perm", perm)
        self.register_buffer("inv", torch.argsort(perm))

    def forward(self, x: torch.Tensor, rev: bool = False) -> torch.Tensor:
        return _Permute.apply(x, self.inv, self.perm) if rev else _Permute.apply(x, self.perm, self.inv)


class _Permute(torch.autograd.Function):
    """Column gather whose backward is the inverse gather.

    ``x[:, perm]`` would backpropagate through an accumulating scatter (``index_put_``),
    which is serial and several times slower on CPU; a permutation needs no accumulation.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, perm: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(perm, inv)
        return x.index_select(1, perm)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        perm, inv = ctx.saved_tensors
        return _Permute.apply(grad, inv, perm), None, None


class INNBlock(nn.Module):
    """Coupling → ActNorm → permutation (Fig. S7). ``forward(x, c1, c2, rev) -> (y, logdet)``.

    ``logdet`` is log|det ∂y/∂x| of the direction that was run, so the reverse call
    returns the negative of the forward one.
    """

    def __init__(self, dim: int, hidden: int, depth: int, clamp: float, seed: int) -> None:
        super().__init__()
        self.coupling = AlternatingCoupling(dim, hidden, depth, clamp)
        self.actnorm = ActNorm(dim)
        self.permute = FixedPermutation(dim, seed)

    def forward(
        self, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, rev: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not rev:
            x, ld1 = self.coupling(x, c1, c2)
            x, ld2 = self.actnorm(x)
            return self.permute(x), ld1 + ld2
        x = self.permute(x, rev=True)
        x, ld2 = self.actnorm(x, rev=True)
        x, ld1 = self.coupling(x, c1, c2, rev=True)
        return x, ld1 + ld2
