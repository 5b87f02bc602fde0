"""A small CNN that names the animal in a 32×32 silhouette.

It measures whether generated images show the prompted animal (text → image
translation), so it is trained with flips and small shifts to be tolerant of where a
generator puts the shape. ``classify(images) -> logits`` is the API; the shipped weights
(``weights/classifier.safetensors``, ~0.4 MB) carry their test accuracy in the metadata.
Reproduce them with ``python -m n2n_animals.train_classifier``.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from n2n_hub.kit import CacheError, MissingWeightsError, ShapeError, atomic_path

from . import CLASS_NAMES

WEIGHTS = Path(__file__).parent / "weights" / "classifier.safetensors"
IMAGE_SIZE = 32


class AnimalClassifier(nn.Module):
    """Six 3×3 conv layers with batch norm, pooling early (cheap to train on a CPU), linear head."""

    def __init__(self, width: int = 16, num_classes: int = len(CLASS_NAMES)) -> None:
        super().__init__()

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        w = width
        self.features = nn.Sequential(
            *conv(1, w), nn.MaxPool2d(2),                                  # 16×16
            *conv(w, 2 * w), *conv(2 * w, 2 * w), nn.MaxPool2d(2),         # 8×8
            *conv(2 * w, 4 * w), *conv(4 * w, 4 * w), nn.MaxPool2d(2),     # 4×4
            *conv(4 * w, 8 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(8 * w, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def prepare(images: torch.Tensor) -> torch.Tensor:
    """Any ``(B, C, H, W)`` image batch in [-1, 1] → ``(B, 1, 32, 32)`` grayscale."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ShapeError(f"classify() takes images (B, 1 or 3, H, W) in [-1, 1], got {got}")
    x = images.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x


def save_classifier(model: AnimalClassifier, path: str | os.PathLike[str], info: dict[str, Any]) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "n2n-animals-classifier",
                                               "info": json.dumps(info, sort_keys=True)})


def read_classifier(path: str | os.PathLike[str] = WEIGHTS) -> tuple[AnimalClassifier, dict[str, Any]]:
    """Load a classifier file written by :func:`save_classifier` (eval mode)."""
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"animal classifier weights missing at {path}; "
                                  "recreate them with 'python -m n2n_animals.train_classifier'")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        info = json.loads(meta.get("info", "{}"))
        model = AnimalClassifier(width=int(info.get("width", 16)))
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CacheError(f"{path} is not a valid animal classifier file ({e}); "
                         "recreate it with 'python -m n2n_animals.train_classifier'") from e
    return model.eval().requires_grad_(False), info


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[AnimalClassifier, dict[str, Any]]:
    return read_classifier(WEIGHTS)


def load_classifier() -> AnimalClassifier:
    """The shipped classifier (loaded once per process)."""
    return _shipped()[0]


def classifier_info() -> dict[str, Any]:
    """Facts about the shipped classifier: ``test_accuracy``, seed, epochs, parameter count."""
    return dict(_shipped()[1])


def test_accuracy() -> float:
    """Accuracy of the shipped classifier on the animals test split (1000 images), as measured at training."""
    return float(_shipped()[1]["test_accuracy"])


@torch.no_grad()
def classify(images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits ``(B, 10)`` over :data:`n2n_animals.CLASS_NAMES` for images in [-1, 1]."""
    model = load_classifier()
    x = prepare(images)
    out = [model(x[i:i + batch_size].cpu()) for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, len(CLASS_NAMES))


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on a labelled image batch."""
    model.eval()
    x = prepare(images)
    pred = torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])
    return (pred == labels).float().mean().item()
