"""Prompts as people write them: held-out names, sentences and synonyms, scored per class and kind.

For bert -> vaegan@animals: the share of samples the animals classifier names as the
prompted animal (``bench/prompts/animals.tsv``, written before any tuning), against the
reconstruction ceiling and the MiniLM nearest-centroid line; the NLL of held-out images
split into an image part and a phrasing part; sample diversity; training wall time.
A variant is chosen with ``--bridge`` and ``--condition-noise`` (and ``--steps``).

With ``--biggan VARIANT`` (a BigGAN weights folder, or ``random-embedding``: a fixed random
class embedding in place of BigGAN's, no weights needed) it scores bert -> biggan instead:
top-1 and top-5 class of the generated class embedding for the held-out names, sentences and
synonyms of ``bench/prompts/imagenet.tsv`` (100 classes).

Run: ``python bench/bench_prompts.py [--steps N] [--bridge label-prose] [--condition-noise 0.5] [--json]``;
``python bench/bench_prompts.py --biggan random-embedding --bridge label-wordnet --steps 3000 --blocks 8
--hidden 256 --batch-size 256 --lr 5e-4``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from machine import cpu_name

PROMPTS = Path(__file__).resolve().parent / "prompts" / "animals.tsv"
IMAGENET_PROMPTS = PROMPTS.with_name("imagenet.tsv")


def registry_override(pair: str, bridge: str | None, pairs_per_item: int | None = None) -> None:
    """Point $N2N_HUB_REGISTRY at a file that swaps the pair's bridge (the shipped file is not touched)."""
    lines = [f'bridges = ["{bridge}"]'] if bridge else []
    lines += [f"pairs_per_item = {pairs_per_item}"] if pairs_per_item else []
    if not lines:
        return
    path = Path(tempfile.mkdtemp(prefix="n2n-bench-reg-")) / "registry.toml"
    path.write_text(f"[pairs.{pair}]\n" + "\n".join(lines) + "\n")
    os.environ["N2N_HUB_REGISTRY"] = str(path)


def diversity(translator, prompts: list[str], n: int, seed: int) -> float:  # type: ignore[no-untyped-def]
    """Mean pairwise pixel RMS among the n samples of each prompt (the evaluation's diversity_pixels)."""
    from n2n_hub.evaluation.metrics import mean_pairwise_rms

    r = translator.translate(prompts, n=n, seed=seed)
    return mean_pairwise_rms(r.outputs.reshape(len(prompts), n, -1))


def animals(args: argparse.Namespace) -> dict:
    from n2n_hub import Hub
    from n2n_hub.evaluation.prompts import evaluate_prompts, read_prompts

    registry_override("bert-vaegan-animals", args.bridge, args.pairs_per_item)
    hub = Hub(progress=False)
    options = {k: v for k, v in {"steps": args.steps, "condition_noise": args.condition_noise}.items() if v}
    if args.train_seed is not None:
        options["seed"] = args.train_seed
    t0 = time.perf_counter()
    t = hub.pair("bert", "vaegan", **options)
    pair_s = time.perf_counter() - t0
    plan = t.plan
    prompts = read_prompts(args.prompts or PROMPTS)
    report = evaluate_prompts(t, prompts, hub.held_out(t), dataset=hub.catalog.datasets.get(plan.dataset or ""),
                              n=args.samples, seed=args.seed)
    div = diversity(t, [p.text for p in prompts if p.kind == "names"], 8, args.seed)
    return {"pair": "bert -> vaegan@animals", "bridge": [b.id for b in plan.bridges], "options": options,
            "pairs_per_item": plan.pairs_per_item,
            "pair_seconds": pair_s, "train_metrics": t.metrics, "diversity_pixels_names": div,
            **report.to_dict()}


def biggan(args: argparse.Namespace) -> dict:
    from n2n_hub import Hub
    from n2n_hub.evaluation.prompts import evaluate_prompts, read_prompts

    registry_override("bert-biggan", args.bridge)
    hub = Hub(progress=False)
    target = f"biggan@{args.biggan}"
    options = {k: v for k, v in {"steps": args.steps, "condition_noise": args.condition_noise,
                                 "n_blocks": args.blocks, "hidden": args.hidden, "batch_size": args.batch_size,
                                 "lr": args.lr}.items() if v}
    if args.steps:  # a CPU-sized run: validate rarely and never stop early
        options.update(warmup_steps=200, val_every=500, patience=0)
    t0 = time.perf_counter()
    t = hub.pair("bert", target, **options)
    pair_s = time.perf_counter() - t0
    plan = t.plan
    prompts = read_prompts(args.prompts or IMAGENET_PROMPTS)
    report = evaluate_prompts(t, prompts, hub.held_out(t), dataset=hub.catalog.datasets.get(plan.dataset or ""),
                              n=args.samples, seed=args.seed)
    return {"pair": f"bert -> {target}", "bridge": [b.id for b in plan.bridges], "options": options,
            "pair_seconds": pair_s, "train_metrics": t.metrics, **report.to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the registry's)")
    ap.add_argument("--bridge", default=None, help="label -> text bridge (default: the registry's)")
    ap.add_argument("--condition-noise", type=float, default=None)
    ap.add_argument("--pairs-per-item", type=int, default=None, help="captions per training image")
    ap.add_argument("--samples", type=int, default=16, help="samples per prompt")
    ap.add_argument("--seed", type=int, default=0, help="seed of the samples")
    ap.add_argument("--train-seed", type=int, default=None, help="seed of the training run (default: the registry's)")
    ap.add_argument("--biggan", default=None, help="BigGAN weights folder or variant: score bert -> biggan")
    ap.add_argument("--prompts", type=Path, default=None,
                    help="prompt file (default: bench/prompts/animals.tsv, or imagenet.tsv with --biggan)")
    ap.add_argument("--blocks", type=int, default=None, help="flow blocks (default: the registry's)")
    ap.add_argument("--hidden", type=int, default=None, help="flow width (default: the registry's)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    out = biggan(args) if args.biggan else animals(args)
    out["machine"] = f"{cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, torch threads {torch.get_num_threads()}"
    if args.json:
        print(json.dumps(out, default=str))
        return
    from n2n_hub.evaluation.prompts import PromptEvaluation

    fields = {k: out[k] for k in PromptEvaluation.__dataclass_fields__}
    print(PromptEvaluation(**fields).table())
    print({k: out[k] for k in out if k not in fields})


if __name__ == "__main__":
    sys.exit(main())
