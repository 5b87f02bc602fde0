"""``n2n-hub train-expert timm``: train any timm architecture as a classifier on a hub dataset."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from n2n_hub.kit import MAX_SEED, FiniteFloat, InputError, N2NError, PluginError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def register(cli: click.Group) -> None:
    group = cli.commands.get("train-expert")
    if not isinstance(group, click.Group):
        raise PluginError("this n2n-hub has no 'train-expert' command group; upgrade n2n-hub")
    group.add_command(train_timm_command)


def parse_model_args(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are read as JSON (numbers, lists, true) or else kept as text."""
    args: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise InputError(f"--model-arg {item!r} must look like KEY=VALUE, e.g. patch_size=4")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def check_model(model: str) -> None:
    """An architecture timm knows (without a tag), or one line with close names."""
    import timm

    from .names import suggestions

    if "." in model:
        raise InputError(f"--model {model!r}: name an architecture without a tag (e.g. {model.split('.')[0]}); "
                         "the trained weights get their own name (--name)")
    if not timm.is_model(model):
        close = suggestions(model, timm.list_models())
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"timm has no model {model!r}.{hint} `n2n-hub experts -q NAME` searches timm's models")


def check_name(name: str) -> None:
    import timm

    if not _NAME.match(name):
        raise InputError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (e.g. resnet18.animals)")
    if name in set(timm.list_models(pretrained=True)) or ("." not in name and timm.is_model(name)):
        raise InputError(f"--name {name!r} is a name timm already uses for its own weights; choose another "
                         "(e.g. MODEL.DATASET)")


@click.command(name="timm")
@click.option("--model", "model_name", required=True, help="timm architecture, e.g. resnet18, convnext_atto.")
@click.option("--dataset", required=True, help="Registered dataset with images and labels, e.g. 'animals'.")
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE",
              help="Extra argument for timm.create_model (repeatable), e.g. patch_size=4 or depth=6.")
@click.option("--name", default=None, help="Variant name (default MODEL.DATASET): use it as timm@NAME.")
@click.option("--epochs", type=click.IntRange(1, 10**6), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 10**6), default=128, show_default=True)
@click.option("--lr", type=FiniteFloat(0, 10, low_open=True), default=2e-3, show_default=True)
@click.option("--weight-decay", type=FiniteFloat(0, 10), default=0.05, show_default=True)
@click.option("--limit", type=click.IntRange(1, 10**9), default=None,
              help="Train on only this many training images (a quick check).")
@click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for torch (1 is fastest on a busy machine).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (default: $N2N_HUB_HOME/experts/timm/NAME).")
def train_timm_command(model_name: str, dataset: str, model_args: tuple[str, ...], name: str | None, epochs: int,
                       batch_size: int, lr: float, weight_decay: float, limit: int | None, seed: int, device: str,
                       threads: int | None, out: Path | None) -> None:
    """Train a timm model as a classifier on DATASET and save it in timm's Hugging Face layout.

    The folder (config.json + model.safetensors) is the expert timm@NAME; the test split's
    accuracy is printed and recorded in its config.json.
    """
    try:
        import torch

        from n2n_hub.kit import dataset_spec, experts_dir, load_dataset

        from .expert import load_model
        from .model import Preprocess
        from .source import from_folder
        from .train import TrainSettings, accuracy, new_model, record, save_folder, source_of, train_classifier

        if threads:
            torch.set_num_threads(threads)
        check_model(model_name)
        name = name or f"{model_name}.{dataset}"
        check_name(name)
        spec = dataset_spec(dataset, needs=("image", "label"), labelled=True)
        train, test = load_dataset(dataset, "train", ("image", "label")), load_dataset(dataset, "test", ("image", "label"))
        images, labels = train["image"], train["label"].long()
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise InputError(f"dataset {dataset!r} has images of shape {tuple(images.shape)}; expected (N, 1 or 3, H, W)")
        shape = (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))
        classes = tuple(spec.class_names or ())
        model, args = new_model(model_name, shape, len(classes), parse_model_args(model_args))
        source = source_of(model, shape, classes, args, spec.license or "", dataset)
        prep = Preprocess.of(source)
        out = out or experts_dir("timm") / name
        click.echo(f"training timm {model_name} ({args}) on {images.shape[0]} images of {dataset} for {epochs} "
                   f"epochs, batch {batch_size}, seed {seed}", err=True)
        settings = TrainSettings(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
                                 device=device)
        info = train_classifier(model, prep, images, labels, settings, log=lambda m: click.echo(m, err=True))
        info.update({"dataset": dataset, "dataset_version": spec.version, "model": model_name})
        save_folder(model.cpu(), source, out, info)
        stored, _, _ = load_model(from_folder(out, str(out), "folder"))  # score what was written
        acc = accuracy(stored, prep, test["image"], test["label"].long())
        record(out, test_accuracy=round(acc, 4))
    except N2NError as e:
        raise click.ClickException(str(e)) from e
    use = f"timm@{name}" if out == experts_dir("timm") / name else f"timm@{out}"
    click.echo(f"test split: accuracy {acc:.4f} ({test['image'].shape[0]} images)")
    click.echo(f"wrote {out} ({info['seconds']:.0f} s of training); use it as the expert {use}")
