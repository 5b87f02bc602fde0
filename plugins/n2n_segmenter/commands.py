"""``n2n-hub train-expert segmenter``: train the segmenter on a registered dataset with image labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from n2n_hub.kit import MAX_SEED, FiniteFloat, N2NError


def _dataset(name: str) -> tuple[Any, tuple[str, ...]]:
    """A loader of the dataset's splits, and its class names; it must have images and one label per image."""
    from n2n_hub.kit import dataset_spec, load_dataset

    spec = dataset_spec(name, needs=("image", "label"), labelled=True)
    return (lambda split: load_dataset(name, split, needs=("image", "label"))), tuple(spec.class_names or ())


@click.command(name="segmenter")
@click.option("--dataset", required=True, help="Registered dataset with images and labels, e.g. 'animals'.")
@click.option("--encoder", type=click.Choice(["resnet18", "resnet34"]), default="resnet18", show_default=True)
@click.option("--encoder-weights", default="none", show_default=True,
              help="none, imagenet/ssl/swsl (from the local Hugging Face cache only), or a ResNet state dict file.")
@click.option("--epochs", type=click.IntRange(1, 10**6), default=8, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 10**6), default=64, show_default=True)
@click.option("--lr", type=FiniteFloat(0, 10, low_open=True), default=3e-3, show_default=True)
@click.option("--threshold", type=FiniteFloat(-1e6, 1e6), default=0.0, show_default=True,
              help="Pixels brighter than this (in [-1, 1]) are the animal, the rest background.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for torch (1 is fastest on a busy machine).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Weights file to write (default: $N2N_HUB_HOME/experts/segmenter/<dataset>.safetensors).")
def train_segmenter_command(dataset: str, encoder: str, encoder_weights: str, epochs: int, batch_size: int,
                            lr: float, threshold: float, seed: int, device: str, threads: int | None,
                            out: Path | None) -> None:
    """Train the DeepLabV3 segmenter (background or the image's class, per pixel) and write its weights.

    Reports pixel accuracy and mean IoU on the dataset's test split. Use the result as
    the expert segmenter@PATH.
    """
    try:
        import torch

        from n2n_hub.kit import experts_dir

        from . import encoder_weights as ew
        from .checkpoint import save_weights
        from .config import SegmenterConfig
        from .train import TrainSettings, evaluate, train_segmenter

        if threads:
            torch.set_num_threads(threads)
        load, names = _dataset(dataset)
        train, test = load("train"), load("test")
        images = train["image"]
        cfg = SegmenterConfig(encoder=encoder, image_size=int(images.shape[-1]), channels=int(images.shape[1]),
                              class_names=("background", *names), foreground_threshold=threshold)
        weights_file = ew.resolve(encoder_weights, encoder)
        init = (lambda m: ew.load_into(m.encoder, weights_file)) if weights_file is not None else None
        out = out or experts_dir("segmenter") / f"{dataset}.safetensors"
        click.echo(f"training segmenter ({cfg.encoder}, {ew.describe(encoder_weights)}) on {images.shape[0]} "
                   f"images of {dataset} for {epochs} epochs, batch {batch_size}, seed {seed}", err=True)
        settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
        model, info = train_segmenter(images, train["label"], cfg, settings, init=init,
                                      log=lambda m: click.echo(m, err=True))
        info.update({"dataset": dataset, "encoder_weights": encoder_weights if weights_file else "none"})
        save_weights(model, out, info=info)
        from .checkpoint import load_model

        stored, _ = load_model(out)  # score what was written (fp16), not the fp32 model in memory
        result = evaluate(stored, test["image"], test["label"])
        info.update({"test_pixel_accuracy": round(result["pixel_accuracy"], 4),
                     "test_mean_iou": round(result["mean_iou"], 4), "test_iou": result["iou"]})
        save_weights(model, out, info=info)
    except N2NError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"test split: pixel accuracy {info['test_pixel_accuracy']:.4f}, mean IoU {info['test_mean_iou']:.4f}")
    click.echo(f"wrote {out} ({info['seconds']:.0f} s); use it as the expert segmenter@{out}")
