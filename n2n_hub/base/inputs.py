"""Reading user inputs (image files, folders, text files) into domain data."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


# Modes whose samples are wider than 8 bits: converting them to "L"/"RGB" clips silently.
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F", "RGBA;16B", "RGB;16B"}
_CHANNELS = {"L": 1, "1": 1, "I": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "F": 1, "LA": 2, "RGB": 3,
             "RGBA": 4, "CMYK": 4}


class TooManyPixels(InputError):
    """An image with more pixels than the reader was told to accept."""


def open_image(source: str | Path | bytes, name: str | None = None, max_pixels: int | None = None) -> Any:
    """A decoded PIL image of 8-bit samples, or one :class:`InputError` naming what is wrong with it.

    ``source`` is a path or the file's bytes (an upload). Images over ``max_pixels`` (checked
    before their pixels are decoded) or PIL's pixel limit, and 16-bit or float images (which
    8-bit conversion would clip without a word), are refused.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    name = name or (str(source) if not isinstance(source, bytes) else "the uploaded image")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise TooManyPixels(f"{name} has {im.width}x{im.height} pixels; the limit is {max_pixels} pixels")
            if im.mode in _WIDE_MODES:
                raise InputError(f"{name} has {im.mode} samples (16-bit or float); n2n-hub reads 8-bit images: "
                                 "convert it to 8 bits first, choosing how to map its range")
            im.load()
            return im.copy()
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise TooManyPixels(f"{name} has more pixels than n2n-hub reads ({Image.MAX_IMAGE_PIXELS}); "
                            "shrink it first") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise InputError(f"cannot read image {name}: {e}") from None


def channels_of(im: Any) -> int:
    return _CHANNELS.get(im.mode, len(im.getbands()))


def image_tensor(im: Any, channels: int) -> torch.Tensor:
    """An 8-bit PIL image as ``(C, H, W)`` in [-1, 1] with ``channels`` channels (1: grey, 3: RGB)."""
    mode = {1: "L", 3: "RGB"}.get(channels)
    if mode is None:
        raise InputError(f"cannot read images with {channels} channels; expected 1 or 3")
    arr = np.asarray(im.convert(mode), dtype=np.float32)
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(arr.copy()) / 127.5 - 1.0


def read_image(source: Path | bytes, shape: Sequence[int], name: str | None = None,
               max_pixels: int | None = None, notes: list[str] | None = None) -> torch.Tensor:
    """One image file (a path, or its bytes as uploaded) as a float ``(C, H, W)`` tensor in [-1, 1],
    resized to ``shape``; ``max_pixels`` refuses larger images before their pixels are decoded.
    When the image had another size or channel count, one line saying so goes to ``notes``."""
    from PIL import Image

    c, h, w = shape
    if c not in (1, 3):
        raise InputError(f"cannot read images with {c} channels; expected 1 or 3")
    im = open_image(source, name, max_pixels)
    if notes is not None and (im.size != (w, h) or channels_of(im) != c):
        notes.append(f"{name or source} is {im.size[0]}×{im.size[1]} {_colour(channels_of(im))}")
    return image_tensor(im.convert("RGB" if c == 3 else "L").resize((w, h), Image.BILINEAR), c)


def _colour(channels: int) -> str:
    return {1: "grey", 2: "grey with alpha", 3: "RGB", 4: "RGBA"}.get(channels, f"{channels}-channel")


def read_images(paths: Sequence[Path], shape: Sequence[int], notes: list[str] | None = None) -> torch.Tensor:
    """Images resized to ``shape`` = (C, H, W), as a float tensor in [-1, 1] (conversions told to ``notes``)."""
    return torch.stack([read_image(Path(p), shape, notes=notes) for p in paths])


def read_exact_images(paths: Sequence[str | Path], shape: Sequence[int], who: str) -> torch.Tensor:
    """Image files as ``(B, C, H, W)`` in [-1, 1], refusing any whose size or channels differ from ``shape``.

    Transfer keeps the exemplar's pose and outline, so images are not silently resized.
    """
    c, h, w = shape
    out = []
    for p in map(Path, paths):
        if not p.is_file():
            raise InputError(f"image {p} does not exist")
        im = open_image(p)
        channels = channels_of(im)
        if im.size != (w, h) or channels != c:
            raise InputError(f"{p} is {im.size[0]}×{im.size[1]} with {channels} channel(s); {who} reads "
                             f"{w}×{h} images with {c} channel(s): convert it first "
                             f"(e.g. PIL: im.convert({'L' if c == 1 else 'RGB'!r}).resize(({w}, {h})))")
        out.append(image_tensor(im, c))
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
