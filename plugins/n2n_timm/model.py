"""A timm model as an expert sees it: built from its config, read out at its taps, fed hub images.

Taps, in the order the input flows through them:

- one per entry of the model's ``feature_info`` (its stages), named by timm's module name
  (``act1``, ``layer1`` … for a ResNet, ``blocks.0`` … for a ViT, ``stages.0`` … for a
  ConvNeXt), read with timm's ``forward_intermediates`` as ``(C, H, W)`` maps;
- ``pooled``: the features the classifier reads (``forward_head(..., pre_logits=True)``);
- ``logits``: the classifier's output (absent for models built without one).

Shapes come from a forward pass on torch's ``meta`` device: no weights, no compute.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from n2n_hub import Representation
from n2n_hub.kit import InputError, ShapeError, UnknownExpertError

from .source import ModelSource

POOLED, LOGITS = "pooled", "logits"
IMAGE_RANGE_TOLERANCE = 0.05


def build(source: ModelSource, device: str | torch.device = "cpu") -> nn.Module:
    """The architecture with its config (input size, classes, model_args), randomly initialised, in eval mode."""
    import timm
    from timm.models import PretrainedCfg

    known = {f.name for f in fields(PretrainedCfg)}
    cfg = {k: v for k, v in source.pretrained_cfg.items() if k in known}
    cfg["architecture"] = source.architecture
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = timm.create_model(source.architecture, pretrained=False, pretrained_cfg=cfg, device=device,
                                      **source.model_args)
    except (TypeError, ValueError, AssertionError, RuntimeError) as e:
        raise InputError(f"timm cannot build {source.architecture} with model_args {source.model_args} for "
                         f"{source.label}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return model.eval()


def stage_names(model: nn.Module) -> list[str]:
    """The model's stages (timm's feature_info module names), if it can return intermediate features."""
    info = getattr(model, "feature_info", None)
    if not info or not callable(getattr(model, "forward_intermediates", None)):
        return []
    names = [str(d.get("module", "")) or f"stage{i}" for i, d in enumerate(info)]
    return names if len(set(names)) == len(names) else [f"stage{i}" for i in range(len(names))]


def tap_names(model: nn.Module) -> list[str]:
    return [*stage_names(model), POOLED, *([LOGITS] if int(getattr(model, "num_classes", 0) or 0) > 0 else [])]


def _stage_features(model: nn.Module, x: torch.Tensor, index: int) -> torch.Tensor:
    kwargs: dict[str, Any] = {"indices": [index], "intermediates_only": True}
    try:
        outs = model.forward_intermediates(x, stop_early=True, **kwargs)  # type: ignore[operator]
    except TypeError:  # a model whose forward_intermediates has no stop_early
        outs = model.forward_intermediates(x, **kwargs)  # type: ignore[operator]
    return outs[0]


def run_tap(model: nn.Module, x: torch.Tensor, tap: str) -> torch.Tensor:
    """One tap's output for a batch of prepared model inputs."""
    stages = stage_names(model)
    if tap in stages:
        return _stage_features(model, x, stages.index(tap))
    features = model.forward_features(x)  # type: ignore[operator]
    if tap == POOLED:
        return model.forward_head(features, pre_logits=True)  # type: ignore[operator]
    if tap == LOGITS:
        return model.forward_head(features)  # type: ignore[operator]
    raise UnknownExpertError(f"no tap {tap!r}")


def _key(source: ModelSource) -> str:
    cfg = {k: source.pretrained_cfg.get(k) for k in ("input_size", "num_classes", "fixed_input_size")}
    return json.dumps([source.architecture, source.model_args, cfg], sort_keys=True, default=str)


@dataclass(frozen=True)
class Layout:
    """What a model's taps are and their per-sample shapes, for one config."""

    taps: dict[str, Representation]
    stages: tuple[str, ...]


_LAYOUTS: dict[str, Layout] = {}


def layout(source: ModelSource) -> Layout:
    """The model's taps and shapes from a forward pass on the meta device (cached per config)."""
    key = _key(source)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = _layout(source)
    return _LAYOUTS[key]


def _layout(source: ModelSource) -> Layout:
    model = build(source, device="meta")
    x = torch.zeros(1, *source.input_size, device="meta")
    taps: dict[str, Representation] = {}
    stages = stage_names(model)
    with torch.no_grad():
        for name in tap_names(model):
            try:
                out = run_tap(model, x, name)
            except Exception:  # noqa: BLE001 - an op without a meta kernel: fall back to timm's feature_info
                out = None
            if out is not None:
                taps[name] = Representation(tuple(out.shape[1:]))
            else:
                taps[name] = _from_feature_info(model, source, name, stages)
    return Layout(taps, tuple(stages))


def _from_feature_info(model: nn.Module, source: ModelSource, name: str, stages: list[str]) -> Representation:
    if name == POOLED:
        return Representation((int(getattr(model, "head_hidden_size", None) or model.num_features),))
    if name == LOGITS:
        return Representation((int(model.num_classes),))
    d = model.feature_info[stages.index(name)]  # type: ignore[index]
    _, h, w = source.input_size
    r = int(d["reduction"])
    return Representation((int(d["num_chs"]), -(-h // r), -(-w // r)))


def tap_problem(source: ModelSource, lay: Layout, tap: str) -> str:
    """Why ``tap`` is not one of the model's taps, in one line."""
    taps = ", ".join(lay.taps)
    if not lay.stages and tap not in (POOLED, LOGITS):
        return (f"timm model {source.label} ({source.architecture}) cannot give intermediate features: timm has "
                f"no forward_intermediates / feature_info for it; its taps: {taps}")
    return f"timm model {source.label} has no tap {tap!r}; its taps: {taps}"


# -- inputs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocess:
    """How hub images ((B, C, H, W) in [-1, 1]) become what the model was trained on.

    Values go to [0, 1]; a grey image is repeated into three channels for an RGB model (an
    RGB image is turned grey by luminance for a grey one); the image is resized to the
    model's input size (antialiased, with the interpolation its config names) and then
    normalised with its mean and std.
    """

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    @classmethod
    def of(cls, source: ModelSource) -> "Preprocess":
        cfg = source.pretrained_cfg
        c = source.input_size[0]
        mean = tuple(float(v) for v in (cfg.get("mean") or (0.485, 0.456, 0.406)))
        std = tuple(float(v) for v in (cfg.get("std") or (0.229, 0.224, 0.225)))
        if len(mean) != c:  # a config written for another channel count: average it
            mean, std = (sum(mean) / len(mean),) * c, (sum(std) / len(std),) * c
        mode = str(cfg.get("interpolation") or "bilinear")
        return cls(source.input_size, mean, std, mode if mode in ("bilinear", "bicubic") else "bilinear")

    def describe(self) -> str:
        return (f"{'×'.join(map(str, self.input_size))}, mean {list(self.mean)}, std {list(self.std)}, "
                f"{self.interpolation}")

    def __call__(self, images: Any, who: str, device: torch.device) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ShapeError(f"{who} reads images (B, 1 or 3, H, W) in [-1, 1], got {got}")
        x = images.to(device, torch.float32)
        if x.numel() and (x.min() < -1 - IMAGE_RANGE_TOLERANCE or x.max() > 1 + IMAGE_RANGE_TOLERANCE):
            raise ShapeError(f"images must have values in [-1, 1], got [{x.min().item():.3g}, {x.max().item():.3g}]; "
                             "scale 8-bit images with x / 127.5 - 1")
        x = ((x + 1) / 2).clamp(0, 1)
        c, h, w = self.input_size
        if c not in (1, 3):
            raise ShapeError(f"{who} is a model of {c}-channel inputs; hub images have 1 (grey) or 3 (RGB)")
        if x.shape[1] != c:
            x = x.expand(-1, 3, -1, -1) if c == 3 else (
                x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if tuple(x.shape[-2:]) != (h, w):
            x = F.interpolate(x, size=(h, w), mode=self.interpolation, align_corners=False, antialias=True).clamp(0, 1)
        mean = x.new_tensor(self.mean).view(1, -1, 1, 1)
        std = x.new_tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std
