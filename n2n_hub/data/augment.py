"""Training-data augmentation shared by the recipes (the ``augment`` option).

An augmentation adds a transformed copy of every item: image domains are transformed,
every other domain of the item (its label, its caption) is repeated unchanged, so both
experts see the same new item. Only training splits are augmented.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

AUGMENTATIONS = ("hflip",)


def _hflip(images: torch.Tensor) -> torch.Tensor:
    """Mirror left-right: an animal facing the other way is still the same animal."""
    return images.flip(-1)


_IMAGE_TRANSFORMS = {"hflip": _hflip}


def augmented(data: dict[str, Any], augment: Sequence[str]) -> dict[str, Any]:
    """``data`` followed by one transformed copy per name in ``augment`` (items stay aligned across domains)."""
    unknown = [a for a in augment if a not in _IMAGE_TRANSFORMS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; known: {list(AUGMENTATIONS)}")
    if not augment:
        return data
    out: dict[str, Any] = {}
    for domain, items in data.items():
        copies = [items]
        for name in augment:
            copies.append(_IMAGE_TRANSFORMS[name](items) if domain == "image" else items)
        if isinstance(items, torch.Tensor):
            out[domain] = torch.cat([torch.as_tensor(c) for c in copies])
        else:
            out[domain] = [x for c in copies for x in c]
    return out
