"""Image -> text, measured: held-out animals images into the sentence encoder's space.

For each pair (``vaegan@animals -> bert`` and ``segmenter:last@animals -> bert``, recipe
``dataset`` with the labels bridged into captions on the target side) and each translator
(the cINN, and the deterministic MLP baseline of Sec. E on the same pairs):

- **names the class**: the share of samples whose nearest caption in the pair's default caption
  bank (class names, a sentence per class, and label-prose captions of every class) is a caption
  of the image's class;
- **ceiling**: the same share for the sentence encoder itself: a held-out caption of the true
  class (label-prose, its evaluation templates) encoded by bert and read through the same bank;
- **diversity** across the samples of one image: distinct nearest captions among them, and
  their mean pairwise cosine distance (0 for the deterministic baseline).

Run: ``nice -n 10 python bench/bench_image_to_text.py [--per-class 20] [--samples 16]
[--out bench/out/image_to_text.md]``. Translators come from the cache (``$N2N_HUB_HOME``) or are
trained first with the registry's settings (``--steps`` overrides).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from machine import cpu_name, loadavg, write_table

PAIRS = (("vaegan@animals", "bert"), ("segmenter:last@animals", "bert"))


def held_out(hub, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    data = hub.load_dataset("animals", "test")
    labels = torch.as_tensor(data["label"])
    keep = torch.cat([(labels == k).nonzero().flatten()[:per_class] for k in range(int(labels.max()) + 1)])
    return data["image"][keep], labels[keep]


def animals_hub(per_class: int) -> tuple[object, list[str], torch.Tensor, torch.Tensor]:
    """The hub (threads from OMP_NUM_THREADS, else 1), the animal class names and ``per_class`` held-out images of each."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from n2n_hub import Hub

    hub = Hub(progress=False)
    images, labels = held_out(hub, per_class)
    return hub, list(hub.catalog.datasets["animals"].class_names), images, labels


def bank_classes(bank, names) -> torch.Tensor:
    """Class id of each bank text (-1 where unknown)."""
    return torch.tensor([names.index(lab) if lab in names else -1 for lab in bank.labels])


def nearest_ids(z: torch.Tensor, bank) -> torch.Tensor:
    zn = torch.nn.functional.normalize(z.reshape(z.shape[0], -1).float(), dim=1)
    bn = torch.nn.functional.normalize(bank.embeddings.float(), dim=1)
    return (zn @ bn.T).argmax(dim=1)


def ceiling(hub, t, bank, names, labels: torch.Tensor) -> float:
    """The sentence encoder's own share: held-out captions of the true class, through the same bank."""
    from n2n_hub.data.recipes import apply_bridges
    from n2n_hub.spec.components import BridgeContext

    ctx = BridgeContext(class_names=tuple(names), split="eval", generator=torch.Generator().manual_seed(1))
    texts = apply_bridges(t.plan.target_bridges, labels, ctx)
    with torch.no_grad():
        z = torch.cat([t.target.encode(texts[i:i + 256]) for i in range(0, len(texts), 256)])
    return float((bank_classes(bank, names)[nearest_ids(z, bank)] == labels).float().mean())


def measure(hub, t, bank, names, images, labels, n: int, seed: int, temperature: float) -> dict[str, float]:
    latents = t.sample_latents(images, n=n, seed=seed, temperature=temperature).cpu()  # (B, n, 384)
    b = latents.shape[0]
    flat = latents.reshape(b * n, -1)
    ids = nearest_ids(flat, bank).reshape(b, n)
    named = (bank_classes(bank, names)[ids] == labels[:, None]).float().mean()
    distinct = torch.tensor([len(set(row.tolist())) for row in ids]).float().mean()
    zn = torch.nn.functional.normalize(latents.float(), dim=2)
    cos = zn @ zn.transpose(1, 2)
    off = ~torch.eye(n, dtype=torch.bool)
    dist = (1 - cos[:, off]).mean().clamp(min=0) if n > 1 else torch.tensor(0.0)
    return {"named": float(named), "distinct": float(distinct), "distance": float(dist)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperatures", default="1.0,0.5", help="the cINN's sampling temperatures, comma-separated")
    ap.add_argument("--out", type=Path, default=Path("bench/out/image_to_text.md"))
    args = ap.parse_args()
    hub, names, images, labels = animals_hub(args.per_class)
    options = {"steps": args.steps} if args.steps else {}
    rows = []
    for source, target in PAIRS:
        for kind in ("cinn", "mlp"):
            start = time.time()
            t = hub.pair(source, target, translator=None if kind == "cinn" else kind, **options)
            trained_s = time.time() - start
            bank = hub.caption_bank(t)
            top = ceiling(hub, t, bank, names, labels)
            temps = [float(x) for x in args.temperatures.split(",")] if kind == "cinn" else [1.0]
            for temp in temps:
                m = measure(hub, t, bank, names, images, labels, args.samples, args.seed, temp)
                label = f"{kind} T={temp:g}" if kind == "cinn" else kind
                rows.append((source, label, m, top, len(bank.texts), trained_s, t.metrics.get("steps")))
                print(source, label, m, f"ceiling {top:.3f}", flush=True)
    lines = [f"machine: {cpu_name()}, {os.cpu_count()} cores, load {loadavg()} (1/5/15 min) at the end; "
             f"{len(labels)} held-out images ({args.per_class} per class), {args.samples} samples each, "
             f"seed {args.seed}", "",
             "| source -> bert | translator | steps | names the class | ceiling (bert on a true caption) | "
             "distinct nearest captions / 16 | mean pairwise cosine distance | bank size | pair s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for source, kind, m, top, size, secs, steps in rows:
        lines.append(f"| {source} | {kind} | {steps} | {m['named']:.3f} | {top:.3f} | {m['distinct']:.2f} | "
                     f"{m['distance']:.3f} | {size} | {secs:.0f} |")
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
