"""The loaded ``timm`` expert: images → one tap of a frozen timm model."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import torch

from n2n_hub import Expert, ExpertSpec, Representation
from n2n_hub.kit import UnknownExpertError

from . import DEFAULT_TAP, DEFAULT_VARIANT
from .model import Preprocess, build, layout, run_tap, tap_problem
from .names import CONFIG
from .source import ModelSource, read_config, resolve
from .weights import find_weights, load_into, read_state, weights_folder, weights_sha256

BATCH = 64  # images per forward pass


def load_model(source: ModelSource, home: Any = None) -> tuple[torch.nn.Module, ModelSource, Any]:
    """The model with its weights, the source as its folder's config.json describes it, and the weights file.

    Whatever the variant named, the model is built from the folder's own config.json and
    its weights are loaded strictly: the same path for downloads, folders and models trained here.
    """
    folder = weights_folder(source, home)
    arch, cfg, args, info = read_config(folder / CONFIG)
    loaded = ModelSource(source.variant, source.label, source.origin, arch, {**source.pretrained_cfg, **cfg}, args,
                         folder=folder, hf_repo=source.hf_repo, info=info or source.info)
    weights = find_weights(folder)
    assert weights is not None  # weights_folder checked
    model = build(loaded, device="cpu")
    load_into(model, read_state(weights), weights, f"{arch}{' ' + str(args) if args else ''}")
    return model.eval().requires_grad_(False), loaded, weights


class TimmExpert(Expert):
    """f of the model diagnosis for any timm model: ``encode(images, tap)`` is that layer's output.

    Images in the hub's convention are turned into the model's inputs by
    :class:`~n2n_timm.model.Preprocess` (range, channels, size, mean and std).
    """

    def __init__(self, spec: ExpertSpec, variant: str | None, device: str | torch.device = "cpu") -> None:
        super().__init__(spec, variant or spec.default_variant or DEFAULT_VARIANT, device)
        assert self.variant is not None
        self.source = resolve(self.variant, self.home)
        model, self.source, self.weights_file = load_model(self.source, self.home)
        self.model = model.to(self.device)
        self.layout = layout(self.source)
        self.preprocess = Preprocess.of(self.source)
        taps = dict(self.layout.taps)
        if (self.spec.taps, self.spec.input_shape) != (taps, self.source.input_size):  # files are read at its size
            self.spec = dataclasses.replace(self.spec, taps=taps, representation=taps[DEFAULT_TAP],
                                            input_shape=self.source.input_size, class_names=self.source.label_names)
        self._fingerprint = hashlib.sha256(
            f"{weights_sha256(self.weights_file)};{self.source.architecture};{sorted(self.source.model_args.items())};"
            f"{self.preprocess.describe()}".encode()).hexdigest()[:16]

    @property
    def taps(self) -> dict[str, Representation]:
        return dict(self.layout.taps)

    def _tap(self, tap: str | None) -> str:
        name = DEFAULT_TAP if tap is None else tap
        if name not in self.layout.taps:
            raise UnknownExpertError(tap_problem(self.source, self.layout, name))
        return name

    def representation_for(self, tap: str | None = None) -> Representation:
        return self.layout.taps[self._tap(tap)]

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self.source.label_names

    @torch.no_grad()
    def encode(self, inputs: Any, tap: str | None = None) -> torch.Tensor:
        """Images ``(B, 1 or 3, H, W)`` in [-1, 1] → the tap's output ``(B, *shape)`` (default: pooled)."""
        name = self._tap(tap)
        x = self.preprocess(inputs, f"timm@{self.variant}", self.device)
        outs = [run_tap(self.model, x[i:i + BATCH], name).float() for i in range(0, x.shape[0], BATCH)]
        return torch.cat(outs) if outs else x.new_zeros(0, *self.layout.taps[name].shape)

    @torch.no_grad()
    def predict(self, images: Any) -> torch.Tensor:
        """Predicted class ids ``(B,)`` (the argmax of the logits)."""
        return self.encode(images, tap="logits").argmax(dim=1)

    def fingerprint(self) -> str:
        """Hash of the weights file, the architecture and how inputs are prepared."""
        return f"timm-{self._fingerprint}"
