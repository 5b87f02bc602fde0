"""Writing image outputs: a PNG grid, one row per input, one column per sample."""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from .errors import InputError


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images → uint8 in [0, 255]."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def save_grid(images: torch.Tensor, path: str | Path, ncol: int, min_tile: int = 64, pad: int = 2) -> Path:
    """Save ``(N, C, H, W)`` images in [-1, 1] as a PNG grid with ``ncol`` columns.

    Small tiles are enlarged (nearest neighbour) to at least ``min_tile`` pixels so a
    32×32 sample is visible.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"image outputs are written as PNG; name the file '*.png' (got {path.name})")
    im = grid_image(images, ncol, min_tile=min_tile, pad=pad)
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path


def grid_image(images: torch.Tensor, ncol: int, min_tile: int = 64, pad: int = 2):  # -> PIL.Image.Image
    """``(N, C, H, W)`` images in [-1, 1] laid out as a PIL image with ``ncol`` columns (see :func:`save_grid`)."""
    from PIL import Image

    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise InputError(f"cannot save images of shape {tuple(images.shape)} as PNG: expected (N, 1|3, H, W)")
    n, c, h, w = images.shape
    scale = max(1, -(-min_tile // max(h, w)))
    imgs = to_uint8(images)
    if scale > 1:
        imgs = imgs.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
    th, tw = h * scale, w * scale
    nrow = -(-n // ncol)
    canvas = torch.full((c, nrow * (th + pad) + pad, ncol * (tw + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = pad + r * (th + pad), pad + col * (tw + pad)
        canvas[:, y:y + th, x:x + tw] = imgs[i]
    arr = canvas.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
