"""The deformation d of Sec. C: random horizontal flip, thin-plate-spline warp and crop.

The TPS warp is kornia's (``get_tps_transform`` / ``warp_image_tps``). Images are warped
as offsets from their border value, so what the warp pulls in from outside is
background rather than zero.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.transform import get_tps_transform, warp_image_tps


@dataclass(frozen=True)
class Deformation:
    """How strong d is. ``strength`` scales the TPS displacement and the crop; 0 only flips.

    ``tps_sigma``: std of the control points' displacement in [-1, 1] coordinates at strength 1;
    ``min_crop``: the smallest crop side (fraction of the image) at strength 1;
    ``flip``: probability of a horizontal flip.
    """

    strength: float = 1.0
    tps_sigma: float = 0.12
    min_crop: float = 0.8
    flip: float = 0.5
    grid: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.strength <= 2:
            raise ValueError(f"deformation strength must lie in [0, 2], got {self.strength}")


def control_grid(n: int, batch: int) -> torch.Tensor:
    """``n``×``n`` control points spread over [-0.8, 0.8]², as ``(batch, n·n, 2)`` (x, y)."""
    t = torch.linspace(-0.8, 0.8, n)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=-1).expand(batch, -1, -1).contiguous()


def tps_warp(images: torch.Tensor, points_src: torch.Tensor, points_dst: torch.Tensor,
             background: float = -1.0) -> torch.Tensor:
    """Warp ``images`` so that content at ``points_src`` moves to ``points_dst`` (coordinates in [-1, 1]).

    With kornia's conventions (0.9.2 and later) this is the spline fitted from ``points_dst``
    to ``points_src``, evaluated with its kernels centred on ``points_dst``, the first argument
    of the fit (checked in the tests: a bump placed at a source point lands on its destination).
    Kornia 0.9.0 centred them on the second argument, which is why the dependency starts at 0.9.2.
    """
    with warnings.catch_warnings():  # kornia's notice of that change, on every fit; the call below follows it
        warnings.filterwarnings("ignore", message=".*centres its kernels on its first argument", category=FutureWarning)
        kernel, affine = get_tps_transform(points_dst, points_src)
    warped = warp_image_tps(images - background, points_dst, kernel, affine, align_corners=False)
    return warped + background


def deform(images: torch.Tensor, d: Deformation, generator: torch.Generator, background: float = -1.0) -> torch.Tensor:
    """Apply one random d per image: ``(B, C, H, W)`` → same shape."""
    b, _, h, w = images.shape
    x = images.float()
    flip = torch.rand(b, generator=generator) < d.flip
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if d.strength > 0:
        src = control_grid(d.grid, b)
        dst = src + torch.randn(src.shape, generator=generator) * d.tps_sigma * d.strength
        x = tps_warp(x, src, dst, background)
        side = 1 - (1 - d.min_crop) * d.strength * torch.rand(b, generator=generator)
        cx = (torch.rand(b, generator=generator) * 2 - 1) * (1 - side)
        cy = (torch.rand(b, generator=generator) * 2 - 1) * (1 - side)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = side, side, cx, cy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + background
    return x.clamp(-1, 1)
