"""Reconstruction quality measures for images in [-1, 1]."""

from __future__ import annotations

import math

import torch


def silhouette_iou(x: torch.Tensor, y: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Per-image IoU of the foreground masks ``x > threshold`` and ``y > threshold`` (1 when both are empty)."""
    a, b = (x > threshold).flatten(1), (y > threshold).flatten(1)
    inter, union = (a & b).sum(1).float(), (a | b).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def reconstruction_metrics(x: torch.Tensor, rec: torch.Tensor) -> dict[str, float]:
    """Mean squared error, PSNR (peak-to-peak range 2) and mean silhouette IoU at threshold 0."""
    mse = (x - rec).pow(2).mean().item()
    return {"mse": mse, "psnr": 10 * math.log10(4.0 / max(mse, 1e-12)),
            "iou": silhouette_iou(x, rec).mean().item()}
