"""A route against a direct translator of the same pair, on the same held-out inputs.

``segmenter:last@animals -> vaegan@animals -> bert`` (two cINN hops, each sampling its own
residual) against the direct ``segmenter:last@animals -> bert`` (one cINN, registry entry
``segmenter-bert-animals``), both read through the direct pair's default caption bank:

- **names the class**: the share of samples whose nearest bank caption is a caption of the
  input image's class;
- **distinct nearest captions** among the samples of one image;
- **time per request**: one image, one sample, median of 20 calls after warm-up, with the
  translators held (as a server holds them) and through ``Hub.translate`` (which pairs from the
  cache on each call, as one CLI command does);
- **training**: what each needs trained first (a hop already cached costs nothing).

Run: ``nice -n 10 python bench/bench_route.py [--per-class 20] [--samples 16]``. The hops'
translators are the pairs' current ones, made current here for the cINN.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from bench_image_to_text import animals_hub, bank_classes, nearest_ids
from machine import cpu_name, loadavg, write_table

SOURCE, VIA, TARGET = "segmenter:last@animals", "vaegan@animals", "bert"


def score(latents: torch.Tensor, bank, names, labels: torch.Tensor) -> dict[str, float]:
    b, n = latents.shape[:2]
    ids = nearest_ids(latents.reshape(b * n, -1), bank).reshape(b, n)
    named = float((bank_classes(bank, names)[ids] == labels[:, None]).float().mean())
    distinct = float(torch.tensor([len(set(row.tolist())) for row in ids]).float().mean())
    return {"named": named, "distinct": distinct}


def per_request(call, reps: int = 20) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/out/route.md"))
    args = ap.parse_args()
    hub, names, images, labels = animals_hub(args.per_class)

    trained = {}
    for src, tgt in ((SOURCE, TARGET), (SOURCE, VIA), (VIA, TARGET)):
        start = time.perf_counter()
        t = hub.pair(hub.plan(src, tgt, translator="cinn"), make_current=True)
        trained[(src, tgt)] = (time.perf_counter() - start, t)
    direct = trained[(SOURCE, TARGET)][1]
    bank = hub.caption_bank(direct)
    route = hub.route(SOURCE, TARGET, via=[VIA])

    from n2n_hub.translators.routes import run_route

    source = hub.load_expert(SOURCE)
    hops = hub.route_hops(route)
    address = direct.source_address
    rows = []
    z_direct = direct.sample_latents(images, n=args.samples, seed=args.seed).cpu()
    rows.append(("direct " + f"{SOURCE} -> {TARGET}", score(z_direct, bank, names, labels),
                 per_request(lambda: direct.translate(images[:1], n=1, seed=0, decode=False)),
                 per_request(lambda: hub.translate(SOURCE, TARGET, images[:1], n=1, seed=0)),
                 trained[(SOURCE, TARGET)][0]))
    routed = run_route(hops, source, address, images, n=args.samples, seed=args.seed)
    z_route = routed.latents.reshape(len(images), args.samples, -1).cpu()
    rows.append((f"route {SOURCE} -> {VIA} -> {TARGET}", score(z_route, bank, names, labels),
                 per_request(lambda: run_route(hops, source, address, images[:1], n=1, seed=0)),
                 per_request(lambda: hub.translate(route, inputs=images[:1], n=1, seed=0)),
                 trained[(SOURCE, VIA)][0] + trained[(VIA, TARGET)][0]))
    lines = [f"machine: {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} thread(s), load {loadavg()} "
             f"at the end; {len(labels)} held-out images ({args.per_class} per class), {args.samples} samples each, "
             f"seed {args.seed}; bank: {len(bank.texts)} texts", "",
             "| translation | names the class | distinct nearest captions / image | ms per request, translators held "
             "| ms per `Hub.translate` call (pairs from the cache each time) | s to pair first |",
             "|---|---|---|---|---|---|"]
    for label, m, held, call, secs in rows:
        lines.append(f"| {label} | {m['named']:.3f} | {m['distinct']:.2f} | {held:.1f} | {call:.1f} | {secs:.0f} |")
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
