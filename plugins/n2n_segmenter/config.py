"""The segmenter's configuration: one dataclass, stored as JSON inside each weights file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from n2n_hub.kit import InputError

from . import CLASS_NAMES

ENCODERS = ("resnet18", "resnet34")


@dataclass(frozen=True)
class SegmenterConfig:
    """Architecture of the DeepLabV3 segmenter and how its training labels are made.

    DeepLab predicts logits at 1/``output_stride`` of the input resolution and upsamples them
    bilinearly (no parameters), as the segmentation networks of the paper's model diagnosis
    do; ``labels`` is the argmax of the upsampled logits. A pixel's target class is
    background where the image is darker than ``foreground_threshold``, else the image's
    class (1 + the dataset's label id).
    """

    encoder: str = "resnet18"
    encoder_depth: int = 3
    image_size: int = 32
    channels: int = 1
    class_names: tuple[str, ...] = CLASS_NAMES
    decoder_channels: int = 64
    atrous_rates: tuple[int, ...] = (1, 2, 3)
    foreground_threshold: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        object.__setattr__(self, "atrous_rates", tuple(int(r) for r in self.atrous_rates))
        self.validate()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def output_stride(self) -> int:
        """Resolution ratio of input and logits (deeper encoders are dilated to keep 8)."""
        return min(2 ** self.encoder_depth, 8)

    def validate(self) -> None:
        """Raise :class:`InputError` naming the first inconsistent setting."""
        if self.encoder not in ENCODERS:
            raise InputError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        if self.encoder_depth not in (3, 4, 5):
            raise InputError(f"encoder_depth must be 3, 4 or 5, got {self.encoder_depth}")
        if self.image_size < self.output_stride or self.image_size % self.output_stride:
            raise InputError(f"image_size must be a multiple of the output stride {self.output_stride}, "
                             f"got {self.image_size}")
        if self.channels not in (1, 3):
            raise InputError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        if self.num_classes < 2:
            raise InputError("a segmenter needs at least two classes (background and one more)")
        if self.decoder_channels < 1 or len(self.atrous_rates) != 3 or min(self.atrous_rates) < 1:
            raise InputError("decoder_channels must be positive and atrous_rates three positive integers")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SegmenterConfig":
        raw: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InputError(f"unknown segmenter config key(s) {unknown}; this file needs a newer n2n-segmenter")
        return cls(**raw)
