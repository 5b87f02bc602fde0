"""Sec. E across model families: every tap of three timm models trained here, in one diagnosis.

Runs (or, with ``--json``, reads the output of)

    n2n-hub diagnose timm@resnet10t.animals timm@convnext_atto.animals \
        timm@vit_tiny_patch16_224.animals vaegan@animals --layers all --json

and prints the Markdown table of bench/RESULTS.md ("Diagnosing three timm models"): per model
and tap its shape, linear CKA with the vaegan latent, the cINN's held-out NLL, Fréchet
distances (latent, latent against independent real latents, image features), diversity and
consistency, the MLP's and the linear map's squared error and unpaired latent FD, and the
seconds the tap's three cells took. Then the rank correlation, per model, between CKA and
the cINN's NLL over the taps. ``--figure`` redraws a README-sized figure from the cached cells.

    python bench/bench_timm_diagnosis.py [--json bench/out/diagnosis_timm.json] [--figure docs/diagnosis_timm.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("timm@resnet10t.animals", "timm@convnext_atto.animals", "timm@vit_tiny_patch16_224.animals")
TARGET = "vaegan@animals"
# three taps per model for the README figure: an early stage, the last stage, the pooled features
FIGURE_TAPS = "layer1,layer4,stages.0,stages.3,blocks.0,blocks.3,pooled"


def ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = float(rank)
    return out


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    var = (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
    return cov / var if var else float("nan")


def fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="read this diagnose --json output instead of running it")
    ap.add_argument("--figure", type=Path, help="also draw the README figure (taps: %s)" % FIGURE_TAPS)
    args = ap.parse_args()
    if args.json:
        data = json.loads(args.json.read_text())
    else:
        out = subprocess.run([sys.executable, "-m", "n2n_hub", "diagnose", *MODELS, TARGET, "--layers", "all",
                              "--json"], capture_output=True, text=True, check=True)
        data = json.loads(out.stdout)
    from n2n_hub import Hub

    hub = Hub(progress=False, log=lambda m: None)
    shapes = {m: {tap: hub.expert_spec(m).taps[tap].describe() for tap in hub.expert_spec(m).taps} for m in MODELS}
    print("| model | tap | shape | CKA | cINN NLL | cINN FD lat | cINN FD lat unp. | cINN FD feat | cINN div px "
          "| cINN cons | MLP MSE | MLP FD lat unp. | lin MSE | lin FD lat unp. | s |")
    print("|---|---|---|" + "---:|" * 12)
    for row in data["rows"]:
        c, m, lin = row["cinn"] or {}, row["mlp"] or {}, row["linear"] or {}
        seconds = sum(row["seconds"].values())
        print(f"| {row['model'].split('@')[1].split('.')[0]} | {row['tap']} | {shapes[row['model']][row['tap']]} "
              f"| {fmt(row['cka'], 2)} | {fmt(c.get('nll'))} | {fmt(c.get('fd_latent'))} "
              f"| {fmt(c.get('fd_latent_unpaired'))} | {fmt(c.get('fd_features'))} | {fmt(c.get('diversity_pixels'))} "
              f"| {fmt(c.get('consistency_cosine'))} | {fmt(m.get('mse'), 4)} | {fmt(m.get('fd_latent_unpaired'))} "
              f"| {fmt(lin.get('mse'), 4)} | {fmt(lin.get('fd_latent_unpaired'))} | {seconds:.0f} |")
    first = data["rows"][0]["cinn"]
    print(f"\nreference: independent real latents FD {fmt(first.get('fd_latent_floor'))}, real images FD features "
          f"{fmt(first.get('fd_features_floor'))}, reconstructions FD features "
          f"{fmt(first.get('fd_features_reconstruction'))}")
    for model in MODELS:
        rows = [r for r in data["rows"] if r["model"] == model]
        rho = spearman([r["cka"] for r in rows], [r["cinn"]["nll"] for r in rows])
        print(f"{model}: Spearman(CKA, cINN NLL) over {len(rows)} taps = {rho:.2f}")
    print(f"total seconds over all cells: {sum(sum(r['seconds'].values()) for r in data['rows']):.0f}")
    if args.figure:
        hub.diagnose(list(MODELS), TARGET, FIGURE_TAPS, figure=args.figure, inputs=8, cinn_rows=2,
                     train_if_missing=False)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
