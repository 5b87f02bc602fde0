"""``n2n-hub train-expert vaegan``: train the autoencoder on a registered dataset or a folder of images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import torch
import torch.nn.functional as F

from n2n_hub.kit import MAX_SEED, FiniteFloat, N2NError, load_dataset


def _dataset_images(name: str) -> torch.Tensor:
    """The ``image`` data of a registered dataset's train split."""
    return load_dataset(name, "train", needs=("image",))["image"]


def _fit(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Resize and convert a dataset's images to the requested size and channel count."""
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, 3, -1, -1)
    if tuple(images.shape[-2:]) != (size, size):
        images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return images.clamp(-1, 1).contiguous()


@click.command(name="vaegan")
@click.option("--dataset", help="Registered dataset to train on (its train split), e.g. 'animals'.")
@click.option("--data", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of your own PNG/JPEG images (searched recursively).")
@click.option("--size", type=click.IntRange(8, 1024), default=32, show_default=True, help="Image size (4·2^k: 32, 64, 128, ...).")
@click.option("--channels", type=click.Choice(["1", "3"]), default="1", show_default=True,
              help="1 = grayscale, 3 = RGB.")
@click.option("--config", "preset", type=click.Choice(["small", "paper"]), default="small", show_default=True,
              help="'small': about 1 M parameters; 'paper': Table S2 (ResNet-101, BigGAN ch=96).")
@click.option("--steps", type=click.IntRange(1, 10**8), default=12000, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 10**6), default=32, show_default=True)
@click.option("--lr", type=FiniteFloat(0, 10, low_open=True), default=None, help="Adam step size (default: 1e-3 small, 1e-4 paper).")
@click.option("--kl-weight", type=FiniteFloat(0, 1e6), default=None, help="Weight of the KL term (default: the config's).")
@click.option("--disc-start", type=click.IntRange(0, 10**8), default=None,
              help="Step at which the discriminator starts (default: 60% of --steps).")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Random horizontal flips.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads for torch (1 is fastest on a busy machine).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Weights file to write (default: $N2N_HUB_HOME/experts/vaegan/<name>.safetensors).")
def train_vaegan_command(dataset: str | None, folder: Path | None, size: int, channels: str, preset: str,
                         steps: int, batch_size: int, lr: float | None, kl_weight: float | None, disc_start: int | None,
                         flip: bool, seed: int, device: str, threads: int | None, out: Path | None) -> None:
    """Train the vaegan autoencoder (Sec. F of the Net2Net supplement) and write its weights.

    Use the result as the expert vaegan@PATH.
    """
    if (dataset is None) == (folder is None):
        raise click.UsageError("give exactly one of --dataset NAME or --data FOLDER")
    if steps < 1 or batch_size < 1:
        raise click.UsageError("--steps and --batch-size must be positive")
    if preset == "paper" and size != 128:
        raise click.UsageError("the paper configuration (Table S2) is 128×128: use --size 128, or --config small")
    try:
        from n2n_hub.kit import experts_dir

        from .checkpoint import save_weights
        from .config import VAEGANConfig
        from .folder import load_image_folder
        from .train import TrainSettings, train_vaegan

        if threads:
            torch.set_num_threads(threads)
        n_ch = int(channels)
        lr = lr if lr is not None else (1e-4 if preset == "paper" else 1e-3)
        base = VAEGANConfig.paper() if preset == "paper" else VAEGANConfig.small(size, n_ch)
        changes = {"image_size": size, "channels": n_ch,
                   "disc_start": disc_start if disc_start is not None else int(0.6 * steps)}
        if kl_weight is not None:
            changes["kl_weight"] = kl_weight
        cfg = dataclasses.replace(base, **changes)
        if dataset is not None:
            images, name = _fit(_dataset_images(dataset), size, n_ch), dataset
        else:
            images, name = load_image_folder(folder, size, n_ch), Path(folder).resolve().name or "images"
        out = out or experts_dir("vaegan") / f"{name}.safetensors"
        click.echo(f"training vaegan on {images.shape[0]} images of {name} ({n_ch}×{size}×{size}) "
                   f"for {steps} steps, batch {batch_size}, seed {seed}", err=True)
        settings = TrainSettings(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, flip=flip)
        result = train_vaegan(images, cfg, settings)
        info = {**result.info(), "data": f"dataset:{dataset}" if dataset else f"folder:{name}",
                "images": int(images.shape[0]), "batch_size": batch_size, "lr": lr, "seed": seed}
        save_weights(result.model, out, info=info)
    except N2NError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"wrote {out} ({result.seconds:.0f} s); use it as the expert vaegan@{out}")
