"""The flow's wide condition product: the same map and gradients as F.linear, and the flow takes it."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.cinn import wide_linear as wide
from n2n_hub.cinn.wide_linear import WIDE_MIN_OUTPUTS, wide_linear


def _grads(fn, x, w, b, g):
    for t in (x, w, b):
        if t is not None:
            t.grad = None
    y = fn(x, w, b)
    y.backward(g)
    return y.detach(), [None if t is None else t.grad for t in (x, w, b)]


@pytest.mark.parametrize("rows", [1, 5, 64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_the_wide_product_and_its_gradients_are_f_linear_s(rows: int, with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(rows)
    out = WIDE_MIN_OUTPUTS + 3  # a last gradient block shorter than the others
    x = torch.randn(rows, 24, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(out, 24, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(out, generator=gen, dtype=torch.float64, requires_grad=True) if with_bias else None
    g = torch.randn(rows, out, generator=gen, dtype=torch.float64)
    y, grads = _grads(wide_linear, x, w, b, g)
    y_ref, ref = _grads(F.linear, x, w, b, g)
    assert y.shape == (rows, out)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, ref):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_a_condition_that_needs_no_gradient_gets_none() -> None:
    x = torch.randn(3, 8)
    w = torch.randn(WIDE_MIN_OUTPUTS, 8, requires_grad=True)
    wide_linear(x, w, None).sum().backward()
    assert x.grad is None and w.grad is not None
    torch.testing.assert_close(w.grad, x.sum(0).expand(WIDE_MIN_OUTPUTS, 8))


def test_a_frozen_weight_gets_none_and_the_condition_its_gradient() -> None:
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(WIDE_MIN_OUTPUTS, 8, dtype=torch.float64)
    b = torch.randn(WIDE_MIN_OUTPUTS, dtype=torch.float64)
    wide_linear(x, w, b).sum().backward()
    assert w.grad is None and b.grad is None
    torch.testing.assert_close(x.grad, w.sum(0).expand(3, 8))


def test_narrow_weights_take_f_linear() -> None:
    x = torch.randn(4, 8, requires_grad=True)
    w = torch.randn(WIDE_MIN_OUTPUTS - 1, 8, requires_grad=True)
    assert "WideLinear" not in type(wide_linear(x, w, None).grad_fn).__name__


def test_a_wide_flow_trains_as_it_does_through_f_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 blocks × 2 subnets × hidden 1024 = 16,384 condition shares: the flow takes the wide product."""
    torch.manual_seed(0)
    z, c = torch.randn(32, 6, dtype=torch.float64), torch.randn(32, 5, dtype=torch.float64)

    def step() -> tuple[torch.Tensor, list[torch.Tensor]]:
        flow = ConditionalINN(6, ConditionSpec.infer((5,), "float32"), n_blocks=8, hidden=1024, depth=1).double()
        flow.initialize(z, c)
        flow.train()
        loss = flow.loss(z, c).mean()
        loss.backward()
        return loss.detach(), [p.grad for p in flow.parameters() if p.requires_grad]

    flow = ConditionalINN(6, ConditionSpec.infer((5,), "float32"), n_blocks=8, hidden=1024, depth=1)
    assert flow.cond_proj.out_features == WIDE_MIN_OUTPUTS
    assert "WideLinear" in type(flow.embed(torch.randn(2, 5))[0].grad_fn.next_functions[0][0]).__name__
    loss, grads = step()
    monkeypatch.setattr(wide, "WIDE_MIN_OUTPUTS", 10**9)  # every product through F.linear
    loss_ref, grads_ref = step()
    torch.testing.assert_close(loss, loss_ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
