"""A folder of the user's own images as a training set for the autoencoder.

PNG and JPEG files are found recursively (sorted, so the order is reproducible),
centre-cropped to a square, resized and converted to the requested channel count.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from n2n_hub.kit import InputError

EXTENSIONS = (".png", ".jpg", ".jpeg")


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """All PNG/JPEG files under ``folder`` (recursively), sorted by path."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"image folder {root} does not exist or is not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
    if not files:
        raise InputError(f"no images in {root}: put .png, .jpg or .jpeg files in it (subfolders are searched too)")
    return files


def load_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image as ``(channels, size, size)`` float32 in [-1, 1]."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError(f"cannot read image {path}: {e}; remove or replace the file") from e
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.float32).reshape(size, size, channels)
    return torch.from_numpy(arr).permute(2, 0, 1).div(127.5).sub(1.0).clamp(-1.0, 1.0)


def load_image_folder(folder: str | os.PathLike[str], size: int = 32, channels: int = 1) -> torch.Tensor:
    """Every image under ``folder`` as ``(N, channels, size, size)`` float32 in [-1, 1]."""
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if size < 1:
        raise InputError(f"size must be positive, got {size}")
    return torch.stack([load_image(p, size, channels) for p in image_files(folder)])
