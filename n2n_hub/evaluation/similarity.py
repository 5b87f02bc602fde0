"""How alike two representations of the same items are: linear CKA (Kornblith et al., 2019).

Centred kernel alignment compares what two networks (or two layers) make of the same n
inputs without training anything: with X̃ and Ỹ the column-centred features,

    CKA(X, Y) = ‖ỸᵀX̃‖²_F / (‖X̃ᵀX̃‖_F · ‖ỸᵀỸ‖_F),

which is 1 when Y is X up to a rotation and an isotropic scaling (plus a shift), and near 0
for unrelated features. It is the cheap companion of a translator: a high CKA says a linear
translator will do; a translator is needed to say what the differences are.
"""

from __future__ import annotations

import torch

from ..errors import InputError, ShapeError


def _matrix(t: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.ndim < 1:
        raise ShapeError(f"{name} must be a tensor of features (n, ...), got {type(t).__name__}")
    t = t.detach().reshape(t.shape[0], -1).to("cpu", torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise InputError(f"{name} holds NaN or inf values")
    return t - t.mean(dim=0, keepdim=True)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of features ``x`` (n, p) and ``y`` (n, q) of the same n items, in [0, 1].

    Features of more dimensions (``(n, C, H, W)`` maps) are flattened per item. Computed in
    float64, through the n×n Gram matrices when they are smaller than the feature ones.
    """
    a, b = _matrix(x, "x"), _matrix(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ShapeError(f"x and y must describe the same items: got {a.shape[0]} and {b.shape[0]} rows")
    if a.shape[0] < 2:
        raise InputError("linear CKA needs at least 2 items")
    n, p, q = a.shape[0], a.shape[1], b.shape[1]
    if n < max(p, q):  # ⟨K, L⟩_F with K = X̃X̃ᵀ, L = ỸỸᵀ: the same value, from smaller matrices
        k, l_ = a @ a.T, b @ b.T
        cross, norm_x, norm_y = (k * l_).sum(), torch.linalg.norm(k), torch.linalg.norm(l_)
    else:
        cross = torch.linalg.norm(b.T @ a) ** 2
        norm_x, norm_y = torch.linalg.norm(a.T @ a), torch.linalg.norm(b.T @ b)
    if float(norm_x) == 0.0 or float(norm_y) == 0.0:
        raise InputError(f"{'x' if float(norm_x) == 0.0 else 'y'} does not vary across the items, so CKA is undefined")
    return float(cross / (norm_x * norm_y))


__all__ = ["linear_cka"]
