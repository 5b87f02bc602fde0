"""The ``animals`` dataset: ``load(split) -> {"image": (N,1,32,32) in [-1,1], "label": (N,)}``.

Silhouettes are white on black in the source; we keep that (background = -1, animal
= +1) and zero-pad 28→32 with background so the shape sits in the centre. The split is
stratified and fixed: 100 test images per class, the other 900 per class for training.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from n2n_hub.kit import InputError

from . import CLASS_NAMES
from .source import read_raw

SPLITS = ("train", "test")
TEST_PER_CLASS = 100
SPLIT_SEED = 20200528  # the Net2Net arXiv date; any fixed value keeps the split stable
PAD = 2


def to_images(raw: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` → float32 ``(N, 1, 32, 32)`` in [-1, 1], background -1."""
    x = torch.from_numpy(np.ascontiguousarray(raw)).float().div_(127.5).sub_(1.0)
    x = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD), value=-1.0)
    return x.unsqueeze(1).contiguous()


@functools.lru_cache(maxsize=1)
def split_indices() -> dict[str, np.ndarray]:
    """Sorted indices of each split: a seeded permutation per class, first 100 go to test."""
    _, labels = read_raw()
    rng = np.random.default_rng(SPLIT_SEED)
    test: list[np.ndarray] = []
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[:TEST_PER_CLASS])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.shape[0]), test_idx)
    return {"train": train_idx, "test": test_idx}


@functools.lru_cache(maxsize=2)
def _load_cached(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_raw()
    idx = split_indices()[split]
    return to_images(images[idx]), torch.from_numpy(labels[idx].copy())


def load(split: str = "train") -> dict[str, torch.Tensor]:
    """Images ``(N, 1, 32, 32)`` float32 in [-1, 1] and labels ``(N,)`` int64 of one split.

    ``train`` has 9000 items and ``test`` 1000 (100 per class). Results are memoised; the
    returned tensors are fresh copies, so callers may modify them.
    """
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} for the animals dataset; use one of {SPLITS}")
    images, labels = _load_cached(split)
    return {"image": images.clone(), "label": labels.clone()}
