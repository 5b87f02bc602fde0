"""BERT → BigGAN without BigGAN weights: does text land on the prompted ImageNet class?

The pair is trained exactly as `n2n-hub pair bert biggan` trains it (target-prior recipe:
sample a class and noise, caption the class with the registry's bridge (label-wordnet since
the prompts work; label-caption before), encode the caption with the real MiniLM sentence encoder), but on ``biggan@random-embedding``: BigGAN's
class-embedding matrix W is replaced by a fixed random 1000×128 matrix, because the real
one is not available offline. Evaluation prompts use the held-out caption templates only.
For each prompt we sample latents and ask which of the 1000 class embeddings is nearest
to the sample's ĥ part: top-1 and top-5 accuracy over all 1000 classes.

Run: ``python bench/bench_bert_biggan.py [--steps 3000] [--blocks 8] [--hidden 512]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from machine import cpu_name, write_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--samples-per-prompt", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("bench/out/bert_biggan.md"))
    args = ap.parse_args()

    os.environ.setdefault("N2N_HUB_HOME", tempfile.mkdtemp(prefix="n2n-bench-"))
    from n2n_captions.templates import EVAL_TEMPLATES, fill

    from n2n_hub import Hub

    hub = Hub(device=args.device, progress=True)
    t0 = time.perf_counter()
    t = hub.pair("bert", "biggan@random-embedding", n_blocks=args.blocks, hidden=args.hidden, steps=args.steps,
                 batch_size=args.batch_size, lr=args.lr, warmup_steps=200, val_every=500, patience=0)
    pair_s = time.perf_counter() - t0
    target = t.target
    names = target.class_names
    emb = target.embedding
    layout = target.layout

    top1 = top5 = total = 0
    mean_top1 = 0
    t1 = time.perf_counter()
    for tpl in EVAL_TEMPLATES:
        prompts = [fill(tpl, name) for name in names]
        for start in range(0, len(prompts), 250):
            chunk = prompts[start:start + 250]
            labels = torch.arange(start, start + len(chunk))
            z = t.sample_latents(chunk, n=args.samples_per_prompt, seed=start)  # (B, n, D)
            _, h = layout.split(z.reshape(-1, z.shape[-1]))
            d = torch.cdist(h, emb)
            ranks = d.topk(5, largest=False).indices.view(len(chunk), args.samples_per_prompt, 5)
            top1 += int((ranks[..., 0] == labels[:, None]).sum())
            top5 += int((ranks == labels[:, None, None]).any(-1).sum())
            total += len(chunk) * args.samples_per_prompt
            _, h_mean = layout.split(z.mean(dim=1))
            mean_top1 += int((torch.cdist(h_mean, emb).argmin(1) == labels).sum())
    eval_s = time.perf_counter() - t1
    n_prompts = len(EVAL_TEMPLATES) * len(names)
    m = t.metrics
    lines = [
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, device {args.device}.",
        f"Translator: cINN {args.blocks} blocks, hidden {args.hidden}, {m.get('steps')} steps of batch "
        f"{args.batch_size}, {t.metadata.get('pairs')} training pairs; held-out NLL {m.get('best_val_nll'):.3f} "
        f"nats/dim; pairing (sampling, captioning, encoding, training) {pair_s:.0f} s.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| prompts (1000 classes × {len(EVAL_TEMPLATES)} held-out templates) | {n_prompts} |",
        f"| samples per prompt | {args.samples_per_prompt} |",
        f"| top-1: nearest class of a sample's ĥ is the prompted one | {top1 / total:.3f} |",
        f"| top-5: prompted class among the 5 nearest | {top5 / total:.3f} |",
        f"| top-1 of the mean of a prompt's samples | {mean_top1 / n_prompts:.3f} |",
        "| chance (top-1 / top-5) | 0.001 / 0.005 |",
        f"| evaluation time | {eval_s:.0f} s |",
    ]
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
