"""The linear translator kind: ridge least squares solved in closed form, through the trainer and the hub."""

from __future__ import annotations

import pytest
import torch

from n2n_hub.cinn import ConditionSpec
from n2n_hub.cinn.linear import LinearTranslator
from n2n_hub.errors import InputError
from n2n_hub.training import TrainConfig, train, train_loader


def problem(n=60, p=7, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, p, generator=g, dtype=torch.float64) * torch.linspace(0.1, 3, p, dtype=torch.float64) + 2
    z = x @ torch.randn(p, d, generator=g, dtype=torch.float64) + 0.3 * torch.randn(n, d, generator=g,
                                                                                       dtype=torch.float64) - 1
    return x, z


def fitted(x, z, ridge, condition=None, batch=17):
    m = LinearTranslator(z.shape[1], condition or ConditionSpec((x.shape[1],), "vector"), ridge=ridge).double()
    m.fit_closed_form((x[i:i + batch], z[i:i + batch]) for i in range(0, x.shape[0], batch))
    return m


def test_closed_form_equals_numeric_least_squares():
    x, z = problem()
    m = fitted(x, z, ridge=0.0)
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)  # [X, 1]: weights and bias
    solution = torch.linalg.lstsq(design, z).solution
    assert torch.allclose(m.weight.T, solution[:-1], atol=1e-9)
    assert torch.allclose(m.bias, solution[-1], atol=1e-9)


def test_ridge_equals_least_squares_on_the_augmented_system():
    x, z = problem(n=25, p=10)
    ridge = 0.05
    m = fitted(x, z, ridge=ridge)
    xc, zc = x - x.mean(0), z - z.mean(0)
    lam = ridge * float((xc * xc).sum()) / x.shape[1]  # relative to the features' scale
    design = torch.cat([xc, lam ** 0.5 * torch.eye(x.shape[1], dtype=x.dtype)])
    target = torch.cat([zc, torch.zeros(x.shape[1], z.shape[1], dtype=z.dtype)])
    w = torch.linalg.lstsq(design, target).solution
    assert torch.allclose(m.weight.T, w, atol=1e-9)
    assert torch.allclose(m.bias, z.mean(0) - x.mean(0) @ w, atol=1e-9)


def test_more_features_than_pairs_gives_the_minimum_norm_solution():
    x, z = problem(n=6, p=12)
    m = fitted(x, z, ridge=0.0)
    xc, zc = x - x.mean(0), z - z.mean(0)
    assert torch.allclose(m.weight.T, torch.linalg.pinv(xc) @ zc, atol=1e-8)
    assert torch.allclose(m(x), z, atol=1e-8)  # it interpolates the training pairs


def test_fewer_pairs_than_features_solve_the_same_ridge_system():
    """The dual (n×n) path gives what the augmented least-squares system gives, batches split anyhow."""
    x, z = problem(n=9, p=30)
    ridge = 0.05
    xc, zc = x - x.mean(0), z - z.mean(0)
    lam = ridge * float((xc * xc).sum()) / x.shape[1]
    design = torch.cat([xc, lam ** 0.5 * torch.eye(x.shape[1], dtype=x.dtype)])
    target = torch.cat([zc, torch.zeros(x.shape[1], z.shape[1], dtype=z.dtype)])
    w = torch.linalg.lstsq(design, target).solution
    for batch in (2, 9):
        m = fitted(x, z, ridge=ridge, batch=batch)
        assert torch.allclose(m.weight.T, w, atol=1e-9) and torch.allclose(m.bias, z.mean(0) - x.mean(0) @ w, atol=1e-9)
    # crossing from the kept rows to the p×p statistics mid-stream changes nothing
    x, z = problem(n=40, p=30)
    primal = fitted(x, z, ridge=ridge, batch=7)
    xc, zc = x - x.mean(0), z - z.mean(0)
    lam = ridge * float((xc * xc).sum()) / x.shape[1]
    w = torch.linalg.solve(xc.T @ xc + lam * torch.eye(30, dtype=x.dtype), xc.T @ zc)
    assert torch.allclose(primal.weight.T, w, atol=1e-9)


def test_label_conditions_predict_each_class_mean():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    z = torch.tensor([[1.0], [3.0], [0.0], [3.0], [6.0], [-2.0]], dtype=torch.float64)
    m = fitted(labels, z, ridge=0.0, condition=ConditionSpec((), "label", 3), batch=4)
    assert torch.allclose(m(torch.tensor([0, 1, 2])), torch.tensor([[2.0], [3.0], [-2.0]], dtype=torch.float64))


def test_the_trainer_solves_it_once_from_tensors_or_a_loader():
    x, z = problem(n=200, p=5)
    x, z = x.float(), z.float()
    config = TrainConfig(steps=500, batch_size=32, progress=False, val_fraction=0.0)
    a = LinearTranslator(3, ConditionSpec((5,), "vector"), ridge=1e-3)
    result = train(a, x, z, config, val=(x[:20], z[:20]))
    assert result.steps == 0 and result.objective == "mse" and result.best_val_mse is not None
    assert result.best_val_mse == pytest.approx(float((a(x[:20]) - z[:20]).pow(2).mean().detach()), rel=1e-5)
    b = LinearTranslator(3, ConditionSpec((5,), "vector"), ridge=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, z), batch_size=64)
    train_loader(b, loader, config)
    assert torch.allclose(a.weight, b.weight, atol=1e-5) and torch.allclose(a.bias, b.bias, atol=1e-5)
    assert bool(a.fitted) and bool(b.fitted)


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(InputError, match="ridge must be a finite number >= 0"):
        LinearTranslator(2, ConditionSpec((3,), "vector"), ridge=-1)


def test_a_wide_tap_fits_through_the_pairs_and_a_system_too_large_is_refused(monkeypatch):
    from n2n_hub.cinn import linear

    wide = LinearTranslator(2, ConditionSpec((512, 8, 8), "spatial"))  # 32768 entries, 40 pairs: the n×n form
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(40, 512, 8, 8, generator=g), torch.randn(40, 2, generator=g)
    assert wide.fit_closed_form([(x[:25], z[:25]), (x[25:], z[25:])]) == 40
    assert torch.allclose(wide(x), z, atol=1e-3)  # more entries than pairs: it interpolates them
    x, z = problem(n=40, p=30)
    monkeypatch.setattr(linear, "MAX_FEATURES", 20)  # 40 pairs > 30 entries: the p×p form, past its limit
    with pytest.raises(InputError, match="read a smaller tap"):
        fitted(x, z, ridge=0.0)
    monkeypatch.setattr(linear, "MAX_KEPT", 100)  # 4 pairs of 30 entries kept for the n×n form: past it
    with pytest.raises(InputError, match="use fewer pairs"):
        fitted(x[:10], z[:10], ridge=0.0, batch=5)


def test_the_linear_kind_pairs_caches_and_samples_through_the_hub(toy_hub, toy_host, tmp_path):
    from n2n_hub.hub import Hub

    t = toy_hub.pair("toytext", "toygen", translator="linear", ridge=0.01)
    assert t.kind == "linear" and isinstance(t.module, LinearTranslator) and t.module.ridge == 0.01
    assert t.metrics["steps"] == 0 and t.metrics["best_val_mse"] < 1.0  # the caption explains the shape
    r = t.translate(["a circle", "a triangle"], n=3, seed=0)
    assert r.latents.shape == (2, 3, 4) and torch.equal(r.latents[:, 0], r.latents[:, 2])  # one point per input
    assert r.latents[0].mean() < r.latents[1].mean()  # toyshapes: circles centre on -1, triangles on +1
    again = Hub(home=tmp_path / "home", host=toy_host, progress=False, log=lambda m: None).pair(
        "toytext", "toygen", translator="linear", ridge=0.01, train_if_missing=False)
    assert again.path == t.path and torch.equal(again.module.weight, t.module.weight)
