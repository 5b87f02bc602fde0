"""Text → image on the embedded default (bert → vaegan@animals), measured as a user meets it.

(a) wall time of the README's main command on a cold cache (pairing included), and of
    the same command once the translator is cached;
(b) whether generated images show the prompted animal: the shipped animals classifier
    on samples for prompts built from held-out caption templates, against its accuracy
    on real test images;
(c) diversity: mean pairwise pixel distance among samples of one prompt, against the same
    statistic among real test images of that class;
(d) the VAE-GAN's reconstruction quality on the test split.

Run: ``python bench/bench_text2image.py [--samples 32] [--out bench/out/text2image.md]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from machine import cpu_name, write_table

PROMPTS = ["a photo of a zebra", "an elephant", "a bird"]


def timed_cli(home: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "n2n_hub", "translate", "bert", "vaegan", *PROMPTS, "-n", "8", "--seed", "0",
           "-o", str(out)]
    env = {**os.environ, "N2N_HUB_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def mean_pairwise_distance(x: torch.Tensor) -> float:
    flat = x.reshape(x.shape[0], -1).float()
    d = torch.cdist(flat, flat)
    n = flat.shape[0]
    return float(d.sum() / (n * (n - 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=32, help="samples per prompt")
    ap.add_argument("--out", type=Path, default=Path("bench/out/text2image.md"))
    ap.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.8],
                    help="sampling temperatures to score (1.0, the CLI default, is the headline)")
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="n2n-bench-"))
    grid = home / "animals.png"
    cold = timed_cli(home, grid)
    warm = timed_cli(home, grid)

    os.environ["N2N_HUB_HOME"] = str(home)
    from n2n_animals import CLASS_NAMES
    from n2n_animals.classifier import classify, test_accuracy
    from n2n_animals.data import load
    from n2n_captions.templates import EVAL_TEMPLATES, fill

    from n2n_hub import Hub

    hub = Hub(progress=False)
    t = hub.pair("bert", "vaegan")
    test = load("test")
    real_acc = test_accuracy()

    def score(temperature: float) -> tuple[float, list[tuple[str, float]], list[tuple[str, float, float]]]:
        """Prompted-class rate over all held-out prompts, per class, and per-class diversity."""
        correct = total = 0
        per_class, diversity_rows = [], []
        for c, name in enumerate(CLASS_NAMES):
            prompts = [fill(tpl, name) for tpl in EVAL_TEMPLATES]
            r = t.translate(prompts, n=args.samples, seed=c, temperature=temperature)
            pred = classify(r.outputs).argmax(dim=1)
            hits = int((pred == c).sum())
            correct += hits
            total += pred.numel()
            per_class.append((name, hits / pred.numel()))
            imgs = r.outputs.reshape(len(prompts), args.samples, *r.outputs.shape[1:])
            gen_div = sum(mean_pairwise_distance(imgs[i]) for i in range(len(prompts))) / len(prompts)
            real_div = mean_pairwise_distance(test["image"][test["label"] == c])
            diversity_rows.append((name, gen_div, real_div))
        return correct / total, per_class, diversity_rows

    runs = {temp: score(temp) for temp in args.temperatures}
    default = 1.0 if 1.0 in runs else args.temperatures[0]
    _, per_class, diversity_rows = runs[default]
    total = len(CLASS_NAMES) * len(EVAL_TEMPLATES) * args.samples

    vae = hub.load_expert("vaegan")
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(test["image"][i:i + 250])) for i in range(0, len(test["image"]), 250)])
    x = test["image"]
    rec_acc = float((classify(rec).argmax(dim=1) == test["label"]).float().mean())
    mse = float(((rec - x) ** 2).mean())
    psnr = 10 * torch.log10(torch.tensor(4.0 / mse)).item()  # images span [-1, 1]: peak-to-peak 2
    inter = ((rec > 0) & (x > 0)).flatten(1).sum(1).float()
    union = ((rec > 0) | (x > 0)).flatten(1).sum(1).float().clamp(min=1)
    iou = float((inter / union).mean())

    lines = [
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, CPU fp32.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| (a) cold cache → first grid (`n2n-hub translate bert vaegan` 3 prompts × 8, pairing included) | {cold:.0f} s | < 180 s |",
        f"| (a) same command, translator cached | {warm:.1f} s | instant |",
        f"| (b) classifier accuracy on real test images | {real_acc:.3f} | |",
        f"| (b) ceiling: classifier accuracy on the VAE-GAN's reconstructions of the test images | {rec_acc:.3f} | |",
    ]
    for temp, (acc, _, div) in runs.items():
        lines += [
            f"| (b) classifier assigns the prompted class to generated images (held-out templates, {total} images), temperature {temp:g} | {acc:.3f} | ≥ {0.9 * real_acc:.3f} (0.9× real) |",
            f"| (b) ratio generated / real, temperature {temp:g} | {acc / real_acc:.3f} | ≥ 0.9 |",
            f"| (c) diversity, temperature {temp:g}: mean pairwise pixel L2 among samples of one prompt / among real images of the class (mean over classes) | {sum(g / r for _, g, r in div) / len(div):.2f} | |",
        ]
    lines += [
        f"| (d) VAE-GAN test reconstruction: MSE / PSNR / silhouette IoU | {mse:.4f} / {psnr:.1f} dB / {iou:.3f} | |",
        "",
        f"Per class at temperature {default:g} (prompted-class rate; diversity generated vs real):",
        "",
        "| class | prompted class | diversity generated | diversity real |",
        "| --- | --- | --- | --- |",
    ]
    for (name, acc), (_, g, r) in zip(per_class, diversity_rows):
        lines.append(f"| {name} | {acc:.2f} | {g:.1f} | {r:.1f} |")
    write_table(lines, args.out)
    print(f"grid: {grid}")


if __name__ == "__main__":
    main()
