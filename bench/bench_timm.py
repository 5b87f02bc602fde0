"""timm experts on the animals: three architectures trained here, what their layers share with the autoencoder.

With ``--train`` runs, one after the other, ``n2n-hub train-expert timm`` for a CNN
(resnet10t), a ConvNeXt (convnext_atto) and a vision transformer at 32×32 (vit_tiny with
4×4 patches, 4 of its 12 blocks). Then, for each trained model, on the animals test split:
its accuracy, the linear CKA of each of its taps with the ``vaegan@animals`` latent of the
same images, the CKA between the models' pooled features, and a closed-form ``linear``
translator from its pooled features to the vaegan latent (held-out MSE per dimension, and
the time of the solve itself, features already encoded).
Prints Markdown for bench/RESULTS.md ("timm experts").

    python bench/bench_timm.py [--train] [--threads 1] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

MODELS = {  # variant -> train-expert arguments
    "resnet10t.animals": ["--model", "resnet10t", "--epochs", "8"],
    "convnext_atto.animals": ["--model", "convnext_atto", "--epochs", "8"],
    "vit_tiny_patch16_224.animals": ["--model", "vit_tiny_patch16_224", "--model-arg", "patch_size=4",
                                     "--model-arg", "depth=4", "--epochs", "10", "--lr", "1e-3"],
}


def host_with_timm():  # type: ignore[no-untyped-def]
    """The process's plugin host, with the timm plugin registered if its entry point is not installed."""
    from n2n_hub.catalog.host import get_host

    host = get_host()
    if host.pm.get_plugin("timm") is None:
        import n2n_timm

        host.register(n2n_timm, "timm")
    return host


def train(threads: int) -> None:
    from click.testing import CliRunner

    from n2n_hub.cli.commands import cli
    from n2n_timm import commands

    host_with_timm()
    commands.register(cli)
    for variant, args in MODELS.items():
        res = CliRunner().invoke(cli, ["train-expert", "timm", *args, "--dataset", "animals", "--threads",
                                       str(threads)])
        print(res.output, file=sys.stderr)
        if res.exit_code:
            raise SystemExit(f"training {variant} failed")


def evaluate(home: Path | None) -> None:
    import torch

    from machine import cpu_name, loadavg
    from n2n_animals.data import load
    from n2n_hub.evaluation.similarity import linear_cka
    from n2n_hub.hub import Hub

    hub = Hub(home=home, progress=False, log=lambda m: None, host=host_with_timm())
    test = load("test")
    images, labels = test["image"], test["label"]
    z = hub.load_expert("vaegan@animals").encode(images)
    pooled: dict[str, torch.Tensor] = {}
    print(f"**Machine.** {cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
          f"load average {loadavg()} when the evaluation started.\n")
    print(f"The vaegan latent of the test images varies by {float(z.var(dim=0).mean()):.4f} per dimension: the MSE "
          "of predicting its mean.\n")
    print("| model | parameters | epochs | training (s) | test accuracy | linear pooled → vaegan: val MSE/dim | "
          "closed-form fit (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ckas: dict[str, dict[str, float]] = {}
    for variant in MODELS:
        expert = hub.load_expert(f"timm@{variant}")
        info = json.loads((expert.source.folder / "config.json").read_text())["n2n_hub"]
        acc = float((expert.predict(images) == labels).float().mean())
        ckas[variant] = {tap: linear_cka(expert.encode(images, tap=tap), z) for tap in expert.taps}
        pooled[variant] = expert.encode(images, tap="pooled")
        t = hub.pair(f"timm:pooled@{variant}", "vaegan@animals", translator="linear")
        fit = t.metrics["wall_time_s"]  # the solve and the validation, as recorded when it was fitted
        print(f"| timm@{variant} | {info['parameters']:,} | {info['epochs']} | {info['seconds']:.0f} | {acc:.3f} "
              f"| {t.metrics['best_val_mse']:.4f} | {fit:.2f} |")
    print("\nLinear CKA of each tap with the vaegan@animals latent (1000 test images), shallow to deep:\n")
    for variant, row in ckas.items():
        print(f"- `{variant}`: " + ", ".join(f"{tap} {v:.2f}" for tap, v in row.items()))
    names = list(pooled)
    print("\nLinear CKA between the models' pooled features:\n")
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for a in names:
        print(f"| {a} | " + " | ".join(f"{linear_cka(pooled[a], pooled[b]):.2f}" for b in names) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="train the three models first (minutes each)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--home", type=Path, default=None, help="hub home (default: $N2N_HUB_HOME)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.home is not None:
        import os

        os.environ["N2N_HUB_HOME"] = str(args.home)
    if args.train:
        train(args.threads)
    evaluate(args.home)


if __name__ == "__main__":
    main()
