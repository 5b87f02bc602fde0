"""Text to label map: a route, the route distilled, and a translator trained on real pairs.

``bert -> vaegan@animals -> segmenter@animals``: the text-to-image cINN samples a silhouette
latent, the autoencoder decodes it and the segmenter encodes it as its logits (its ``last`` tap,
11×4×4: background and the ten animals). Three ways to get the segmenter's logits from a prompt:

- **direct**: a cINN trained on real pairs (the animals captions of the ``label-prose``
  bridge, the segmenter's logits of the images), through a registry entry written here;
- **route**: the two hops above, nothing trained for this pair;
- **distilled**: ``pair bert segmenter --from-route -t 0.6``, a cINN trained on pairs
  drawn along the route at the route's own temperature (sampled at 1 afterwards).

Each is scored on the held-out prompts of ``bench/prompts/animals.tsv`` (names, sentences,
synonyms; 16 samples each): the share of samples whose label map's majority animal (the most
frequent non-background class over the 4×4 cells) is the prompted one. The ceiling is the
same rule on the segmenter's logits of real held-out images. Also the time per request (one
prompt, one sample, translators held) and what each needed trained first.

    nice -n 10 python bench/bench_distill.py [--samples 16] [--draw 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from bench_route import per_request
from machine import cpu_name, loadavg, write_table

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "bench" / "prompts" / "animals.tsv"
# The segmenter's own encoding is its `last` tap (the 11×4×4 logits); a pair's target names no tap.
SOURCE, VIA, TARGET = "bert", "vaegan@animals", "segmenter@animals"
DIRECT_ENTRY = """
[pairs.bert-segmenter-last-animals]
description = "Text to the segmenter's logits of animal silhouettes (bench/bench_distill.py)"
source = "bert"
target = "segmenter@animals"
recipe = "dataset"
dataset = "animals"
source_from = "label"
bridges = ["label-prose"]
pairs_per_item = 4
temperature = 0.6  # as bert-vaegan-animals, the route's sampling hop

[pairs.bert-segmenter-last-animals.flow]
n_blocks = 4
hidden = 256
depth = 2

[pairs.bert-segmenter-last-animals.training]
steps = 2000
batch_size = 128
lr = 1e-3
warmup_steps = 100
val_every = 250
"""


def majority_animal(logits: torch.Tensor) -> torch.Tensor:
    """(N, 11, H, W) logits -> the most frequent non-background class per item, 0-based over the animals (-1: none)."""
    cells = logits.reshape(logits.shape[0], logits.shape[1], -1).argmax(dim=1)  # (N, H·W)
    counts = torch.stack([(cells == k).sum(dim=1) for k in range(1, logits.shape[1])], dim=1)  # (N, 10)
    best = counts.argmax(dim=1)
    return torch.where(counts.max(dim=1).values > 0, best, torch.full_like(best, -1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=16, help="samples per prompt")
    ap.add_argument("--draw", type=int, default=10_000, help="pairs drawn along the route to distil it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "distill.md")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    registry = Path(tempfile.mkdtemp()) / "registry.toml"
    registry.write_text((ROOT / "registry.toml").read_text() + DIRECT_ENTRY)
    os.environ["N2N_HUB_REGISTRY"] = str(registry)

    from n2n_hub import Hub
    from n2n_hub.evaluation.prompts import read_prompts
    from n2n_hub.translators.routes import run_route

    hub = Hub(progress=False)
    names = list(hub.catalog.datasets["animals"].class_names)
    prompts = read_prompts(PROMPTS)
    texts = [p.text for p in prompts]
    wanted = torch.tensor([names.index(p.cls) for p in prompts])
    segmenter = hub.load_expert(TARGET)
    test = hub.load_dataset("animals", "test")
    with torch.no_grad():
        real = torch.cat([segmenter.encode(test["image"][i:i + 500]) for i in range(0, 1000, 500)])
        assert torch.equal(real[:8], segmenter.encode(test["image"][:8], tap="last"))  # the logits, as said above
    ceiling = float((majority_animal(real) == torch.as_tensor(test["label"][:1000])).float().mean())

    start = time.perf_counter()
    direct = hub.pair(hub.plan(SOURCE, TARGET, translator="cinn"))
    direct_s = time.perf_counter() - start
    route = hub.route(SOURCE, TARGET, via=[VIA])
    hops = hub.route_hops(route)
    start = time.perf_counter()
    distilled = hub.pair(hub.plan_from_route(hub.route(SOURCE, TARGET, via=[VIA], direct=False),
                                             samples=args.draw, seed=args.seed, temperature=0.6))
    distilled_s = time.perf_counter() - start
    bert = hub.load_expert(SOURCE)
    address = direct.source_address
    shape = (-1, 11, 4, 4)

    def sample_direct(t, inputs, n, seed, temperature=None):
        return t.translate(inputs, n=n, seed=seed, temperature=temperature, decode=False).latents

    results = {
        "direct (trained on real pairs)": (lambda x, n, s: sample_direct(direct, x, n, s), direct_s),
        f"route {SOURCE} -> {VIA} -> {TARGET}": (
            lambda x, n, s: run_route(hops, bert, address, x, n=n, seed=s).latents, 0.0),
        # drawn at the route's temperature 0.6, so the distilled flow is sampled as it was taught, at 1
        f"distilled route ({args.draw} pairs)": (lambda x, n, s: sample_direct(distilled, x, n, s, 1.0), distilled_s),
    }
    rows = []
    for label, (sample, trained_s) in results.items():
        z = sample(texts, args.samples, args.seed).reshape(len(texts), args.samples, -1)
        hit = (majority_animal(z.reshape(shape).float()).reshape(len(texts), args.samples) == wanted[:, None]).float()
        by_kind = defaultdict(list)
        for i, p in enumerate(prompts):
            by_kind[p.kind].append(float(hit[i].mean()))
        shares = {k: sum(v) / len(v) for k, v in by_kind.items()}
        ms = per_request(lambda: sample(texts[:1], 1, 0))
        rows.append((label, shares, float(hit.mean()), ms, trained_s))
    kinds = list(rows[0][1])
    lines = [f"machine: {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), load {loadavg()} "
             f"at the end; {len(prompts)} held-out prompts, {args.samples} samples each, seed {args.seed}; "
             f"ceiling (real held-out images through the same rule): {ceiling:.3f}", "",
             "| translation | " + " | ".join(kinds) + " | all | ms per request | s to train first |",
             "|---|" + "---:|" * (len(kinds) + 3)]
    for label, shares, overall, ms, secs in rows:
        lines.append(f"| {label} | " + " | ".join(f"{shares[k]:.3f}" for k in kinds)
                     + f" | {overall:.3f} | {ms:.1f} | {secs:.0f} |")
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
