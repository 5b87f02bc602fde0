"""Linear CKA: how alike two representations of the same items are."""

from __future__ import annotations

import math

import pytest
import torch

from n2n_hub.errors import InputError, ShapeError
from n2n_hub.evaluation.similarity import linear_cka


def test_one_feature_each_is_the_squared_correlation():
    # centred: x = (-1, 0, 1), y = (0, -1, 1); (x·y)² / (|x|² |y|²) = 1 / (2 · 2)
    assert linear_cka(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [0.0], [2.0]])) == pytest.approx(0.25)


def test_a_hand_computed_two_dimensional_example():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    y = x * torch.tensor([1.0, 2.0])
    # XᵀX = diag(2, 2), YᵀX = diag(2, 4), YᵀY = diag(2, 8): 20 / (√8 · √68) = 5 / √34
    assert linear_cka(x, y) == pytest.approx(5 / math.sqrt(34))
    assert linear_cka(y, x) == pytest.approx(5 / math.sqrt(34))


def test_rotations_scalings_and_shifts_do_not_change_it():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    q = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    assert linear_cka(x, 3 * x @ q + 5) == pytest.approx(1.0)
    noise = torch.randn(40, 6, generator=g)
    assert linear_cka(x, noise) < 0.5


def test_feature_maps_are_flattened_and_wide_features_go_through_the_gram_matrices():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 2, 3, 4, generator=g), torch.randn(5, 30, generator=g)  # n < p: the n×n route
    a = x.reshape(5, -1).double()
    a, b = a - a.mean(0), y.double() - y.double().mean(0)
    by_features = (torch.linalg.norm(b.T @ a) ** 2 / (torch.linalg.norm(a.T @ a) * torch.linalg.norm(b.T @ b)))
    assert linear_cka(x, y) == pytest.approx(float(by_features), rel=1e-9)


def test_mismatched_or_constant_features_are_refused():
    with pytest.raises(ShapeError, match="same items"):
        linear_cka(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(InputError, match="does not vary"):
        linear_cka(torch.ones(3, 2), torch.randn(3, 2))
