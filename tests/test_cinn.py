"""The conditional INN τ: exact inversion, exact log-determinants, gradients, determinism.

Direction convention under test: ``forward(z, c) -> (v, log|det ∂v/∂z|)`` with v = τ⁻¹(z|c),
``inverse(v, c) -> z``.
"""

from __future__ import annotations

import math

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.cinn.coupling import INNBlock
from n2n_hub.cinn.whitening import MAX_DIM as MAX_WHITENED_DIM
from n2n_hub.cinn.whitening import RELATIVE_RIDGE
from n2n_hub.cinn.whitening import Whitening
from n2n_hub.errors import ShapeError




CONDITIONS = {
    "vector": (ConditionSpec((7,), "vector"), lambda g, b: torch.randn(b, 7, generator=g)),
    "spatial": (ConditionSpec((3, 8, 8), "spatial"), lambda g, b: torch.randn(b, 3, 8, 8, generator=g)),
    "label": (ConditionSpec((), "label", num_classes=5), lambda g, b: torch.randint(0, 5, (b,), generator=g)),
}


def make_flow(dim: int, kind: str, dtype: torch.dtype = torch.float32, n_blocks: int = 6,
              seed: int = 0) -> tuple[ConditionalINN, torch.Tensor, torch.Tensor]:
    """A small flow made deliberately non-trivial, ActNorm-initialised on shifted, scaled data.

    Fresh couplings start near the identity (small output weights); we scale those weights up so
    the log-scales reach the soft clamp and the test exercises real affine maps.
    """
    spec, make_c = CONDITIONS[kind]
    flow = ConditionalINN(dim, spec, n_blocks=n_blocks, hidden=16, seed=seed).to(dtype)
    with torch.no_grad():
        for block in flow.blocks:
            for subnet in (block.coupling.f1, block.coupling.f2):
                subnet.out.weight.mul_(20.0)
                subnet.out.bias.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(123)
    c = make_c(g, 64)
    if c.dtype.is_floating_point:
        c = c.to(dtype)
    z = (torch.randn(64, dim, generator=g) * torch.linspace(0.5, 3.0, dim) + 2.0).to(dtype)
    flow.initialize(z, c)
    flow.eval()
    return flow, z, c


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
@pytest.mark.parametrize("dim", [2, 3, 5])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_inverse_undoes_forward_to_rounding_error(kind: str, dim: int, dtype: torch.dtype, tol: float) -> None:
    flow, z, c = make_flow(dim, kind, dtype)
    with torch.no_grad():
        v, _ = flow(z, c)
        assert (flow.inverse(v, c) - z).abs().max().item() < tol
        x = torch.randn(64, dim, generator=torch.Generator().manual_seed(5), dtype=dtype)
        assert (flow(flow.inverse(x, c), c)[0] - x).abs().max().item() < tol


@pytest.mark.parametrize("kind", ["vector", "label"])
@pytest.mark.parametrize("dim", [2, 3, 5])
def test_logdet_equals_slogdet_of_the_autograd_jacobian(kind: str, dim: int) -> None:
    flow, z, c = make_flow(dim, kind, torch.float64)
    with torch.no_grad():
        _, logdet = flow(z[:4], c[:4])
    for i in range(4):
        jac = torch.autograd.functional.jacobian(lambda x: flow(x[None], c[i:i + 1])[0][0], z[i])
        sign, expected = torch.linalg.slogdet(jac)
        assert sign.item() != 0
        assert abs(logdet[i].item() - expected.item()) < 1e-8


def test_logdet_is_not_trivially_zero_after_actnorm_init() -> None:
    # Otherwise the Jacobian test above could pass with a volume-preserving bug.
    flow, z, c = make_flow(5, "vector", torch.float64)
    with torch.no_grad():
        _, logdet = flow(z, c)
    assert logdet.abs().min().item() > 0.1


def test_block_reverse_logdet_is_minus_forward_logdet() -> None:
    block = INNBlock(5, hidden=16, depth=3, clamp=2.0, seed=1).double()
    x = torch.randn(8, 5, dtype=torch.float64)
    c1, c2 = torch.randn(8, 16, dtype=torch.float64), torch.randn(8, 16, dtype=torch.float64)
    block.actnorm.initialize(x * 3 + 1)
    y, ld = block(x, c1, c2)
    x_back, ld_rev = block(y, c1, c2, rev=True)
    assert torch.allclose(x_back, x, atol=1e-12)
    assert torch.allclose(ld_rev, -ld, atol=1e-12)


def test_nll_is_the_gaussian_nll_of_the_residual_minus_logdet() -> None:
    flow, z, c = make_flow(3, "vector", torch.float64)
    v, logdet = flow(z, c)
    expected = 0.5 * v.pow(2).sum(1) + 1.5 * math.log(2 * math.pi) - logdet
    assert torch.allclose(flow.nll(z, c), expected, atol=1e-12)
    assert torch.allclose(flow.log_prob(z, c), -expected, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
def test_every_parameter_receives_a_nonzero_gradient(kind: str) -> None:
    flow, z, c = make_flow(5, kind)
    flow.train()
    flow.nll(z, c).mean().backward()
    for name, p in flow.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum().item() > 0, name


@pytest.mark.parametrize("kind", sorted(CONDITIONS))
def test_train_and_eval_mode_give_the_same_log_prob_after_init(kind: str) -> None:
    flow, z, c = make_flow(5, kind)
    with torch.no_grad():
        flow.train()
        a = flow.log_prob(z, c)
        flow.eval()
        b = flow.log_prob(z, c)
    assert torch.equal(a, b)


def test_building_a_flow_leaves_the_global_rng_untouched() -> None:
    torch.manual_seed(42)
    before = torch.get_rng_state()
    ConditionalINN(6, ConditionSpec((4,), "vector"), n_blocks=3, hidden=8)
    ConditionalINN(6, ConditionSpec((2, 8, 8), "spatial"), n_blocks=2, hidden=8)
    assert torch.equal(torch.get_rng_state(), before)


def test_equal_configs_build_equal_flows_whatever_the_global_seed() -> None:
    spec = ConditionSpec((4,), "vector")
    torch.manual_seed(1)
    a = ConditionalINN(6, spec, n_blocks=3, hidden=8, seed=7)
    torch.manual_seed(2)
    b = ConditionalINN(6, spec, n_blocks=3, hidden=8, seed=7)
    c = ConditionalINN(6, spec, n_blocks=3, hidden=8, seed=8)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.blocks[0].permute.perm, c.blocks[0].permute.perm) or not torch.equal(
        a.cond_proj.weight, c.cond_proj.weight)


def test_lazy_init_on_first_training_batch_whitens_and_standardises() -> None:
    spec = ConditionSpec((4,), "vector")
    flow = ConditionalINN(3, spec, n_blocks=2, hidden=8)
    mix = torch.tensor([[3.0, 0, 0], [2.0, 1.5, 0], [-1.0, 1.0, 1.0]])  # correlated, well conditioned
    z, c = torch.randn(256, 3) @ mix.T + 3, torch.randn(256, 4)
    flow.train()
    with torch.no_grad():
        flow(z, c)
        w, _ = flow.whitening(z)
        x, _ = flow.blocks[0].coupling(w, *flow.embed(c)[:2])
        y, _ = flow.blocks[0].actnorm(x)
    assert w.mean(0).abs().max().item() < 1e-4
    assert (torch.cov(w.T, correction=0) - torch.eye(3)).abs().max().item() < 1e-3
    assert y.mean(0).abs().max().item() < 1e-4
    assert (y.std(0, unbiased=False) - 1).abs().max().item() < 1e-3
    assert bool(flow.blocks[0].actnorm.initialized)


def correlated(n: int, dim: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mix = (torch.randn(dim, dim, generator=g, dtype=dtype).tril(-1) + 1.5 * torch.eye(dim, dtype=dtype)).flip(0)
    return torch.randn(n, dim, generator=g, dtype=dtype) @ mix.T + torch.arange(dim, dtype=dtype)


def test_whitening_is_an_exact_affine_map_with_the_cholesky_log_det() -> None:
    w = Whitening(5).double()
    z = correlated(500, 5)
    w.fit(z)
    v, logdet = w(z)
    assert v.mean(0).abs().max() < 1e-10
    # Whitened up to the ridge r that keeps the factorisation stable: cov(v) has eigenvalues λ/(λ + r).
    lam = torch.linalg.eigvalsh(torch.cov(z.T, correction=0))
    ridge = RELATIVE_RIDGE * lam.mean()
    assert torch.allclose(torch.linalg.eigvalsh(torch.cov(v.T, correction=0)), lam / (lam + ridge), atol=1e-10)
    back, _ = w(v, rev=True)
    assert (back - z).abs().max() < 1e-10
    jac = torch.autograd.functional.jacobian(lambda x: w(x.unsqueeze(0))[0][0], z[0])
    assert abs(torch.linalg.slogdet(jac).logabsdet - logdet[0]) < 1e-10


def test_whitening_survives_rank_deficient_data() -> None:
    z = correlated(200, 4)
    z = torch.cat([z, z[:, :1], torch.full((200, 1), 3.0, dtype=torch.float64)], dim=1)  # a copy, a constant
    w = Whitening(6).double()
    w.fit(z)
    v, logdet = w(z)
    assert torch.isfinite(v).all() and torch.isfinite(logdet).all()
    assert (w(v, rev=True)[0] - z).abs().max() < 1e-8


def test_a_flow_cast_to_bfloat16_on_the_cpu_scores_samples_and_trains() -> None:
    """torch has no bfloat16 triangular solve on the CPU: the whitening solves in float32 and returns bfloat16."""
    torch.manual_seed(0)
    flow = ConditionalINN(8, ConditionSpec((5,), "vector"), n_blocks=2, hidden=16)
    z, c = correlated(64, 8).float(), torch.randn(64, 5)
    flow.initialize(z, c)
    flow.eval()
    reference = flow.nll(z, c)
    half = flow.to(torch.bfloat16)
    nll = half.nll(z.bfloat16(), c.bfloat16())
    assert nll.dtype == torch.float32  # the log-dets are summed in float32
    assert torch.allclose(nll, reference, rtol=0.02, atol=0.05)
    v, _ = half.whitening(z.bfloat16())
    assert v.dtype == torch.bfloat16
    assert half.sample(c[:2].bfloat16(), n=3).shape == (2, 3, 8)
    with torch.no_grad():  # the inference form whitens with the same solve
        assert half.sample_residual(z[:3].bfloat16(), c[:3].bfloat16()).dtype == torch.bfloat16
    half.train()
    half.loss(z.bfloat16(), c.bfloat16()).float().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in half.parameters() if p.grad is not None)


def test_whitening_is_on_by_default_recorded_in_the_config_and_can_be_turned_off() -> None:
    spec = ConditionSpec((4,), "vector")
    assert ConditionalINN(6, spec, n_blocks=1, hidden=8).config()["whiten"] is True
    off = ConditionalINN(6, spec, n_blocks=1, hidden=8, whiten=False)
    assert off.whitening is None and off.config()["whiten"] is False
    big = ConditionalINN(MAX_WHITENED_DIM + 1, spec, n_blocks=1, hidden=4, cond_dim=4, embed_hidden=4)
    assert big.whitening is None and big.config()["whiten"] is False  # its D×D factor would be too large
    rebuilt = ConditionalINN.from_config(off.config())
    assert rebuilt.whitening is None


def test_sample_shape_temperature_and_generator() -> None:
    flow, _, c = make_flow(5, "vector")
    s1 = flow.sample(c[:3], n=4, generator=torch.Generator().manual_seed(0))
    s2 = flow.sample(c[:3], n=4, generator=torch.Generator().manual_seed(0))
    assert s1.shape == (3, 4, 5) and torch.equal(s1, s2)
    cold = flow.sample(c[:3], n=2, temperature=0.0)
    assert torch.allclose(cold[:, 0], cold[:, 1])  # zero temperature: the mode path, no noise
    with pytest.raises(ValueError):
        flow.sample(c[:3], n=0)


def test_transfer_keeps_the_residual_and_swaps_the_condition() -> None:
    flow, z, c = make_flow(4, "label")
    c_new = (c[:8] + 1) % 5
    z_new = flow.transfer(z[:8], c[:8], c_new)
    assert torch.allclose(flow.residual(z_new, c_new), flow.residual(z[:8], c[:8]), atol=1e-4)
    assert torch.allclose(flow.transfer(z[:8], c[:8], c[:8]), z[:8], atol=1e-4)


def test_wrong_target_shape_names_expected_and_received_shapes() -> None:
    flow, _, c = make_flow(5, "vector")
    with pytest.raises(ShapeError, match=r"\(4, 3\).*\(B, 5\)"):
        flow.residual(torch.randn(4, 3), c[:4])
    with pytest.raises(ShapeError, match="4 targets but 3 conditions"):
        flow.residual(torch.randn(4, 5), c[:3])


def test_config_round_trip_rebuilds_the_same_architecture() -> None:
    flow, _, _ = make_flow(5, "spatial")
    clone = ConditionalINN.from_config(flow.config())
    assert clone.config() == flow.config()
    assert {k: v.shape for k, v in clone.state_dict().items()} == {k: v.shape for k, v in flow.state_dict().items()}
