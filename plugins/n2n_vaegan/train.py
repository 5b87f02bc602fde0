"""Training loop for the autoencoder: Adam on (Θ, Λ, log γ) and on D, reproducible from a seed.

A function of (images, config, settings) alone, so the CLI and the tests call it directly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from n2n_hub.kit import ShapeError, TrainingError

from .config import VAEGANConfig
from .losses import VAEGANLoss
from .model import VAEGAN

MAX_BAD_STEPS = 10


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (the defaults trained the shipped ``animals`` variant)."""

    steps: int = 12000
    batch_size: int = 32
    lr: float = 1e-3
    gamma_lr: float = 1e-2  # γ is one scalar: a larger step lets it track the reconstruction error
    seed: int = 0
    device: str = "cpu"
    flip: bool = True  # random horizontal flips (label-preserving for most image sets)
    final_lr_fraction: float = 0.1  # cosine decay to this fraction of lr


@dataclass
class TrainResult:
    """The trained autoencoder, the loss module (log γ, D) and one row of losses per step."""

    model: VAEGAN
    loss: VAEGANLoss
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def info(self) -> dict[str, Any]:
        """Facts stored in the weights file's metadata."""
        last = self.history[-1] if self.history else {}
        return {"steps": len(self.history), "seconds": round(self.seconds, 1),
                "final": {k: round(v, 5) for k, v in last.items()}}


def _batches(n: int, batch_size: int, gen: torch.Generator):
    """Endless shuffled minibatch indices (``batch_size`` ≤ ``n``), reshuffled every epoch."""
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - batch_size + 1, batch_size):  # drop the ragged last batch
            yield perm[i:i + batch_size]


def train_vaegan(images: torch.Tensor, cfg: VAEGANConfig, settings: TrainSettings = TrainSettings(),
                 progress: bool = True, on_step: Callable[[int, dict[str, float]], None] | None = None
                 ) -> TrainResult:
    """Train g = Λ∘Θ on ``images`` ``(N, C, H, W)`` in [-1, 1]; returns the model in eval mode."""
    if images.ndim != 4 or tuple(images.shape[1:]) != cfg.image_shape:
        raise ShapeError(f"training images have shape {tuple(images.shape)}, expected (N, {', '.join(map(str, cfg.image_shape))})")
    if images.shape[0] == 0:
        raise ShapeError("no training images")
    device = torch.device(settings.device)
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    model = VAEGAN(cfg).to(device).train()
    loss = VAEGANLoss(cfg).to(device).train()
    opt_g = torch.optim.Adam([{"params": list(model.parameters()), "scale": 1.0},
                              {"params": [loss.log_gamma], "scale": settings.gamma_lr / settings.lr}],
                             lr=settings.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam([{"params": list(loss.discriminator.parameters()), "scale": 1.0}],
                             lr=settings.lr, betas=(0.5, 0.9))

    def lr_at(step: int) -> float:
        t = step / max(1, settings.steps - 1)
        lo = settings.final_lr_fraction
        return settings.lr * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * t)))

    result = TrainResult(model, loss)
    bs = min(settings.batch_size, images.shape[0])
    batches = _batches(images.shape[0], bs, gen)
    bar = None
    if progress:
        from n2n_hub.kit import tqdm
        bar = tqdm(total=settings.steps, desc="vaegan", unit="step", dynamic_ncols=True)
    start, bad = time.perf_counter(), 0
    try:
        for step in range(settings.steps):
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr_at(step) * group["scale"]
            x = images[next(batches)]
            if settings.flip:
                flip = torch.rand(x.shape[0], generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            x = x.to(device)
            xrec, mu, logvar = model(x)
            parts = loss.generator_loss(x, xrec, mu, logvar, model.decoder.last_layer, step)
            if not torch.isfinite(parts.total):
                bad += 1
                if bad >= MAX_BAD_STEPS:
                    raise TrainingError(f"{bad} non-finite losses in a row at step {step}; lower --lr or check the images")
                continue
            bad = 0
            opt_g.zero_grad(set_to_none=True)
            parts.total.backward()
            opt_g.step()
            d_value = 0.0
            if loss.gan_active(step):
                d_loss = loss.discriminator_loss(x, xrec)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
                d_value = d_loss.item()
            row = {"rec": parts.rec, "l1": parts.l1, "kl": parts.kl, "gan": parts.gan, "lambda": parts.lam,
                   "log_gamma": parts.log_gamma, "disc": d_value}
            result.history.append(row)
            if on_step is not None:
                on_step(step, row)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == settings.steps - 1:
                    bar.set_postfix(l1=f"{parts.l1:.4f}", kl=f"{parts.kl:.1f}", logγ=f"{parts.log_gamma:.2f}",
                                    λ=f"{parts.lam:.3g}", d=f"{d_value:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    result.seconds = time.perf_counter() - start
    model.eval()
    return result
