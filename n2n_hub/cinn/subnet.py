"""The fully connected subnet of Table S3a, shared by coupling layers and baselines."""

from __future__ import annotations

from torch import nn


def mlp(in_features: int, hidden: int, out_features: int, depth: int = 3, slope: float = 0.01) -> nn.Sequential:
    """``depth`` × (FC → hidden, LeakyReLU), then FC → out (Table S3a has depth 3).

    The paper also puts an LReLU after the last FC; we leave the output linear so that
    coupling scales and shifts can take either sign.
    """
    if depth < 1:
        raise ValueError(f"subnet depth must be >= 1, got {depth}")
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(slope)]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)
