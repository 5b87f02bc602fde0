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


@click.command(name="diagnose", short_help="What each layer of SOURCE knows (cINN vs MLP).")
@click.argument("source")
@click.argument("target")
@click.option("--layers", default="early,middle,last", show_default=True,
              help="Comma-separated taps of SOURCE to diagnose, shallow to deep.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG figure: inputs, then per layer cINN samples and the MLP output (Fig. S4).")
@steps_option("Training steps of every translator (default: the registry's).")
@held_out_options("EXPERT[:TAP] for the feature-space Fréchet distance (as in `evaluate`).")
@device_option()
@threads_option()
@no_train_option("Fail instead of training when a translator is not cached.")
@json_option("Print the metrics as JSON.")
def diagnose_cmd(source: str, target: str, layers: str, output: Path | None, steps: int | None, held_out: HeldOut,
                 device: str, threads: int | None, no_train: bool, as_json: bool) -> None:
    """Model diagnosis (Sec. E): what does each layer of SOURCE know about its input?

    Trains (or reuses) one cINN and one MLP per layer, SOURCE:LAYER -> TARGET, and
    compares them on held-out data.

    \b
    Example:
      n2n-hub diagnose segmenter vaegan --layers early,middle,last -o diagnosis.png
    """
    if output is not None:
        from ..base.validation import check_output_path

        check_output_path(output)
    set_threads(threads)
    hub = working_hub(device=device, quiet=as_json)
    result = hub.diagnose(source, target, layers.split(","), steps=steps, samples=held_out.samples,
                          per_condition=held_out.per_condition, features=held_out.features, seed=held_out.seed,
                          figure=output, train_if_missing=not no_train)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(result.table())
    if output is not None:
        click.echo(f"wrote {output}")


COMMANDS = [evaluate_cmd, diagnose_cmd]
