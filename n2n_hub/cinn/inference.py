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
- no log-det is computed;
- with several threads and few rows, each matrix product is split in two halves of output rows
  run as one batched product (:class:`_Linear`): torch's ``addmm`` leaves such memory-bound
  products to one thread, the batched one gives each thread half of the weight bytes.

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


# A product of at most this many rows runs as two batched halves when torch has several threads.
# On 2 cores (AMD EPYC, MKL) the halves took 0.62× the time of addmm at 1 row and 0.85× at 128
# rows for 1024-wide layers, 0.44× at 1 row and 0.9× at 128 for 256-wide ones.
SPLIT_MAX_ROWS = 128
# Weights with fewer output rows stay whole: their product is too short to share.
SPLIT_MIN_OUTPUTS = 128


def flow_tensors(flow: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer the inference form reads: the blocks', the condition projection's and the whitening's."""
    tensors = list(flow.blocks.parameters()) + list(flow.blocks.buffers()) + list(flow.cond_proj.parameters())
    if flow.whitening is not None:
        tensors += list(flow.whitening.parameters()) + list(flow.whitening.buffers())
    return tensors


def _stamp(tensors: list[torch.Tensor]) -> list[tuple[int, int]]:
    """Where each tensor's data lives and how often it was written in place (optimiser steps, loads)."""
    return [(t.data_ptr(), t._version) for t in tensors]


def split_rows(x: torch.Tensor) -> bool:
    """Whether products with ``x`` run as two batched halves: few rows on a CPU with several threads."""
    return x.device.type == "cpu" and 0 < x.shape[0] <= SPLIT_MAX_ROWS and torch.get_num_threads() > 1


class _Linear:
    """``acc + x·Wᵀ`` with ``acc`` the bias or a given tensor, whole (``addmm``) or in two halves of output rows.

    The halves are views of the same weight, ``(2, in, out/2)``, multiplied by ``x`` in one
    ``baddbmm``, which hands each thread one half. The rows come out equal to ``addmm``'s
    within rounding (bit for bit at 4 rows and more in our measurements, ~1e-7 apart below).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        out, width = weight.shape
        self.bias, self.w_t, self.out = bias, weight.t(), out
        self.halves = self.bias_halves = None
        if out % 2 == 0 and out >= SPLIT_MIN_OUTPUTS:
            self.halves = weight.view(2, out // 2, width).transpose(1, 2)
            self.bias_halves = None if bias is None else bias.view(2, 1, out // 2)

    def halved(self, x: torch.Tensor, acc: torch.Tensor | None = None) -> torch.Tensor:
        """``(2, rows, out/2)``: the two halves of the product; ``acc`` comes in that shape too. Needs :attr:`halves`."""
        return torch.baddbmm(self.bias_halves if acc is None else acc, x.expand(2, *x.shape), self.halves)

    def __call__(self, x: torch.Tensor, split: bool, acc: torch.Tensor | None = None) -> torch.Tensor:
        """``(rows, out)``; with ``split`` (where the weight has halves) ``acc`` is given as halves."""
        if not (split and self.halves is not None):
            return torch.addmm(self.bias if acc is None else acc, x, self.w_t)
        y = self.halved(x, acc)
        rows = x.shape[0]
        return y.view(1, self.out) if rows == 1 else y.transpose(0, 1).reshape(rows, self.out)


class _Subnet:
    """One coupling subnet as plain tensors; its last layer emits ``(tanh argument, shift)``."""

    def __init__(self, net: ConditionalSubnet, d_out: int, clamp: float) -> None:
        self.slope = net.slope
        self.inp = _Linear(net.inp.weight, None)
        self.body = [_Linear(m.weight, m.bias) for m in net.body if isinstance(m, nn.Linear)]
        self.d_out = d_out
        self.clamp = clamp
        w, b = net.out.weight, net.out.bias
        # Scaling by a power of two is exact, so (W/2)·a + b/2 is bit for bit (W·a + b)/2.
        self.folded = math.frexp(clamp)[0] == 0.5
        if self.folded:
            w = torch.cat([w[:d_out] / clamp, w[d_out:]])
            b = torch.cat([b[:d_out] / clamp, b[d_out:]])
        self.out = _Linear(w, b)  # rows: d_out log-scales, then d_out shifts, so its halves are (u, t)
        self.sizes = [d_out, w.shape[0] - d_out]

    def __call__(self, x: torch.Tensor, c: torch.Tensor, factor: float, split: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """``(exp(s · factor / clamp), t)`` of the coupling, ``s`` soft-clamped: ``factor`` is ±clamp."""
        relu, slope = F.leaky_relu_, self.slope  # a batch-1 call is mostly this loop
        a = relu(self.inp(x, split, c), slope)
        for layer in self.body:
            a = relu(layer(a, split), slope)
        if split and self.out.halves is not None:
            u, t = self.out.halved(a)
        else:
            u, t = self.out(a, False).split(self.sizes, 1)
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

    def forward(self, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, split: bool) -> torch.Tensor:
        x1, x2 = x[:, :self.d1], x[:, self.d1:]
        e, t = self.f1(x1, c1, self.clamp, split)
        x2 = torch.addcmul(t, x2, e)
        e, t = self.f2(x2, c2, self.clamp, split)
        x1 = torch.addcmul(t, x1, e)
        y = torch.cat([x1, x2], dim=1)
        return y.add_(self.bias).mul_(self.scale).index_select(1, self.perm)

    def inverse(self, y: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, split: bool) -> torch.Tensor:
        x = y.index_select(1, self.inv).mul_(self.inv_scale).sub_(self.bias)  # a fresh buffer, updated in place
        x1, x2 = x[:, :self.d1], x[:, self.d1:]
        e, t = self.f2(x2, c2, -self.clamp, split)
        x1.sub_(t).mul_(e)
        e, t = self.f1(x1, c1, -self.clamp, split)
        x2.sub_(t).mul_(e)
        return x


class InferenceForm:
    """A built inference form of one flow: ``residual`` (τ⁻¹) and ``inverse`` (τ) without log-dets."""

    def __init__(self, flow: nn.Module) -> None:
        self.tensors = flow_tensors(flow)
        self.stamp = _stamp(self.tensors)
        self.blocks = [_Block(b) for b in flow.blocks]
        self.cond_proj = _Linear(flow.cond_proj.weight, flow.cond_proj.bias)
        self.subnets = 2 * len(self.blocks)
        w = flow.whitening
        self.whiten = None if w is None else w.whiten  # v = L⁻¹(z − mean)
        self.colour = None if w is None else _Linear(w.lower, w.mean)  # z = v·Lᵀ + mean

    def matches(self, flow: nn.Module) -> bool:
        """Whether the flow's weights are still the ones this form was built from.

        Cheap enough for every call: the tensors are listed once at build time. In-place writes
        (``load_state_dict``, most optimisers) and ``.data`` swaps show here; the flow drops its
        form itself on ``.to()`` and on ``train()``, since torch's fused Adam writes weights
        without bumping their version counters.
        """
        return self.stamp == _stamp(self.tensors)

    def condition_slices(self, h: torch.Tensor, split: bool) -> list[torch.Tensor]:
        """Each subnet's share of its first layer from the embedded condition ``h`` (the flow's ``cond_proj``).

        With ``split`` each share comes as the halves its first layer adds them to, ``(2, rows, hidden/2)``.
        """
        shares = self.cond_proj(h, split)
        if not (split and self.blocks[0].f1.inp.halves is not None):
            return list(shares.chunk(self.subnets, dim=-1))
        rows = h.shape[0]
        return list(shares.view(rows, self.subnets, 2, -1).permute(1, 2, 0, 3).unbind(0))

    def inverse(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``z = τ(v | c)`` given the embedded condition ``h = H(c)``."""
        split = split_rows(v)
        cs = self.condition_slices(h, split)
        for i in reversed(range(len(self.blocks))):
            v = self.blocks[i].inverse(v, cs[2 * i], cs[2 * i + 1], split)
        if self.colour is not None:
            v = self.colour(v, split)
        return v

    def residual(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``v = τ⁻¹(z | c)`` given the embedded condition ``h = H(c)``."""
        split = split_rows(z)
        cs = self.condition_slices(h, split)
        if self.whiten is not None:
            z = self.whiten(z)
        for i, block in enumerate(self.blocks):
            z = block.forward(z, cs[2 * i], cs[2 * i + 1], split)
        return z
