"""Reading user inputs (image files, folders, text files) into domain data."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


class TooManyPixels(InputError):
    """An image with more pixels than the reader was told to accept."""


def read_image(source: Path | bytes, shape: Sequence[int], name: str | None = None,
               max_pixels: int | None = None) -> torch.Tensor:
    """One image file (a path, or its bytes as uploaded) as a float ``(C, H, W)`` tensor in [-1, 1],
    resized to ``shape``; ``max_pixels`` refuses larger images before their pixels are decoded."""
    import io

    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    mode = {1: "L", 3: "RGB"}.get(c)
    if mode is None:
        raise InputError(f"cannot read images with {c} channels; expected 1 or 3")
    name = name or str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise TooManyPixels(f"{name} has {im.width}x{im.height} pixels; the limit is {max_pixels} pixels")
            im = im.convert(mode).resize((w, h), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32)
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise TooManyPixels(f"image {name} has more pixels than n2n-hub reads ({Image.MAX_IMAGE_PIXELS}); "
                            "shrink it first") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise InputError(f"cannot read image {name}: {e}") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy()) / 127.5 - 1.0


def read_images(paths: Sequence[Path], shape: Sequence[int]) -> torch.Tensor:
    """Images resized to ``shape`` = (C, H, W), as a float tensor in [-1, 1]."""
    return torch.stack([read_image(Path(p), shape) for p in paths])


def read_exact_images(paths: Sequence[str | Path], shape: Sequence[int], who: str) -> torch.Tensor:
    """Image files as ``(B, C, H, W)`` in [-1, 1], refusing any whose size or channels differ from ``shape``.

    Transfer keeps the exemplar's pose and outline, so images are not silently resized.
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    out = []
    for p in map(Path, paths):
        if not p.is_file():
            raise InputError(f"image {p} does not exist")
        try:
            with Image.open(p) as im:
                mode, size = im.mode, im.size
                channels = {"L": 1, "1": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "RGB": 3, "RGBA": 4}.get(mode, len(im.getbands()))
                if size != (w, h) or channels != c:
                    raise InputError(f"{p} is {size[0]}×{size[1]} with {channels} channel(s); {who} reads "
                                     f"{w}×{h} images with {c} channel(s): convert it first "
                                     f"(e.g. PIL: im.convert({'L' if c == 1 else 'RGB'!r}).resize(({w}, {h})))")
                arr = np.asarray(im.convert("L" if c == 1 else "RGB"), dtype=np.float32)
        except (OSError, UnidentifiedImageError) as e:
            raise InputError(f"cannot read image {p}: {e}") from None
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        out.append(torch.from_numpy(arr.copy()) / 127.5 - 1.0)
    return torch.stack(out)


def read_text_lines(path: Path) -> list[str]:
    try:
        lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read text file {path}: {e}") from None
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InputError(f"{path} has no non-empty lines")
    return lines


def fingerprint_paths(paths: Sequence[Path]) -> str:
    """Content hash of files (names relative to their common folder, and bytes)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()
