"""Caption templates for turning class labels into text a sentence encoder can read.

The templates are split: ``train`` ones make training pairs, ``eval`` ones are never
seen in training, so evaluation measures generalisation to new phrasings.
"""

from __future__ import annotations

import re

import torch

from n2n_hub import BridgeContext
from n2n_hub.kit import InputError

TRAIN_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}",
    "a picture of a {}",
    "an image of a {}",
    "a {}",
    "a drawing of a {}",
    "a silhouette of a {}",
    "this is a {}",
    "a small {}",
    "a large {}",
    "a photo of the {}",
    "a close-up photo of a {}",
    "a cropped photo of a {}",
    "a black and white photo of a {}",
    "a sketch of a {}",
    "there is a {} in the picture",
    "a good photo of a {}",
    "a rendering of a {}",
    "the shape of a {}",
)

EVAL_TEMPLATES: tuple[str, ...] = (
    "a snapshot of a {}",
    "an illustration of a {}",
    "a blurry photo of a {}",
    "one {}",
    "a depiction of a {}",
)


def templates_for(split: str) -> tuple[str, ...]:
    if split == "train":
        return TRAIN_TEMPLATES
    if split in ("eval", "test"):
        return EVAL_TEMPLATES
    raise InputError(f"unknown template split {split!r}; use 'train' or 'eval'")


_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")


def fill(template: str, name: str) -> str:
    """Fill a template, turning 'a' into 'an' before a vowel."""
    return _A_BEFORE_VOWEL.sub(r"\1n ", template.format(name))


def captions_from_labels(labels: torch.Tensor, *, context: BridgeContext) -> list[str]:
    """One caption per label: a random template of the context's split, filled with the class name."""
    if context.class_names is None:
        raise InputError("the label-caption bridge needs class names for the labels")
    names = context.class_names
    templates = templates_for(context.split)
    labels = torch.as_tensor(labels).long().view(-1)
    picks = torch.randint(len(templates), (labels.numel(),), generator=context.generator)
    return [fill(templates[int(t)], names[int(c)].lower()) for c, t in zip(labels, picks)]
