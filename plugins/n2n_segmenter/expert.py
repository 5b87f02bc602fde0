"""The ``segmenter`` expert: images → one of its layers (a tap), for translation and model diagnosis."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from n2n_hub import Expert, ExpertSpec, Representation
from n2n_hub.kit import UnknownExpertError, check_images, sha256_file

from . import DEFAULT_TAP
from .checkpoint import WEIGHTS, load_model
from .model import TAP_NAMES

WEIGHTS_DIR = Path(__file__).parent / "weights"
NAMED = {"animals": WEIGHTS_DIR / "animals.safetensors"}
BATCH = 512


def weights_file_for(variant: str) -> Path:
    """A named variant's shipped file, or the file behind a user path (``segmenter@/path``)."""
    return WEIGHTS.for_variant(variant, NAMED)


class SegmenterExpert(Expert):
    """f of the model diagnosis: ``encode(images, tap)`` returns that layer's output per image.

    Tap shapes follow the loaded weights (image size, classes), measured once with a dry run.
    """

    def __init__(self, spec: ExpertSpec, variant: str | None, device: str | torch.device = "cpu") -> None:
        variant = variant or spec.default_variant or "animals"
        super().__init__(spec, variant, device)
        self.weights_file = weights_file_for(variant)
        self.model, self.info = load_model(self.weights_file, self.device)
        self.config = self.model.config
        self._fingerprint = sha256_file(self.weights_file)
        with torch.no_grad():
            probe = self.model.taps(torch.zeros(1, *self.config.image_shape, device=self.device))
        self._taps = {k: Representation(tuple(v.shape[1:])) for k, v in probe.items()}
        shape = self.config.image_shape
        if (spec.taps, spec.input_shape, spec.class_names) != (self._taps, shape, self.config.class_names):
            self.spec = dataclasses.replace(spec, taps=dict(self._taps), representation=self._taps[DEFAULT_TAP],
                                            input_shape=shape, class_names=self.config.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.config.image_shape

    def representation_for(self, tap: str | None = None) -> Representation:
        name = self._tap(tap)
        return self._taps[name]

    def _tap(self, tap: str | None) -> str:
        name = DEFAULT_TAP if tap is None else tap
        if name not in TAP_NAMES:
            raise UnknownExpertError(f"segmenter has no tap {name!r}; taps: {', '.join(TAP_NAMES)}")
        return name

    def _check_images(self, images: Any) -> torch.Tensor:
        return check_images(images, self.image_shape, f"segmenter@{self.variant}", self.device)

    @torch.no_grad()
    def encode(self, inputs: Any, tap: str | None = None) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] → the tap's output ``(B, *shape)`` (default: the logits)."""
        name = self._tap(tap)
        x = self._check_images(inputs)
        outs = [self.model.taps(x[i:i + BATCH], (name,))[name] for i in range(0, x.shape[0], BATCH)]
        return torch.cat(outs) if outs else x.new_zeros(0, *self._taps[name].shape)

    @torch.no_grad()
    def segment(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted class ids ``(B, H, W)`` (0 = background)."""
        x = self._check_images(images)
        outs = [self.model(x[i:i + BATCH]).argmax(dim=1) for i in range(0, x.shape[0], BATCH)]
        return torch.cat(outs) if outs else torch.zeros(0, *self.image_shape[1:], dtype=torch.long)

    def fingerprint(self) -> str:
        """sha256 of the weights file."""
        return self._fingerprint
