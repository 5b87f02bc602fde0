"""Writing image outputs: a PNG grid, one row per input, one column per sample."""

from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_path
from ..errors import InputError


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images → uint8 in [0, 255]."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


MAX_COLUMNS = 32  # wider rows wrap: a grid stays something a viewer can open


def with_input_column(inputs: torch.Tensor, outputs: torch.Tensor, n: int) -> torch.Tensor:
    """Each input image before its ``n`` outputs, brought to the outputs' size and channels for display."""
    b = inputs.shape[0]
    c, h, w = outputs.shape[1:]
    shown = inputs.detach().float().cpu()
    if shown.shape[1] != c:
        shown = shown.mean(dim=1, keepdim=True).expand(-1, c, -1, -1) if c in (1, 3) else shown[:, :c]
    if tuple(shown.shape[2:]) != (h, w):
        shown = torch.nn.functional.interpolate(shown, size=(h, w), mode="bilinear", align_corners=False)
    rows = outputs.detach().float().cpu().reshape(b, n, c, h, w)
    return torch.cat([shown[:, None], rows], dim=1).reshape(b * (n + 1), c, h, w)


def grid_shape(n: int, ncol: int, tile: int, pad: int = 2) -> tuple[int, int, int]:
    """``(rows, columns, rows per group)`` of a grid of ``n`` images in groups of ``ncol``."""
    cols = min(ncol, MAX_COLUMNS)
    per_group = -(-ncol // cols)
    return -(-n // ncol) * per_group, cols, per_group


def save_grid(images: torch.Tensor, path: str | Path, ncol: int, min_tile: int = 64, pad: int = 2) -> Path:
    """Save ``(N, C, H, W)`` images in [-1, 1] as a PNG grid, one group of ``ncol`` images per row.

    A group wider than :data:`MAX_COLUMNS` wraps onto several rows. Small tiles are
    enlarged (nearest neighbour) to at least ``min_tile`` pixels so a 32×32 sample is
    visible, unless that would make the image larger than PIL opens by default; a grid
    too large even unscaled is refused.
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
    limit = Image.MAX_IMAGE_PIXELS or float("inf")
    nrow, cols, per_group = grid_shape(n, ncol, max(h, w), pad)

    def pixels(s: int) -> int:
        return (nrow * (h * s + pad) + pad) * (cols * (w * s + pad) + pad)

    scale = max(1, -(-min_tile // max(h, w)))
    while scale > 1 and pixels(scale) > limit:
        scale -= 1
    if pixels(scale) > limit:
        raise InputError(f"a grid of {n} images of {h}x{w} would have {pixels(scale)} pixels, more than image "
                         f"viewers open ({int(limit)}); ask for fewer inputs or samples, or write the latents "
                         "with -o FILE.safetensors")
    th, tw = h * scale, w * scale
    canvas = torch.full((c, nrow * (th + pad) + pad, cols * (tw + pad) + pad), 255, dtype=torch.uint8)
    for start in range(0, n, 256):  # convert and enlarge a few tiles at a time: memory stays flat
        imgs = to_uint8(images[start:start + 256])
        if scale > 1:
            imgs = imgs.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)
        for k, tile in enumerate(imgs):
            group, j = divmod(start + k, ncol)
            r, col = group * per_group + j // cols, j % cols
            y, x = pad + r * (th + pad), pad + col * (tw + pad)
            canvas[:, y:y + th, x:x + tw] = tile
    arr = canvas.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
