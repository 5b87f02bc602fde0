"""Pairing and translating: ``pair``, ``translate``, ``transfer``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..base.options import FiniteFloat
from ..errors import IncompatiblePairError, InputError
from ..hub import MIN_PAIRS, too_few_draws
from .hubs import echo_json, working_hub
from .options import (MAX_ROUTE_SAMPLES, MAX_ROUTE_SEED, MAX_SAMPLES, FlowSize, Training, device_option, json_option,
                      no_train_option, seed_option, size_options, training_options, translator_option)


@click.command(name="pair")
@click.argument("source")
@click.argument("target")
@training_options
@size_options
@click.option("--plan", "plan_only", is_flag=True, help="Only explain how the pair would be trained.")
@click.option("--via", multiple=True, help="Go through this expert (repeat for several): a route of hops.")
@click.option("--from-route", is_flag=True,
              help="Distil a route (the cheapest through other experts, or the one --via names) into a direct "
                   "translator, trained on samples drawn along it.")
@click.option("--samples", type=click.IntRange(min=1, max=MAX_ROUTE_SAMPLES), default=None,
              help="With --from-route: training pairs to draw along the route (default 10000; a fifth as many "
                   "more are drawn and held out).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_ROUTE_SEED), default=None,
              help="With --from-route: seed of the draws (default 0).")
@click.option("-t", "--temperature", type=FiniteFloat(0, 10), default=None,
              help="With --from-route: temperature of each translator hop's residual (default 1).")
@json_option("Print the translator's metadata as JSON.")
def pair_cmd(source: str, target: str, training: Training, flow: FlowSize, plan_only: bool, via: tuple[str, ...],
             from_route: bool, samples: int | None, seed: int | None, temperature: float | None,
             as_json: bool) -> None:
    """Train (or fetch from the cache) the translator SOURCE -> TARGET.

    Experts are addressed as ID[:TAP][@VARIANT], e.g. `bert`, `vaegan@animals`,
    `bert@/path/to/model`, `segmenter:last`. Where no recipe joins the two, the cheapest route
    through other experts is planned (`--plan` shows its hops and what each would train).
    `--from-route` trains a direct translator on samples drawn along that route instead.
    """
    sampling = {"samples": samples, "seed": seed, "temperature": temperature}
    if not from_route and any(v is not None for v in sampling.values()):
        raise InputError("--samples, --seed and --temperature say how pairs are drawn along a route; add --from-route")
    if from_route and samples is not None and samples < MIN_PAIRS:  # `--plan` says so too, before anything loads
        raise InputError(too_few_draws(samples))
    if from_route and training.data is not None:
        raise InputError("--from-route draws its training pairs along the route, and --data gives pairs of its own; "
                         "drop one of them")
    hub = working_hub(device=training.device, quiet=as_json)
    if from_route:
        plan, route = hub.plan_from_route(hub.route(source, target, via=list(via), direct=False),
                                          translator=training.translator, size=flow.size, n_blocks=flow.n_blocks,
                                          hidden=flow.hidden, **sampling), None
    elif via:
        plan, route = None, hub.route(source, target, via=list(via))
    else:
        plan, route = _plan_or_route(hub, source, target, data=training.data, translator=training.translator,
                                     size=flow.size, n_blocks=flow.n_blocks, hidden=flow.hidden)
    if route is not None:  # no recipe joins them: the route through other experts
        if plan_only:
            echo_json(route.to_dict()) if as_json else click.echo(route.explain())
            return
        hops = hub.route_hops(route, make_current=True, **training.pair_options())
        trained = [t for link, t in zip(route.hops, hops) if link.kind == "translator"]
        if as_json:
            echo_json({**route.to_dict(), "translators": [str(t.path) for t in trained]})
        else:
            click.echo(route.explain())
            for t in trained:
                click.echo(f"{t.source_address} -> {t.target_address}: {t.kind} translator at {t.path}")
        return
    if plan_only:
        cost = hub.estimate(plan, **training.settings(), **flow.flow_options())
        if as_json:
            echo_json({**plan.to_dict(), "estimate": cost.to_dict()})
        else:
            click.echo(plan.explain())
            click.echo(f"training: {cost.describe()}")
        return
    # `pair` names the settings it was given (defaults included) and makes the result the pair's current one
    t = hub.pair(plan, make_current=True, use_current=False, **training.pair_options(), **flow.flow_options())
    if not hub.is_main_process():  # under torchrun, rank 0 speaks for all
        return
    if as_json:
        echo_json({"path": str(t.path), **t.metadata})
        return
    m = t.metrics
    nll = m.get("best_val_nll")
    click.echo(f"{t.source_address} -> {t.target_address}: {t.kind} translator at {t.path}")
    recipe = t.metadata.get("recipe", {})
    drawn = recipe.get("from_route")
    if drawn:
        click.echo(f"distilled from route {' -> '.join(drawn['nodes'])}: {t.metadata.get('pairs')} pairs drawn with "
                   f"seed {recipe.get('seed')} at temperature {drawn['temperature']:g}")
    flow_used, sizing, kind = recipe.get("flow", {}), recipe.get("sizing"), hub.kinds().get(t.kind)
    if sizing and kind is not None and kind.sized:
        click.echo(f"flow: {flow_used.get('n_blocks', 20)} blocks, hidden {flow_used.get('hidden', 'default')}, "
                   f"depth {flow_used.get('depth', 3)} ({sizing})")
    ran, kept = m.get("steps"), m.get("best_step")
    steps = f"the weights of step {kept} of {ran}" if isinstance(kept, int) and kept != ran else f"{ran} steps"
    if nll is not None:
        ref = m.get("reference_nll_per_dim", 0)
        click.echo(f"held-out NLL {nll:.3f} nats/dim; lower is better, and targets the source told nothing about "
                   f"would score {ref:.3f} (the N(0, I) reference), so the gap below it is what the source "
                   f"explains; {steps}")
    elif m.get("best_val_mse") is not None:
        click.echo(f"held-out MSE {m['best_val_mse']:.4f} per dim; {steps}")
    cost = hub.training_cost(t)
    if cost is not None:
        click.echo(f"training cost: {cost.summary()}")


@click.command(name="translate")
@click.argument("source")
@click.argument("target")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-n", "--num-samples", "n", type=click.IntRange(min=1, max=MAX_SAMPLES), default=8, show_default=True,
              help="Samples per input.")
@click.option("-t", "--temperature", type=FiniteFloat(0, 10), default=None,
              help="Scale of the residual noise v (lower: more typical, less diverse). "
                   "Default: the pair's registry setting (see `n2n-hub pairs`), else 1.")
@seed_option(default=None, help="Makes the samples reproducible.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="PNG grid (image targets), .txt (text targets) or .safetensors (raw latents).")
@click.option("--captions", type=click.Path(path_type=Path, dir_okay=False),
              help="UTF-8 file, one caption per line: text targets without a decoder show each sample's "
                   "nearest captions from it (default: the pair's class captions).")
@click.option("--via", multiple=True, help="Go through this expert (repeat for several): a route of hops.")
@json_option("Print per-sample information as JSON.")
@training_options
def translate_cmd(source: str, target: str, inputs: tuple[str, ...], n: int, temperature: float | None,
                  seed: int | None, output: Path | None, captions: Path | None, via: tuple[str, ...],
                  as_json: bool, training: Training) -> None:
    """Translate INPUTS (texts, or image files/folders) from SOURCE into TARGET.

    Pairs first if needed (training on first use, then cached). Writes a grid with
    one row per input and one column per sample.

    \b
    Example:
      n2n-hub translate bert vaegan "a zebra" "a photo of an elephant" -n 8 -o animals.png
      n2n-hub translate vaegan bert horse.png -n 8        (image -> text: nearest captions)
      n2n-hub translate bert segmenter:last --via vaegan horse.png   (a route of two hops)
    """
    hub = working_hub(device=training.device, quiet=as_json)
    if output is not None and output.suffix.lower() not in (".png", ".txt", ".safetensors"):
        raise InputError(f"-o {output}: use a .png, .txt or .safetensors file name")
    if output is not None:
        from ..base.validation import check_output_path

        check_output_path(output)
    from ..spec.inputs import input_labels, read_inputs

    if via:
        plan, route = None, hub.route(source, target, via=list(via))
    else:
        plan, route = _plan_or_route(hub, source, target, data=training.data, translator=training.translator)
    if route is not None:
        _translate_route(hub, route, inputs, n, temperature, seed, output, captions, as_json, training)
        return
    src_spec = plan.source_spec
    _check_output_kind(output, plan.target_spec, str(plan.target), captions)
    if output is None and not as_json and plan.target_spec.output_domain == "image":
        raise InputError(f"{plan.target} produces images: pass -o FILE.png to save them (or --json for details)")
    if len(inputs) * n > MAX_SAMPLES * 64:
        raise InputError(f"{len(inputs)} inputs x {n} samples is more than n2n-hub makes in one call "
                         f"({MAX_SAMPLES * 64}); split the inputs over several calls")
    if src_spec.input_domain not in ("text", "image"):
        raise InputError(f"cannot read '{src_spec.input_domain}' inputs from the command line")
    batch = read_inputs(src_spec, list(inputs), who=str(plan.source),  # bad inputs fail before any training
                        notify=lambda note: click.echo(f"note: {note}", err=True))
    bank_texts = _read_bank(captions) if captions is not None else None  # a bad bank fails before training
    t = hub.pair(plan, None, data=None, translator=None, size=None, **training.pair_options())
    if bank_texts is not None:
        t.captions = hub.caption_bank(t, bank_texts)
    decode = output is None or output.suffix.lower() != ".safetensors"
    result = t.translate(batch, n=n, temperature=temperature, seed=seed, decode=decode)
    _report(result, inputs, input_labels(src_spec, list(inputs)), src_spec.input_domain, n, output, as_json,
            str(t.source_address), str(t.target_address), str(t.path),
            t.temperature if temperature is None else temperature, t,
            shown_inputs=batch if src_spec.input_domain == "image" else None)


def _read_bank(captions: Path) -> list[str]:
    from ..hub import Hub

    return Hub.read_captions(captions)


def _check_output_kind(output: Path | None, target_spec: Any, target: str, captions: Path | None) -> None:
    """Refuse, before anything trains, an output the target cannot give and a bank it cannot read."""
    if captions is not None and target_spec.input_domain != "text":
        raise InputError(f"--captions shows text latents, but {target} encodes '{target_spec.input_domain}'; "
                         "drop --captions")
    if output is not None and not target_spec.can_decode and output.suffix.lower() == ".png":
        raise InputError(f"{target} has no decoder, so there is no image to write; use -o FILE.safetensors "
                         "(latents) or --json")


def _plan_or_route(hub: Any, source: str, target: str, **planning: Any) -> tuple[Any, Any]:
    """``(plan, None)`` when a recipe joins the pair (the usual case), else ``(None, route)`` through
    other experts; when there is none either, the pair's own error with the route's missing link."""
    try:
        return hub.plan(source, target, **planning), None
    except IncompatiblePairError as direct:
        if any(v is not None for v in planning.values()):  # asked-for data or settings are for a direct pair
            raise
        try:
            return None, hub.route(source, target)
        except IncompatiblePairError as no_route:
            raise IncompatiblePairError(f"{str(direct).rstrip('.')}; {no_route}") from None


def _translate_route(hub: Any, route: Any, inputs: tuple[str, ...], n: int, temperature: float | None,
                     seed: int | None, output: Path | None, captions: Path | None, as_json: bool,
                     training: Training) -> None:
    """Run a route's hops, each a translator or an expert's decode -> encode."""
    _check_output_kind(output, route.target_spec, str(route.target), captions)
    if not as_json:
        click.echo(route.explain(), err=True)
    result = hub.translate(route, inputs=list(inputs), n=n, temperature=temperature, seed=seed,
                           captions=_read_bank(captions) if captions is not None else None,
                           **training.pair_options())
    from ..spec.inputs import input_labels

    _report(result, inputs, input_labels(route.source_spec, list(inputs)), route.source_spec.input_domain, n, output,
            as_json, str(route.source), str(route.target), None, temperature, None, route=route)


def _report(result: Any, inputs: tuple[str, ...], labels: list[str], domain: str | None, n: int,
            output: Path | None, as_json: bool, source: str, target: str, path: str | None,
            temperature: float | None, t: Any, route: Any = None, shown_inputs: Any = None) -> None:
    """The translation's file, JSON or lines; ``labels`` name the inputs (texts, or image files)."""
    if output is not None:
        _write_output(output, result, source, target, n, inputs=shown_inputs)
        if not as_json:
            click.echo(f"wrote {output} ({len(result.latents)} input(s) x {n} samples)")
    if as_json:
        rows = []
        for i, label in enumerate(labels):
            rows.append({"input": label, "samples": result.info[i * n:(i + 1) * n]})
        echo_json({"source": source, "target": target, "translator": path, "temperature": temperature,
                   **({"route": route.to_dict()} if route is not None else {}),
                   "output": str(output) if output else None, "results": rows})
    elif output is None:
        if isinstance(result.outputs, list):
            for i, label in enumerate(labels):
                click.echo(f"{label}:")
                for o in result.outputs[i * n:(i + 1) * n]:
                    click.echo(f"  {o}")
        elif result.info and any("nearest" in f for f in result.info):
            for i, label in enumerate(labels):
                click.echo(f"{label}:")
                for k, fact in enumerate(result.info[i * n:(i + 1) * n]):
                    near = "; ".join(f"{h['text']!r} {h['similarity']:.2f}" for h in fact.get("nearest", []))
                    click.echo(f"  sample {k}: {near}")


def _write_output(output: Path, result: Any, source: str, target: str, n: int, inputs: Any = None) -> None:
    """``-o``: raw latents (.safetensors), a PNG grid (image inputs in the first column), or one text per
    line (.txt: a text target's outputs, or the nearest caption of each sample of one without a decoder)."""
    suffix = output.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        from ..base.atomic import atomic_path

        with atomic_path(output) as tmp:
            save_file({"latents": result.latents.contiguous()}, str(tmp),
                      metadata={"source": source, "target": target})
        return
    if suffix == ".png":
        import torch

        if not isinstance(result.outputs, torch.Tensor):
            raise InputError(f"{target} does not produce images; use -o FILE.txt or -o FILE.safetensors")
        from ..base.images import save_grid, with_input_column

        if isinstance(inputs, torch.Tensor):
            save_grid(with_input_column(inputs, result.outputs, n), output, ncol=n + 1)
        else:
            save_grid(result.outputs, output, ncol=n)
        return
    from ..base.atomic import atomic_write_bytes

    if result.outputs is None and result.info and all(f.get("nearest") for f in result.info):
        lines = [f["nearest"][0]["text"] for f in result.info]
    elif not isinstance(result.outputs, list):
        raise InputError(f"{target} produces images; use -o FILE.png")
    else:
        lines = list(map(str, result.outputs))
    atomic_write_bytes(output, ("\n".join(lines) + "\n").encode())


def _split(*values: str | None) -> list[str] | None:
    """Repeated and comma-separated option values as one list (None when none was given)."""
    items = [s.strip() for v in values if v for s in v.split(",") if s.strip()]
    return items or None


@click.command(name="transfer", short_help="Keep exemplars' residual, give them a new condition.")
@click.argument("source")
@click.argument("target")
@click.argument("exemplars", nargs=-1, required=True)
@click.option("--to", help="New domain(s) (recipe 'domains'): one name for all exemplars, or one per exemplar "
                            "separated by commas.")
@click.option("--from", "from_", help="The exemplars' domain(s) (default: inferred), or their source inputs; "
                                      "one, or one per exemplar separated by commas.")
@click.option("--appearance", multiple=True,
              help="Image(s) whose appearance to take (recipe 'deformation'): one for all exemplars, or one per "
                   "exemplar, repeated (--appearance a.png --appearance b.png) or separated by commas.")
@click.option("--condition", multiple=True,
              help="Source input(s) giving the new condition (exemplar-guided), e.g. an image the segmenter reads: "
                   "one for all exemplars, or one per exemplar, repeated or separated by commas.")
@click.option("-n", "--num-samples", "n", type=click.IntRange(min=0, max=MAX_SAMPLES), default=0, show_default=True,
              help="Also draw N samples with a fresh residual under the new condition, for comparison.")
@click.option("-t", "--temperature", type=FiniteFloat(0, 10), default=None, help="Temperature of those samples.")
@seed_option(default=None, help="Makes those samples reproducible.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="PNG grid: exemplar, condition, output, samples.")
@json_option("Print per-exemplar facts as JSON.")
@translator_option("cinn (default), the deterministic mlp baseline (which has no residual), or another registered kind.")
@device_option()
@no_train_option()
def transfer_cmd(source: str, target: str, exemplars: tuple[str, ...], to: str | None, from_: str | None,
                 appearance: tuple[str, ...], condition: tuple[str, ...], n: int, temperature: float | None,
                 seed: int | None, output: Path | None, as_json: bool, translator: str | None, device: str,
                 no_train: bool) -> None:
    """Translate EXEMPLARS (image files) keeping what SOURCE does not determine about them.

    \b
    z* = τ(τ⁻¹(Θ(y) | c_y) | c_new): the new condition depends on the pair's recipe.
      n2n-hub transfer domain vaegan horse.png --to zebra -o zebra.png       (unpaired, Sec. D)
      n2n-hub transfer vaegan vaegan shape.png --appearance look.png -o x.png (shape/appearance)
      n2n-hub transfer segmenter:labels vaegan pose.png --condition layout.png -o x.png
    """
    if output is not None and output.suffix.lower() != ".png":
        raise InputError(f"-o {output}: transfer writes a PNG grid; name the file '*.png'")
    if output is None and not as_json:
        raise InputError("pass -o FILE.png to save the grid (or --json for the facts)")
    if output is not None:  # an unwritable place or a folder is found now, not after the work
        from ..base.validation import check_output_path

        check_output_path(output)
    hub = working_hub(device=device, quiet=as_json)
    plan = hub.plan(source, target, translator=translator)
    names = _split(to)
    old = _split(from_)  # domain names, or the exemplars' source inputs
    result = hub.transfer(plan, exemplars=list(exemplars), to=names, appearance=_split(*appearance),
                          condition=_split(*condition), from_=old, n=n, temperature=temperature, seed=seed,
                          train_if_missing=not no_train)
    if output is not None:
        from ..base.images import save_grid

        images, ncol = result.grid_rows()
        save_grid(images, output, ncol=ncol)
        if not as_json:
            click.echo(f"wrote {output} ({len(exemplars)} exemplar(s); columns: exemplar, "
                       f"{'condition, ' if ncol - n > 2 else ''}transfer{f', {n} fresh samples' if n else ''})")
    if as_json:
        echo_json({"source": source, "target": target, "output": str(output) if output else None,
                   "results": [{"exemplar": e, **info} for e, info in zip(exemplars, result.info)]})


COMMANDS = [pair_cmd, translate_cmd, transfer_cmd]
