"""Sampling and transfer run the flow's inference form: the plain flow's outputs, rebuilt when weights change.

Bit for bit where both take the same products; where the form splits a product of few rows
into two batched halves (several threads), equal within rounding.
"""

from __future__ import annotations

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec, inference
from n2n_hub.training import TrainConfig
from n2n_hub.training.step import adam


def _trained_flow(dim: int = 9, clamp: float = 2.0, projection: int | None = None,
                  hidden: int = 32) -> tuple[ConditionalINN, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    c = torch.randn(300, 6, generator=g)
    z = torch.tanh(c @ torch.randn(6, dim, generator=g)) + 0.3 * torch.randn(300, dim, generator=g)
    flow = ConditionalINN(dim, ConditionSpec.infer((6,), "float32"), n_blocks=3, hidden=hidden, clamp=clamp,
                          condition_projection=projection)
    if projection:
        flow.fit_condition(c, torch.randint(0, projection, (300,), generator=g))
    flow.initialize(z, c)
    opt = adam([p for p in flow.parameters() if p.requires_grad], TrainConfig(lr=1e-2))
    for _ in range(3):  # weights away from their initial values, ActNorm included
        opt.zero_grad()
        flow.loss(z, c).mean().backward()
        opt.step()
    return flow.eval(), c


@pytest.mark.parametrize("dim,clamp,projection", [(9, 2.0, None), (8, 1.5, None), (8, 2.0, 4)])
def test_sampling_and_residuals_are_bit_identical_to_the_plain_flow(dim, clamp, projection):
    flow, c = _trained_flow(dim, clamp, projection)
    g = torch.Generator().manual_seed(1)
    for rows in (1, 5, 64):
        v = torch.randn(rows, dim, generator=g)
        with torch.no_grad():
            assert torch.equal(flow.sample_inverse(v, c[:rows]), flow.inverse(v, c[:rows]))
            z = flow.inverse(v, c[:rows])
            assert torch.equal(flow.residual(z, c[:rows]), flow(z, c[:rows])[0])
    samples = flow.sample(c[:4], n=3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        v = torch.randn(12, dim, generator=torch.Generator().manual_seed(2))
        assert torch.equal(samples.reshape(12, dim), flow.inverse(v, c[:4].repeat_interleave(3, dim=0)))


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("dim", [130, 129])
def test_products_split_in_halves_across_threads_give_the_plain_flows_samples(dim, two_threads):
    flow, c = _trained_flow(dim, hidden=256)  # wide enough that every product of the form splits
    form = flow.inference_form()
    assert all(layer.halves is not None for block in form.blocks for net in (block.f1, block.f2)
               for layer in (net.inp, *net.body, net.out))
    g = torch.Generator().manual_seed(4)
    for rows in (1, 2, 7, inference.SPLIT_MAX_ROWS, inference.SPLIT_MAX_ROWS + 1):
        v = torch.randn(rows, dim, generator=g)
        with torch.no_grad():
            plain = flow.inverse(v, c[:rows])
            fast = flow.sample_inverse(v, c[:rows])
            assert fast.shape == plain.shape and fast.is_contiguous()
            assert (fast - plain).abs().max() <= 1e-5 * max(1.0, plain.abs().max().item())
            assert torch.allclose(flow.residual(plain, c[:rows]), flow(plain, c[:rows])[0], atol=1e-5)
            if rows > inference.SPLIT_MAX_ROWS:  # whole products: the plain flow's bits
                assert torch.equal(fast, plain)
    with torch.no_grad():  # no rows: no products to split
        assert flow.sample_inverse(torch.zeros(0, dim), c[:0]).shape == (0, dim)
    torch.set_num_threads(1)  # one thread: whole products at any batch, the plain flow's bits
    v = torch.randn(1, dim, generator=g)
    with torch.no_grad():
        assert torch.equal(flow.sample_inverse(v, c[:1]), flow.inverse(v, c[:1]))


def test_the_form_follows_the_weights_after_an_optimiser_step_a_load_and_a_cast():
    flow, c = _trained_flow()
    v = torch.randn(5, 9, generator=torch.Generator().manual_seed(3))
    before = flow.inference_form()
    assert flow.inference_form() is before  # reused while the weights stay
    z = flow.sample(c[:5])[:, 0]
    for fused in (True, False):  # the fused Adam writes without bumping version counters: train() tells
        opt = torch.optim.Adam([p for p in flow.parameters() if p.requires_grad], lr=1e-2, fused=fused)
        if fused:
            flow.train()
        flow.loss(z, c[:5]).mean().backward()
        opt.step()
        flow.eval()
        with torch.no_grad():
            assert torch.equal(flow.sample_inverse(v, c[:5]), flow.inverse(v, c[:5]))
        assert flow.inference_form() is not before
        before = flow.inference_form()
    other, _ = _trained_flow()
    other.load_state_dict(flow.state_dict())
    other.inference_form()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.01)
    other.load_state_dict(flow.state_dict())
    with torch.no_grad():
        assert torch.equal(other.sample_inverse(v, c[:5]), flow.inverse(v, c[:5]))
    fresh = {k: v.clone() + 0.01 for k, v in flow.state_dict().items() if v.is_floating_point()}
    other.load_state_dict({**flow.state_dict(), **fresh}, assign=True)  # new tensors, not written ones
    with torch.no_grad():
        assert torch.equal(other.sample_inverse(v, c[:5]), other.inverse(v, c[:5]))
    flow.double()
    with torch.no_grad():
        assert flow.sample_inverse(v.double(), c[:5].double()).dtype == torch.float64


def test_transfer_keeps_the_residual_through_the_inference_form():
    flow, c = _trained_flow()
    z = flow.sample(c[:6])[:, 0]
    with torch.no_grad():
        plain = flow.inverse(flow(z, c[:6])[0], c[6:12])
    assert torch.equal(flow.transfer(z, c[:6], c[6:12]), plain)
    assert torch.allclose(flow.transfer(z, c[:6], c[:6]), z, atol=1e-5)


def test_with_gradients_wanted_or_in_training_mode_the_plain_flow_runs():
    flow, c = _trained_flow()
    v = torch.randn(4, 9, requires_grad=True)
    flow.sample_inverse(v, c[:4]).sum().backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()
    flow.train()
    with torch.no_grad():
        flow.sample_inverse(v, c[:4])
    assert flow._inference_form is None
