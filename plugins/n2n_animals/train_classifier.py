"""Train the animal classifier shipped in ``weights/classifier.safetensors``.

``python -m n2n_animals.train_classifier [--epochs 12] [--seed 0] [--out PATH]`` reproduces
the shipped file (about two minutes on two CPU cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .classifier import WEIGHTS, AnimalClassifier, accuracy, save_classifier
from .data import load


def augment(x: torch.Tensor, gen: torch.Generator, max_shift: int = 3) -> torch.Tensor:
    """Random horizontal flips and shifts of up to ``max_shift`` pixels (background fills in)."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    p = max_shift
    padded = F.pad(x, (p, p, p, p), value=-1.0)
    dx, dy = (int(v) for v in torch.randint(0, 2 * p + 1, (2,), generator=gen))
    return padded[..., dy:dy + x.shape[-2], dx:dx + x.shape[-1]]


def train_classifier(epochs: int = 12, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
                     width: int = 16) -> tuple[AnimalClassifier, dict[str, Any]]:
    """Train on the animals train split; report accuracy on the test split."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    train, test = load("train"), load("test")
    x, y = train["image"], train["label"]
    model = AnimalClassifier(width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * (x.shape[0] // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], generator=gen)
        for i in range(x.shape[0] // batch_size):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            loss = F.cross_entropy(model(augment(x[idx], gen)), y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, test["image"], test["label"])
        print(f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, test accuracy {acc:.4f}", flush=True)
    info = {"test_accuracy": round(acc, 4), "train_accuracy": round(accuracy(model, x, y), 4),
            "epochs": epochs, "seed": seed, "width": width, "batch_size": batch_size, "lr": lr,
            "parameters": sum(p.numel() for p in model.parameters()),
            "seconds": round(time.perf_counter() - start, 1)}
    return model.eval(), info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    model, info = train_classifier(epochs=args.epochs, seed=args.seed)
    save_classifier(model, args.out, info)
    print(f"wrote {args.out}: {info}")


if __name__ == "__main__":
    main()
