"""The flow's inference form: the same maps without log-dets, module calls or per-call parameter maths.

Sampling one row is a chain of small matrix-vector products; at that size a plain pass spends
about as long in Python module calls, log-det sums and re-deriving ``exp(log_scale)`` as in the
products themselves. This form is built once from the trained weights (the matrices are the
module's own tensors, not copies) and runs the blocks as a flat list of ops:

- ActNorm's ``exp(±log_scale)`` is computed once, and its inverse applied in place after the
  permutation's gather;
- the soft clamp's ``1/clamp`` is folded into the rows of each subnet's last layer that emit
  log-scales, where that is exact (a power-of-two clamp, the default 2), else divided at run time;
- in the reverse pass both halves are updated in place in one buffer, so no ``cat`` per block;
- no log-det is computed.

The stored layout (the file format) is untouched: folding happens here, at run time. The
form remembers which weights it was built from (storage and version counter of every
parameter and buffer), so an optimiser step or ``load_state_dict`` makes the flow build a
new one; see :meth:`InferenceForm.matches`.
"""

from __future__ import annotations

import math
import torch
from torch import nn
from torch.nn import functional as F

from .coupling import ConditionalSubnet, INNBlock


def flow_tensors(flow: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer the inference form reads: the blocks' and the whitening's."""
    tensors = list(flow.blocks.parameters()) + list(flow.blocks.buffers())
    if flow.whitening is not None:
        tensors += list(flow.whitening.parameters()) + list(flow.whitening.buffers())
    return tensors


def _stamp(tensors: list[torch.Tensor]) -> list[tuple[int, int]]:
    """Where each tensor's data lives and how often it was written in place (optimiser steps, loads)."""
    return [(t.data_ptr(), t._version) for t in tensors]


class _Subnet:
    """One coupling subnet as plain tensors; its last layer emits ``(tanh argument, shift)``."""

    def __init__(self, net: ConditionalSubnet, d_out: int, clamp: float) -> None:
        self.slope = net.slope
        self.inp_t = net.inp.weight.t()
        self.body = [(m.bias, m.weight.t()) for m in net.body if isinstance(m, nn.Linear)]
        self.d_out = d_out
        self.clamp = clamp
        w, b = net.out.weight, net.out.bias
        # Scaling by a power of two is exact, so (W/2)·a + b/2 is bit for bit (W·a + b)/2.
        self.folded = math.frexp(clamp)[0] == 0.5
        if self.folded:
            w = torch.cat([w[:d_out] / clamp, w[d_out:]])
            b = torch.cat([b[:d_out] / clamp, b[d_out:]])
        self.out_b, self.out_t = b, w.t()
        self.sizes = [d_out, w.shape[0] - d_out]

    def __call__(self, x: torch.Tensor, c: torch.Tensor, factor: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(exp(s · factor / clamp), t)`` of the coupling, ``s`` soft-clamped: ``factor`` is ±clamp."""
        addmm, relu, slope = torch.addmm, F.leaky_relu_, self.slope  # a batch-1 call is mostly this loop
        a = relu(addmm(c, x, self.inp_t), slope)
        for b, w_t in self.body:
            a = relu(addmm(b, a, w_t), slope)
        u, t = addmm(self.out_b, a, self.out_t).split(self.sizes, 1)
        return torch.tanh(u if self.folded else u / self.clamp).mul_(factor).exp_(), t


class _Block:
    """One INN block: coupling, ActNorm and permutation, with ActNorm's scales precomputed."""

    def __init__(self, block: INNBlock) -> None:
        cp = block.coupling
        self.d1 = cp.d1
        self.f1 = _Subnet(cp.f1, cp.d2, cp.clamp)
        self.f2 = _Subnet(cp.f2, cp.d1, cp.clamp)
        an = block.actnorm
        self.bias = an.bias.detach()
        self.scale = torch.exp(an.log_scale.detach())
        self.inv_scale = torch.exp(-an.log_scale.detach())
        self.perm, self.inv = block.permute.perm, block.permute.inv
        self.clamp = cp.clamp

    def forward(self, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, :self.d1], x[:, self.d1:]
        e, t = self.f1(x1, c1, self.clamp)
        x2 = torch.addcmul(t, x2, e)
        e, t = self.f2(x2, c2, self.clamp)
        x1 = torch.addcmul(t, x1, e)
        y = torch.cat([x1, x2], dim=1)
        return y.add_(self.bias).mul_(self.scale).index_select(1, self.perm)

    def inverse(self, y: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        x = y.index_select(1, self.inv).mul_(self.inv_scale).sub_(self.bias)  # a fresh buffer, updated in place
        x1, x2 = x[:, :self.d1], x[:, self.d1:]
        e, t = self.f2(x2, c2, -self.clamp)
        x1.sub_(t).mul_(e)
        e, t = self.f1(x1, c1, -self.clamp)
        x2.sub_(t).mul_(e)
        return x


class InferenceForm:
    """A built inference form of one flow: ``residual`` (τ⁻¹) and ``inverse`` (τ) without log-dets."""

    def __init__(self, flow: nn.Module) -> None:
        self.tensors = flow_tensors(flow)
        self.stamp = _stamp(self.tensors)
        self.blocks = [_Block(b) for b in flow.blocks]
        w = flow.whitening
        self.mean = None if w is None else w.mean
        self.lower = None if w is None else w.lower

    def matches(self, flow: nn.Module) -> bool:
        """Whether the flow's weights are still the ones this form was built from.

        Cheap enough for every call: the tensors are listed once at build time. In-place writes
        (``load_state_dict``, most optimisers) and ``.data`` swaps show here; the flow drops its
        form itself on ``.to()`` and on ``train()``, since torch's fused Adam writes weights
        without bumping their version counters.
        """
        return self.stamp == _stamp(self.tensors)

    def inverse(self, v: torch.Tensor, cs: list[torch.Tensor]) -> torch.Tensor:
        """``z = τ(v | c)`` given the flow's per-subnet condition slices ``cs``."""
        for i in reversed(range(len(self.blocks))):
            v = self.blocks[i].inverse(v, cs[2 * i], cs[2 * i + 1])
        if self.lower is not None:
            v = torch.addmm(self.mean, v, self.lower.T)
        return v

    def residual(self, z: torch.Tensor, cs: list[torch.Tensor]) -> torch.Tensor:
        """``v = τ⁻¹(z | c)`` given the flow's per-subnet condition slices ``cs``."""
        if self.lower is not None:
            z = torch.linalg.solve_triangular(self.lower.T, z - self.mean, upper=True, left=False)
        for i, block in enumerate(self.blocks):
            z = block.forward(z, cs[2 * i], cs[2 * i + 1])
        return z
