"""Training and scoring the segmenter: per-pixel cross-entropy, pixel accuracy and mean IoU."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from n2n_hub.kit import InputError

from .config import SegmenterConfig
from .model import Segmenter, label_maps


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    flip: bool = True
    device: str = "cpu"


@torch.no_grad()
def predict(model: Segmenter, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted class ids ``(N, H, W)``."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                      for i in range(0, images.shape[0], batch_size)])


def scores(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """Pixel accuracy, mean IoU over classes present in prediction or target, and per-class IoU."""
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    conf = torch.bincount(target * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    tp = conf.diag().double()
    union = conf.sum(0).double() + conf.sum(1).double() - tp
    present = union > 0
    iou = torch.where(present, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    return {"pixel_accuracy": float(tp.sum() / conf.sum()), "mean_iou": float(iou[present].mean()),
            "iou": [None if torch.isnan(v) else round(float(v), 4) for v in iou]}


def evaluate(model: Segmenter, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Scores of ``model`` on a labelled image set (targets made by :func:`label_maps`)."""
    target = label_maps(images, labels, model.config.foreground_threshold)
    return scores(predict(model, images), target, model.config.num_classes)


def train_segmenter(images: torch.Tensor, labels: torch.Tensor, config: SegmenterConfig, settings: TrainSettings,
                    init: Callable[[Segmenter], None] | None = None,
                    log: Callable[[str], None] = print) -> tuple[Segmenter, dict[str, Any]]:
    """Fit a segmenter to ``images`` whose per-image ``labels`` name the animal (class ids from 0).

    ``init`` may load pretrained encoder weights into the fresh model before training.
    """
    if images.ndim != 4 or tuple(images.shape[1:]) != config.image_shape:
        raise InputError(f"training images have shape {tuple(images.shape)}, the config needs (N, "
                         f"{', '.join(map(str, config.image_shape))})")
    if int(labels.max()) + 1 >= config.num_classes:
        raise InputError(f"labels go up to {int(labels.max())} but the config has only "
                         f"{config.num_classes - 1} non-background classes")
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    model = Segmenter(config)
    if init is not None:
        init(model)
    device = torch.device(settings.device)
    model.to(device).train()
    targets = label_maps(images, labels, config.foreground_threshold)
    n = images.shape[0]
    per_epoch = max(1, n // settings.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=settings.epochs * per_epoch)
    start = time.perf_counter()
    for epoch in range(settings.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(per_epoch):
            idx = perm[i * settings.batch_size:(i + 1) * settings.batch_size]
            x, y = images[idx], targets[idx]
            if settings.flip:
                flip = torch.rand(x.shape[0], generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                y = torch.where(flip[:, None, None], y.flip(-1), y)
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"epoch {epoch + 1}/{settings.epochs}: loss {total / per_epoch:.4f} "
            f"({time.perf_counter() - start:.0f} s)")
    model.eval().requires_grad_(False)
    info = {**{k: v for k, v in asdict(settings).items() if k != "device"},
            "images": int(n), "parameters": sum(p.numel() for p in model.parameters()),
            "seconds": round(time.perf_counter() - start, 1)}
    return model, info
