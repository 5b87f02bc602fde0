"""Training a timm model as a classifier on a hub dataset, and saving it in timm's Hugging Face layout.

The saved folder (``config.json`` + ``model.safetensors``) is what timm itself writes with
``save_for_hf`` and reads as ``local-dir:FOLDER``; the expert loads it through the same
path as a download. The model reads the dataset's images as they are: its input size is
theirs and its mean and std are 0.5, which maps the hub's [-1, 1] onto itself.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from n2n_hub.kit import InputError

from .model import Preprocess
from .names import CONFIG
from .source import ModelSource


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    seed: int = 0
    flip: bool = True
    device: str = "cpu"


def new_model(model_name: str, image_shape: tuple[int, int, int], num_classes: int,
              model_args: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """A fresh timm model for these images and classes; returns it and the arguments it was built with.

    Models with a fixed input size (vision transformers) are built for the images' size
    unless ``model_args`` says otherwise.
    """
    import timm
    from timm.models import get_pretrained_cfg

    c, h, w = image_shape
    args = {"in_chans": c, **model_args}
    cfg = get_pretrained_cfg(model_name)
    if cfg is not None and cfg.fixed_input_size and "img_size" not in args:
        args["img_size"] = h if h == w else [h, w]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = timm.create_model(model_name, pretrained=False, num_classes=num_classes, **args)
    except (TypeError, ValueError, AssertionError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise InputError(f"timm cannot build {model_name} with {args} for {h}×{w} images: {type(e).__name__}: "
                         f"{first}; adjust --model-arg (e.g. img_size, patch_size)") from None
    return model, args


def source_of(model: nn.Module, image_shape: tuple[int, int, int], label_names: tuple[str, ...],
              args: dict[str, Any], license: str, tag: str) -> ModelSource:
    """The config the saved model will carry: the images' size, mean/std 0.5, its classes."""
    c = image_shape[0]
    cfg = {k: v for k, v in dict(model.pretrained_cfg).items() if v is not None}
    for k in ("url", "hf_hub_id", "hf_hub_filename", "file", "source", "state_dict", "paper_ids", "paper_name",
              "origin_url", "notes", "description", "test_input_size", "test_crop_pct", "test_pool_size", "pool_size",
              "min_input_size"):
        cfg.pop(k, None)
    cfg.update(tag=tag, input_size=tuple(image_shape), mean=(0.5,) * c, std=(0.5,) * c, interpolation="bilinear",
               crop_pct=1.0, num_classes=len(label_names), label_names=list(label_names), license=license)
    return ModelSource(tag, tag, "experts dir", model.pretrained_cfg.get("architecture") or type(model).__name__,
                       cfg, dict(args))


@torch.no_grad()
def accuracy(model: nn.Module, prep: Preprocess, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 500) -> float:
    model.eval()
    device = next(model.parameters()).device
    right = 0
    for i in range(0, images.shape[0], batch_size):
        x = prep(images[i:i + batch_size], "the model", device)
        right += int((model(x).argmax(1).cpu() == labels[i:i + batch_size]).sum())
    return right / max(1, images.shape[0])


def train_classifier(model: nn.Module, prep: Preprocess, images: torch.Tensor, labels: torch.Tensor,
                     settings: TrainSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit ``model`` to the labels with AdamW, warmup and cosine decay; returns what to record."""
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    device = torch.device(settings.device)
    model.to(device).train()
    n = images.shape[0]
    per_epoch = max(1, n // settings.batch_size)
    total = settings.epochs * per_epoch
    warmup = max(1, int(settings.warmup_epochs * per_epoch))
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))
    start = time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        loss_sum, right = 0.0, 0
        for i in range(per_epoch):
            idx = perm[i * settings.batch_size:(i + 1) * settings.batch_size]
            x, y = images[idx], labels[idx]
            if settings.flip:
                flip = torch.rand(x.shape[0], generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            logits = model(prep(x, "the model", device))
            loss = F.cross_entropy(logits, y.to(device), label_smoothing=settings.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item()
            right += int((logits.argmax(1).cpu() == y).sum())
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {loss_sum / per_epoch:.4f}, train accuracy "
            f"{right / (per_epoch * settings.batch_size):.3f} ({time.perf_counter() - start:.0f} s)")
    model.eval().requires_grad_(False)
    return {**{k: v for k, v in asdict(settings).items() if k != "device"}, "images": int(n),
            "parameters": sum(p.numel() for p in model.parameters()), "seconds": round(time.perf_counter() - start, 1)}


def save_folder(model: nn.Module, source: ModelSource, folder: Path, info: dict[str, Any]) -> None:
    """Write ``config.json`` (timm's layout, plus what we recorded under ``n2n_hub``) and ``model.safetensors``.

    Written into a temporary folder beside ``folder`` that then takes its place, so a
    reader never sees a config without its weights.
    """
    from timm.models import save_for_hf

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.pretrained_cfg = dict(source.pretrained_cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_for_hf(model, str(tmp), model_args=dict(source.model_args), safe_serialization=True,
                        data_config={"input_size": source.input_size, "mean": source.pretrained_cfg["mean"],
                                     "std": source.pretrained_cfg["std"], "interpolation": "bilinear",
                                     "crop_pct": 1.0})
        config = json.loads((tmp / CONFIG).read_text(encoding="utf-8"))
        config["label_names"] = list(source.pretrained_cfg.get("label_names") or [])
        config["n2n_hub"] = info
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            folder.rename(old)
        tmp.rename(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def record(folder: Path, **facts: Any) -> None:
    """Add facts (e.g. the test accuracy) to the ``n2n_hub`` block of a saved folder's config.json."""
    from n2n_hub.kit import atomic_write_bytes

    path = Path(folder) / CONFIG
    config = json.loads(path.read_text(encoding="utf-8"))
    config.setdefault("n2n_hub", {}).update(facts)
    atomic_write_bytes(path, json.dumps(config, indent=2, default=str).encode())
