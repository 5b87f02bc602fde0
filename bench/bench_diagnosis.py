"""Model diagnosis on the shipped animals experts (Sec. E, Fig. S4): segmenter layers -> vaegan@animals.

Runs ``n2n-hub diagnose segmenter vaegan --layers early,middle,last --translators cinn,mlp`` on a cold cache (a
fresh ``$N2N_HUB_HOME``), times it, and adds two checks in a feature space the segmenter
had no part in: the animals classifier's penultimate features (Fréchet distance of
samples vs. real test images, as FID does with Inception) and the classifier's accuracy
at naming the input's animal in each sample. Prints a Markdown table for bench/RESULTS.md
and copies the figure to docs/diagnosis.png.

    python bench/bench_diagnosis.py [--home DIR] [--threads 1] [--steps N] [--global-context]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    import torch

    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}; Python {platform.python_version()}"


def classifier_checks(home: Path, layers: list[str], seed: int = 0) -> dict[tuple[str, str], dict[str, float]]:
    """Per (layer, kind): FD in the classifier's penultimate features and the samples' class accuracy."""
    import torch

    from n2n_animals.classifier import load_classifier, prepare
    from n2n_animals.data import load
    from n2n_hub import Hub
    from n2n_hub.evaluation.metrics import frechet_distance

    hub = Hub(home=home, progress=False, log=lambda m: None)
    clf = load_classifier()
    test = load("test")
    real_images, labels = test["image"], test["label"]

    @torch.no_grad()
    def feats(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([clf.features(prepare(x[i:i + 500])) for i in range(0, x.shape[0], 500)])

    @torch.no_grad()
    def predict(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([clf(prepare(x[i:i + 500])).argmax(1) for i in range(0, x.shape[0], 500)])

    f_real = feats(real_images)
    out: dict[tuple[str, str], dict[str, float]] = {}
    for layer in layers:
        for kind in ("cinn", "mlp"):
            t = hub.pair(f"segmenter:{layer}", "vaegan", translator=kind, train_if_missing=False)
            plan = hub.plan(f"segmenter:{layer}", "vaegan", translator=kind)
            c = hub.training_pairs(plan, split="test").source
            g = torch.Generator().manual_seed(seed + 1)
            with torch.no_grad():
                z = torch.cat([t.module.sample(c[i:i + 250], n=1, generator=g)[:, 0] for i in range(0, c.shape[0], 250)])
                x = torch.cat([t.target.decode(z[i:i + 250]) for i in range(0, z.shape[0], 250)])
            out[(layer, kind)] = {"fd_classifier": frechet_distance(feats(x), f_real),
                                  "class_accuracy": float((predict(x) == labels).float().mean())}
    with torch.no_grad():
        recon = hub.load_expert("vaegan").decode(hub.load_expert("vaegan").encode(real_images))
    out[("reconstruction", "-")] = {"fd_classifier": frechet_distance(feats(recon), f_real),
                                   "class_accuracy": float((predict(recon) == labels).float().mean())}
    train = load("train")["image"]
    pick = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:real_images.shape[0]]
    out[("independent real", "-")] = {"fd_classifier": frechet_distance(feats(train[pick]), f_real)}
    return out


def global_context(home: Path, steps: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
    """A more invariant layer than the logits: DeepLab's image-pooling branch (ASPP global average, 64×1×1).

    It is not a tap of the expert; the translators are trained directly with the hub's trainer on
    the same animals pairs and registry sizes, to see what an MLP does when a layer keeps little
    more than the class.
    """
    import torch

    from n2n_animals.classifier import load_classifier, prepare
    from n2n_animals.data import load
    from n2n_hub import Hub
    from n2n_hub.cinn.baseline import MLPTranslator
    from n2n_hub.cinn import ConditionalINN, ConditionSpec
    from n2n_hub.evaluation.metrics import frechet_distance, mean_pairwise_rms
    from n2n_hub.training import TrainConfig, train

    hub = Hub(home=home, progress=False, log=lambda m: None)
    seg, vae = hub.load_expert("segmenter"), hub.load_expert("vaegan")
    plan = hub.plan("segmenter:last", "vaegan")
    z_train, z_test = hub.training_pairs(plan, "train").target, hub.training_pairs(plan, "test").target
    train_set, test_set = load("train"), load("test")
    clf = load_classifier()

    @torch.no_grad()
    def pooled(x: torch.Tensor) -> torch.Tensor:
        branch = seg.model.decoder.aspp.convs[4]
        return torch.cat([branch(seg.model.encode_stages(x[i:i + 500])[-1])[:, :, :1, :1]
                          for i in range(0, x.shape[0], 500)]).contiguous()

    @torch.no_grad()
    def feats(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([clf.features(prepare(x[i:i + 500])) for i in range(0, x.shape[0], 500)])

    c_train, c_test = pooled(train_set["image"]), pooled(test_set["image"])
    f_real = feats(test_set["image"])
    cond = ConditionSpec(tuple(c_train.shape[1:]), "spatial")
    out = {}
    for kind in ("cinn", "mlp"):
        model = (ConditionalINN(128, cond, n_blocks=4, hidden=256, depth=2) if kind == "cinn"
                 else MLPTranslator(128, cond, hidden=256, depth=2))
        train(model, c_train, z_train, TrainConfig(steps=steps, batch_size=64, lr=1e-3, warmup_steps=50,
                                                  val_every=100, seed=seed, progress=False))
        model.eval()
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            z = model.sample(c_test, n=1, generator=g)[:, 0]
            x = vae.decode(z)
            z_div = model.sample(c_test[:64], n=8, generator=g)
        pred = clf(prepare(x)).argmax(1)
        out[kind] = {"fd_latent": frechet_distance(z, z_test), "fd_classifier": frechet_distance(feats(x), f_real),
                     "class_accuracy": float((pred == test_set["label"]).float().mean()),
                     "diversity_latent": mean_pairwise_rms(z_div)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None, help="cache root (default: a fresh temporary folder)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--layers", default="early,middle,last")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "diagnosis.png")
    ap.add_argument("--global-context", action="store_true",
                    help="also translate DeepLab's image-pooling branch (a layer that keeps little but the class)")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="n2n-diagnosis-"))
    home.mkdir(parents=True, exist_ok=True)  # diagnose checks -o before any work: its folder must exist
    env = {**os.environ, "N2N_HUB_HOME": str(home)}
    fig = home / "diagnosis.png"
    cmd = [sys.executable, "-m", "n2n_hub", "diagnose", "segmenter", "vaegan", "--layers", args.layers,
           "--translators", "cinn,mlp", "-o", str(fig), "--threads", str(args.threads), "--json"]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    runs = []
    first_state = "warm" if (home / "translators").exists() else "cold"
    for attempt in (first_state, "warm"):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        runs.append(time.perf_counter() - start)
        if proc.returncode:
            sys.exit(f"diagnose failed ({attempt}):\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout)
    layers = result["layers"]
    import torch

    torch.set_num_threads(args.threads)
    extra = classifier_checks(home, layers)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(fig, args.figure)

    print(f"machine: {machine()}; torch threads {args.threads}")
    print(f"command: N2N_HUB_HOME=<empty dir> n2n-hub diagnose segmenter vaegan --layers {args.layers} "
          f"-o diagnosis.png --threads {args.threads}" + (f" --steps {args.steps}" if args.steps else ""))
    print(f"wall time: {first_state} cache {runs[0]:.0f} s"
          + (" (features + 6 translators + evaluation)" if first_state == "cold" else "")
          + f", warm {runs[1]:.0f} s (evaluation and figure only)")
    print(f"feature space of 'FD features': {result['features']}; held-out conditions per row: "
          f"{result['results'][0]['conditions']}\n")
    print("| layer | translator | NLL (nats/dim) | MSE/dim | FD latent | FD latent unpaired | FD features | "
          "FD classifier | class acc. | diversity latent | diversity pixels | consistency (cos) |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def f(v: float | None, spec: str = ".3f") -> str:
        return "-" if v is None else format(v, spec)

    for row in result["results"]:
        m, e = row["metrics"], extra[(row["layer"], row["kind"])]
        print(f"| {row['layer']} | {row['kind']} | {f(m['nll'])} | {f(m['mse'])} | {f(m['fd_latent'])} | "
              f"{f(m['fd_latent_unpaired'])} | {f(m['fd_features'], '.3f')} | {f(e['fd_classifier'], '.2f')} | {e['class_accuracy']:.3f} | "
              f"{f(m['diversity_latent'])} | {f(m['diversity_pixels'])} | {f(m['consistency_cosine'])} |")
    rec, real = extra[("reconstruction", "-")], extra[("independent real", "-")]
    first = result["results"][0]["metrics"]
    print(f"| *vaegan reconstruction of the input* | - | - | - | - | - | {f(first['fd_features_reconstruction'])} | "
          f"{rec['fd_classifier']:.2f} | {rec['class_accuracy']:.3f} | - | - | "
          f"{f(first['consistency_cosine_reconstruction'])} (early) |")
    print(f"| *independent real images (train split)* | - | - | - | {f(first['fd_latent_floor'])} | - | "
          f"{f(first['fd_features_floor'])} | {real['fd_classifier']:.2f} | - | - | - | - |")
    print(f"\nfigure: {args.figure.relative_to(ROOT) if args.figure.is_relative_to(ROOT) else args.figure}")
    if args.global_context:
        print("\nDeepLab's image-pooling branch (64×1×1), 1000 steps each:")
        print("| translator | FD latent | FD classifier | class acc. | diversity latent |\n|---|---:|---:|---:|---:|")
        for kind, m in global_context(home).items():
            print(f"| {kind} | {m['fd_latent']:.3f} | {m['fd_classifier']:.2f} | {m['class_accuracy']:.3f} | "
                  f"{m['diversity_latent']:.3f} |")


if __name__ == "__main__":
    main()
