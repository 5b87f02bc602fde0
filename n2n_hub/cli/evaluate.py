"""Measuring translators: ``evaluate`` (held-out metrics, prompt scoring) and ``diagnose`` (Sec. E)."""

from __future__ import annotations

from pathlib import Path

import click

from .hubs import echo_json, set_threads, working_hub
from .options import (HeldOut, device_option, held_out_options, json_option, no_train_option, steps_option,
                      threads_option, translator_option)


@click.command(name="evaluate")
@click.argument("source")
@click.argument("target")
@translator_option()
@held_out_options("EXPERT[:TAP] whose encodings of images give the feature-space Fréchet distance "
                  "(default: inception if installed, else segmenter:middle, else the target).")
@steps_option("Select (or train) the translator trained for this many steps.")
@device_option()
@threads_option()
@no_train_option()
@json_option("Print the metrics as JSON.")
@click.option("--prompts", "prompts", type=click.Path(dir_okay=False, path_type=Path),
              help="Score your own prompts instead: a TSV of class<TAB>kind<TAB>prompt rows; --per-condition "
                   "samples each, named by the target's classifier (bench/prompts/animals.tsv is an example).")
def evaluate_cmd(source: str, target: str, translator: str | None, held_out: HeldOut, steps: int | None,
                 device: str, threads: int | None, no_train: bool, as_json: bool, prompts: Path | None) -> None:
    """Evaluate the translator SOURCE -> TARGET on held-out data.

    Reports the NLL (cINN), Fréchet distances of latents and of image features,
    sample diversity per condition, and consistency (the source re-encodes the samples).
    """
    set_threads(threads)
    hub = working_hub(device=device, quiet=as_json)
    options = {"steps": steps} if steps is not None else {}
    if prompts is not None:
        scored = hub.evaluate_prompts(source, target, prompts, n=held_out.per_condition, seed=held_out.seed,
                                      train_if_missing=not no_train, translator=translator, **options)
        echo_json(scored.to_dict()) if as_json else click.echo(scored.table())
        return
    report = hub.evaluate(source, target, translator=translator, samples=held_out.samples,
                          per_condition=held_out.per_condition, features=held_out.features, seed=held_out.seed,
                          train_if_missing=not no_train, **options)
    echo_json(report.to_dict()) if as_json else click.echo(report.table())


@click.command(name="diagnose", short_help="What each layer of one or more models knows (cINN vs baselines).")
@click.argument("experts", nargs=-1, required=True, metavar="SOURCE... TARGET")
@click.option("--layers", default=None,
              help="Comma-separated taps, shallow to deep (with several SOURCEs each takes those it has, so "
                   "layer3,blocks.3 serves a ResNet and a ViT), or 'all' for each SOURCE's every tap.  "
                   "[default: early,middle,last where a SOURCE has them, else all]")
@click.option("--translators", "kinds", default="cinn,mlp,linear", show_default=True,
              help="Translator kinds per tap: cinn, then the deterministic baselines to compare (mlp, linear).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG figure: inputs, then per tap cINN samples and each baseline's output (Fig. S4).")
@click.option("--cinn-rows", type=click.IntRange(min=1, max=16), default=3, show_default=True,
              help="cINN samples per tap in the figure.")
@click.option("--inputs", type=click.IntRange(min=1, max=64), default=8, show_default=True,
              help="Held-out inputs (columns) in the figure.")
@steps_option("Training steps of every trained translator (default: the registry's).")
@held_out_options("EXPERT[:TAP] for the feature-space Fréchet distance (as in `evaluate`).")
@device_option()
@threads_option()
@no_train_option("Fail instead of training when a translator is not cached.")
@json_option("Print the table as JSON.")
def diagnose_cmd(experts: tuple[str, ...], layers: str | None, kinds: str, output: Path | None, cinn_rows: int,
                 inputs: int, steps: int | None, held_out: HeldOut, device: str, threads: int | None,
                 no_train: bool, as_json: bool) -> None:
    """Model diagnosis (Sec. E): what does each layer of each SOURCE know about its input?

    Per model and tap, trains (or reuses) a cINN SOURCE:TAP -> TARGET and two
    deterministic baselines, an MLP and a closed-form linear map, and prints one
    row per model and tap: the linear CKA of the tap with TARGET's latent, the cINN's
    held-out NLL, Fréchet distances, sample diversity and consistency, and the
    baselines' errors. Every cell is cached, so adding a model later evaluates
    only its own taps.

    \b
    Examples:
      n2n-hub diagnose segmenter vaegan --layers early,middle,last -o diagnosis.png
      n2n-hub diagnose timm@resnet10t.animals timm@vit_tiny_patch16_224.animals vaegan --layers all
    """
    if len(experts) < 2:
        raise click.UsageError("name at least one SOURCE and then the TARGET, e.g. `n2n-hub diagnose segmenter vaegan`")
    if output is not None:
        from ..base.validation import check_output_path

        check_output_path(output)
    set_threads(threads)
    hub = working_hub(device=device)  # progress per cell on stderr, also under --json: this is long work
    result = hub.diagnose(list(experts[:-1]), experts[-1], layers, steps=steps, samples=held_out.samples,
                          per_condition=held_out.per_condition, features=held_out.features, seed=held_out.seed,
                          figure=output, inputs=inputs, cinn_rows=cinn_rows,
                          kinds=[k.strip() for k in kinds.split(",") if k.strip()], train_if_missing=not no_train)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(result.table())
    if output is not None:
        click.echo(f"wrote {output}")


COMMANDS = [evaluate_cmd, diagnose_cmd]
