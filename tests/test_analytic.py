"""The cINN learns a conditional density whose answer is known in closed form.

Task (bench/analytic.py): z_Θ = A z_Φ + L ε, z_Φ ~ N(0, I_4), ε ~ N(0, I_6), so p(z_Θ | c) = N(A c, LLᵀ)
and no model can score a held-out NLL below H = ½·log((2πe)^D det LLᵀ)/D nats/dim.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from analytic import LinearGaussianTask, make_task  # noqa: E402

from n2n_hub.cinn import ConditionalINN, ConditionSpec  # noqa: E402
from n2n_hub.cinn.nll import standard_normal_nll_per_dim  # noqa: E402
from n2n_hub.training import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.slow  # trains a flow for seconds to meet closed-form statistics

D, C = 6, 4
N_SAMPLES = 20_000  # samples drawn per fixed condition



@pytest.fixture(scope="module")
def trained() -> tuple[LinearGaussianTask, ConditionalINN, float, tuple[torch.Tensor, torch.Tensor]]:
    """≈10 s of CPU training on 40k fresh pairs; returns the task, the flow and its held-out NLL."""
    task = make_task(D, C, seed=1)
    g = torch.Generator().manual_seed(0)
    c, z = task.sample(40_000, g)
    val = task.sample(4_000, g)
    flow = ConditionalINN(D, ConditionSpec((C,), "vector"), n_blocks=3, hidden=64, seed=0)
    config = TrainConfig(steps=500, batch_size=512, lr=3e-3, warmup_steps=50, val_every=100, progress=False)
    result = train(flow, c, z, config, val=val)
    return task, flow, result.val_nll, val


def test_closed_form_entropy_matches_the_empirical_nll_of_the_true_density() -> None:
    # Checks the reference itself: the exact density's mean NLL on 200k samples is H ± 3 SE.
    task = make_task(D, C, seed=1)
    c, z = task.sample(200_000, torch.Generator().manual_seed(3), dtype=torch.float64)
    nll = task.true_nll(z, c) / D
    assert abs(nll.mean().item() - task.entropy_per_dim) < 3 * nll.std().item() / 200_000 ** 0.5


def test_held_out_nll_is_within_0_05_nats_per_dim_of_the_true_conditional_entropy(trained) -> None:
    task, _, val_nll, (cv, zv) = trained
    assert abs(val_nll - task.entropy_per_dim) < 0.05
    # Paired comparison on the same held-out pairs removes their sampling noise: the learnt
    # density can only be worse than the truth by its KL divergence, plus estimation noise.
    true_on_val = (task.true_nll(zv, cv).mean() / D).item()
    assert -0.01 < val_nll - true_on_val < 0.05
    assert val_nll < standard_normal_nll_per_dim() - 0.4  # far below what ignoring c would give


def test_samples_for_a_fixed_condition_have_the_true_mean_and_covariance(trained) -> None:
    """Tolerances: 4 standard errors of the estimate from N_SAMPLES draws, plus a model allowance.

    With n = 20 000 draws the sample mean of coordinate i has SE σ_i/√n ≈ 0.007 σ_i and the sample
    covariance entry (i, j) has SE √((Σ_ii Σ_jj + Σ_ij²)/n) ≤ 0.01 √(Σ_ii Σ_jj); 4 SE makes a false
    alarm from sampling alone a < 1e-4 event per entry. On top we allow the model an error of
    0.1 σ in the mean and 0.1 √(Σ_ii Σ_jj) in the covariance: a Gaussian wrong by that much costs a
    KL of about 0.005 nats/dim, an order below the NLL budget above. The KL of the samples' Gaussian
    fit to the truth must stay under 0.02 nats/dim (sampling alone adds ≈ D(D+3)/(4n) ≈ 0.0007 total).
    """
    task, flow, _, (cv, _) = trained
    conditions = torch.cat([torch.zeros(1, C), cv[:2]])
    samples = flow.sample(conditions, n=N_SAMPLES, generator=torch.Generator().manual_seed(1)).double()
    sigma = task.covariance
    var = torch.diagonal(sigma)
    scale = (var[:, None] * var[None, :]).sqrt()
    se_mean = (var / N_SAMPLES).sqrt()
    se_cov = ((var[:, None] * var[None, :] + sigma**2) / N_SAMPLES).sqrt()
    for i in range(len(conditions)):
        mu = task.mean(conditions[i:i + 1].double())[0]
        m = samples[i].mean(0)
        s = torch.cov(samples[i].T)
        assert ((m - mu).abs() <= 4 * se_mean + 0.1 * var.sqrt()).all(), (m - mu) / var.sqrt()
        assert ((s - sigma).abs() <= 4 * se_cov + 0.1 * scale).all(), (s - sigma) / scale
        diff = m - mu
        kl = 0.5 * (torch.trace(torch.linalg.solve(sigma, s)) + diff @ torch.linalg.solve(sigma, diff) - D
                    + torch.logdet(sigma) - torch.logdet(s))
        assert kl.item() / D < 0.02


def test_the_flow_is_not_just_predicting_the_mean(trained) -> None:
    # Samples spread like the true noise, unlike the MLP ablation which collapses onto A c.
    task, flow, _, _ = trained
    s = flow.sample(torch.zeros(1, C), n=2_000, generator=torch.Generator().manual_seed(2))[0].double()
    ratio = s.std(0) / torch.diagonal(task.covariance).sqrt()
    assert ((ratio > 0.9) & (ratio < 1.1)).all()
