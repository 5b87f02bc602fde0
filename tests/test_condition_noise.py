"""The ``condition_noise`` training option: noise on the conditions, sized to each row's scale."""

from __future__ import annotations

import pytest
import torch

from n2n_hub.cinn import ConditionalINN, ConditionSpec
from n2n_hub.errors import InputError
from n2n_hub.training import TrainConfig, evaluate, noisy_condition, train


def test_noise_std_is_the_scale_times_each_rows_rms():
    torch.manual_seed(0)
    c = torch.randn(4000, 64) * torch.tensor([0.1, 1.0, 5.0, 20.0]).repeat(1000)[:, None]
    noise = noisy_condition(c, 0.5) - c
    rms = c.pow(2).mean(1).sqrt()
    ratio = noise.std(dim=1) / rms
    assert ratio.mean().item() == pytest.approx(0.5, rel=0.02)
    assert noise.mean().abs().item() < 0.05
    images = torch.randn(8, 3, 4, 4)
    assert noisy_condition(images, 0.1).shape == images.shape


def test_the_option_is_checked_and_stays_out_of_cache_keys_when_off():
    with pytest.raises(InputError, match="condition_noise must be >= 0"):
        TrainConfig(condition_noise=-0.1)
    assert "condition_noise" not in TrainConfig().to_dict()
    assert TrainConfig(condition_noise=0.3).to_dict()["condition_noise"] == 0.3


@pytest.mark.slow
def test_heavy_condition_noise_leaves_the_flow_knowing_less_about_the_condition():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(1024, 3, generator=g)
    z = torch.cat([c, c[:, :1] * c[:, 1:2]], dim=1) + 0.1 * torch.randn(1024, 4, generator=g)
    scores = {}
    for noise in (0.0, 3.0):
        torch.manual_seed(0)
        model = ConditionalINN(4, ConditionSpec((3,), "vector"), n_blocks=2, hidden=32, seed=0)
        train(model, c[:768], z[:768], TrainConfig(steps=150, batch_size=64, lr=3e-3, warmup_steps=5,
                                                   val_every=50, progress=False, condition_noise=noise))
        scores[noise] = evaluate(model, c[768:], z[768:])
    assert scores[3.0] > scores[0.0] + 0.3
