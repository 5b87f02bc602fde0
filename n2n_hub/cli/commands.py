"""The ``n2n-hub`` command line. Heavy modules (torch, the hub) load only inside commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ..base.version import VERSION as __version__
from ..base.options import FiniteFloat
from .errors import DEBUG_ENV, run_main
from ..errors import N2NError
from ..spec.kinds import get_kind, kind_names

MAX_SAMPLES = 1024  # -n: more samples per input than a grid can usefully show
MAX_SEED = 2**63 - 1


class _Group(click.Group):
    """Turns every n2n-hub error into one clean line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except N2NError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,  # type: ignore[override]
             standalone_mode: bool = True, **extra: Any) -> Any:
        return run_main(self, super().main, args, prog_name, complete_var, standalone_mode, extra)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def _listing_hub():  # type: ignore[no-untyped-def]
    """A Hub for listings: importing it loads no torch, and nothing is loaded until asked for."""
    from ..hub import Hub

    return Hub(progress=False, log=lambda m: None)


def _catalog():  # type: ignore[no-untyped-def]
    """What plugins registered, read through the Hub (listing stays fast)."""
    return _listing_hub().catalog


def _hub(device: str = "cpu", quiet: bool = False):
    from ..hub import Hub
    from ..base.validation import check_device

    check_device(device)
    return Hub(device=device, progress=not quiet, log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))


def _debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        import os

        os.environ[DEBUG_ENV] = "1"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="n2n-hub")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_debug,
              help=f"Show the traceback of an unexpected error (same as {DEBUG_ENV}=1).")
def cli() -> None:
    """Pair frozen pretrained experts with conditional INNs and translate between them.

    \b
    Quick start:
      n2n-hub experts                         what is installed
      n2n-hub translate bert vaegan "a zebra" -n 16 -o zebra.png
    The first translation of a pair trains its translator (a few minutes on a CPU) and
    caches it; later calls are instant. See `n2n-hub COMMAND --help`.
    """


# -- experts, plugins, pairs -----------------------------------------------------------
@cli.group(name="experts", invoke_without_command=True)
@click.option("-q", "--query", help="Filter by id or description (substring or wildcard).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def experts(ctx: click.Context, query: str | None, as_json: bool) -> None:
    """List the experts installed plugins provide (`experts list` is the same)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(experts_list, query=query, as_json=as_json)


@experts.command(name="list")
@click.option("-q", "--query", help="Filter by id or description (substring or wildcard).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def experts_list(query: str | None, as_json: bool) -> None:
    """List experts: id, what they encode and decode, and their plugin."""
    catalog = _catalog()
    specs = catalog.search(query)
    if as_json:
        _echo_json([{**s.to_dict(), "conflict": catalog.conflicts.get(f"expert:{s.id}")} for s in specs])
        return
    if not specs:
        click.echo("no experts match" if query else "no experts installed (see `n2n-hub plugins`)")
        return
    for s in specs:
        can = []
        if s.can_encode:
            can.append(f"encodes {s.input_domain} -> {s.representation.describe() if s.representation else '?'}")
        if s.can_decode:
            can.append(f"decodes {s.latent.describe() if s.latent else '?'} -> {s.output_domain}")
        if s.can_sample:
            can.append(f"prior {s.prior}")
        clash = catalog.conflicts.get(f"expert:{s.id}")
        click.echo(f"{s.id:<12} {s.description}" + (f"  [CONFLICT: registered by {', '.join(clash)}; "
                                                   "unusable until one is uninstalled]" if clash else ""))
        click.echo(f"{'':<12} {'; '.join(can)}  [plugin {s.plugin}, default variant {s.default_variant}]")


@experts.command(name="show")
@click.argument("expert_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def experts_show(expert_id: str, as_json: bool) -> None:
    """Everything an expert declares: domains, shapes, taps, variants, licence."""
    spec = _listing_hub().expert_spec(expert_id)
    d = spec.to_dict()
    if as_json:
        _echo_json(d)
        return
    for key, value in d.items():
        if key == "variants":
            click.echo("variants:")
            for v in value:
                mark = " (default)" if v["name"] == spec.default_variant else ""
                click.echo(f"  {v['name']}{mark}: {v['description']} {v['source']}".rstrip())
        elif value not in (None, [], {}, ""):
            click.echo(f"{key}: {value}")


@cli.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_cmd(as_json: bool) -> None:
    """Loaded plugins with their versions and hooks, and any that failed."""
    hub = _listing_hub()
    host, catalog = hub.host, hub.catalog
    rows = []
    for name in host.plugin_names():
        dist, version = host.distributions.get(name, (None, None))
        rows.append({"name": name, "package": dist, "version": version, "hooks": host.hooks_of(name),
                     "problems": [p.reason for p in catalog.problems if p.plugin == name]})
    failed = [p.to_dict() for p in catalog.problems if p.plugin not in host.plugin_names()]
    if as_json:
        _echo_json({"plugins": rows, "failed": failed})
        return
    for r in rows:
        pkg = f"{r['package']} {r['version']}" if r["package"] else "registered in-process"
        click.echo(f"{r['name']:<12} {pkg}: {', '.join(r['hooks'])}")
        for p in r["problems"]:
            click.echo(f"{'':<12} problem: {p}")
    for f in failed:
        click.echo(f"{f['plugin']:<12} FAILED: {f['reason']}")


@cli.command(name="pairs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pairs_cmd(as_json: bool) -> None:
    """Pairs the registry knows, with their recipes and where each entry came from.

    An entry comes from the built-in registry, a plugin (``register_pairs``) or a user file;
    any other pair is resolved from the specs.
    """
    from ..catalog.registry import describe_origin

    hub = _hub(quiet=True)
    entries = hub.pairs()
    if as_json:
        _echo_json([e.to_dict() for e in entries])
        return
    width = max((len(e.name) for e in entries), default=0) + 2
    for e in entries:
        click.echo(f"{e.name:<{width}}{e.source} -> {e.target}  recipe={e.recipe}"
                   + (f" dataset={e.dataset}" if e.dataset else "")
                   + (f" temperature={e.temperature:g}" if e.temperature != 1.0 else "")
                   + (" (published)" if e.published else "") + f"  from: {describe_origin(e.origin)}")
        if e.description:
            click.echo(f"{'':<{width}}{e.description}")
    click.echo(f"registry files: {', '.join(str(f) for f in hub.registry.files)}")


# -- pairing and translating -----------------------------------------------------------
def _train_options(f):  # type: ignore[no-untyped-def]
    opts = [
        click.option("--data", type=click.Path(exists=True, path_type=Path),
                     help="Folder of images or .txt file (one text per line) both experts can read."),
        click.option("--translator", "kind", default=None,
                     help="cinn (default), the deterministic mlp baseline, or another registered kind."),
        click.option("--steps", type=click.IntRange(min=1, max=10**8), help="Training steps (default: the pair's recipe)."),
        click.option("--batch-size", type=click.IntRange(min=1, max=10**7), help="Training batch size."),
        click.option("--lr", type=FiniteFloat(0, 10, low_open=True), help="Peak learning rate."),
        click.option("--train-seed", type=click.IntRange(min=0, max=MAX_SEED), help="Seed of the training run."),
        click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N."),
        click.option("--force", is_flag=True, help="Retrain even if a cached translator exists."),
        click.option("--no-train", is_flag=True, help="Fail instead of training when nothing is cached."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _pair(hub, source: str, target: str, data, kind, steps, batch_size, lr, train_seed, force, no_train,  # type: ignore[no-untyped-def]
          size=None, n_blocks=None, hidden=None, **current):
    options = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": train_seed, "n_blocks": n_blocks,
               "hidden": hidden}
    return hub.pair(source, target, data=data, translator=kind, force=force, train_if_missing=not no_train,
                    size=size, **current, **{k: v for k, v in options.items() if v is not None})


def _size_options(f):  # type: ignore[no-untyped-def]
    """--size/--blocks/--hidden: how large the flow is (default: the registry's, else chosen for the device)."""
    from ..catalog.planning import SIZES

    opts = [
        click.option("--size", type=click.Choice(SIZES), default=None,
                     help="Flow size preset: small (minutes on a CPU), medium, paper (Table S3, for a GPU)."),
        click.option("--blocks", "n_blocks", type=click.IntRange(min=1, max=512), default=None, help="Number of INN blocks."),
        click.option("--hidden", type=click.IntRange(min=1, max=65536), default=None, help="Width of the coupling subnets."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@cli.command(name="pair")
@click.argument("source")
@click.argument("target")
@_train_options
@_size_options
@click.option("--plan", "plan_only", is_flag=True, help="Only explain how the pair would be trained.")
@click.option("--json", "as_json", is_flag=True, help="Print the translator's metadata as JSON.")
def pair_cmd(source: str, target: str, data, kind, steps, batch_size, lr, train_seed, device, force, no_train,  # type: ignore[no-untyped-def]
             size, n_blocks, hidden, plan_only: bool, as_json: bool) -> None:
    """Train (or fetch from the cache) the translator SOURCE -> TARGET.

    Experts are addressed as ID[:TAP][@VARIANT], e.g. `bert`, `vaegan@animals`,
    `bert@/path/to/model`, `segmenter:last`.
    """
    hub = _hub(device=device, quiet=as_json)
    if plan_only:
        plan = hub.plan(source, target, data=data, translator=kind, size=size, n_blocks=n_blocks, hidden=hidden)
        _echo_json(plan.to_dict()) if as_json else click.echo(plan.explain())
        return
    # `pair` names the settings it was given (defaults included) and makes the result the pair's current one
    t = _pair(hub, source, target, data, kind, steps, batch_size, lr, train_seed, force, no_train,
              size, n_blocks, hidden, make_current=True, use_current=False)
    from ..base.distributed import world

    if not world().is_main:  # under torchrun, rank 0 speaks for all
        return
    if as_json:
        _echo_json({"path": str(t.path), **t.metadata})
        return
    m = t.metrics
    nll = m.get("best_val_nll")
    click.echo(f"{t.source_address} -> {t.target_address}: {t.kind} translator at {t.path}")
    flow, sizing = t.metadata.get("recipe", {}).get("flow", {}), t.metadata.get("recipe", {}).get("sizing")
    if sizing and t.kind in kind_names() and get_kind(t.kind).sized:
        click.echo(f"flow: {flow.get('n_blocks', 20)} blocks, hidden {flow.get('hidden', 'default')}, "
                   f"depth {flow.get('depth', 3)} ({sizing})")
    if nll is not None:
        click.echo(f"held-out NLL {nll:.3f} nats/dim (N(0, I) reference {m.get('reference_nll_per_dim', 0):.3f}); "
                   f"{m.get('steps')} steps")
    elif m.get("best_val_mse") is not None:
        click.echo(f"held-out MSE {m['best_val_mse']:.4f} per dim; {m.get('steps')} steps")
    if t.metadata.get("compute"):
        from ..training.compute import ComputeRecord

        click.echo(f"training cost: {ComputeRecord(**t.metadata['compute']).summary()}")


@cli.command(name="translate")
@click.argument("source")
@click.argument("target")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-n", "--num-samples", "n", type=click.IntRange(min=1, max=MAX_SAMPLES), default=8, show_default=True,
              help="Samples per input.")
@click.option("-t", "--temperature", type=FiniteFloat(0, 10), default=None,
              help="Scale of the residual noise v (lower: more typical, less diverse). "
                   "Default: the pair's registry setting (see `n2n-hub pairs`), else 1.")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None, help="Makes the samples reproducible.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="PNG grid (image targets), .txt (text targets) or .safetensors (raw latents).")
@click.option("--json", "as_json", is_flag=True, help="Print per-sample information as JSON.")
@_train_options
def translate_cmd(source: str, target: str, inputs: tuple[str, ...], n: int, temperature: float, seed, output,  # type: ignore[no-untyped-def]
                  as_json: bool, data, kind, steps, batch_size, lr, train_seed, device, force, no_train) -> None:
    """Translate INPUTS (texts, or image files/folders) from SOURCE into TARGET.

    Pairs first if needed (training on first use, then cached). Writes a grid with
    one row per input and one column per sample.

    \b
    Example:
      n2n-hub translate bert vaegan "a zebra" "a photo of an elephant" -n 8 -o animals.png
    """
    from ..errors import InputError

    hub = _hub(device=device, quiet=as_json)
    if output is not None and output.suffix.lower() not in (".png", ".txt", ".safetensors"):
        raise InputError(f"-o {output}: use a .png, .txt or .safetensors file name")
    if output is not None:
        from ..base.validation import check_output_path

        check_output_path(output)
    from ..spec.inputs import read_inputs

    plan = hub.plan(source, target, data=data, translator=kind)
    src_spec = plan.source_spec
    if output is None and not as_json and plan.target_spec.output_domain == "image":
        raise InputError(f"{plan.target} produces images: pass -o FILE.png to save them (or --json for details)")
    if len(inputs) * n > MAX_SAMPLES * 64:
        raise InputError(f"{len(inputs)} inputs x {n} samples is more than n2n-hub makes in one call "
                         f"({MAX_SAMPLES * 64}); split the inputs over several calls")
    if src_spec.input_domain not in ("text", "image"):
        raise InputError(f"cannot read '{src_spec.input_domain}' inputs from the command line")
    batch = read_inputs(src_spec, list(inputs), who=str(plan.source))  # bad inputs fail before any training
    t = _pair(hub, plan, None, None, None, steps, batch_size, lr, train_seed, force, no_train)
    decode = output is None or output.suffix.lower() != ".safetensors"
    result = t.translate(batch, n=n, temperature=temperature, seed=seed, decode=decode)
    labels = list(inputs) if src_spec.input_domain == "text" else [str(i) for i in range(len(result.latents))]
    if output is not None:
        _write_output(output, result, t, n)
        if not as_json:
            click.echo(f"wrote {output} ({len(result.latents)} input(s) x {n} samples)")
    if as_json:
        rows = []
        for i, label in enumerate(labels):
            rows.append({"input": label, "samples": result.info[i * n:(i + 1) * n]})
        _echo_json({"source": str(t.source_address), "target": str(t.target_address), "translator": str(t.path),
                    "temperature": t.temperature if temperature is None else temperature,
                    "output": str(output) if output else None, "results": rows})
    elif output is None:
        if isinstance(result.outputs, list):
            for i, label in enumerate(labels):
                click.echo(f"{label}:")
                for o in result.outputs[i * n:(i + 1) * n]:
                    click.echo(f"  {o}")


def _write_output(output: Path, result, translator, n: int) -> None:  # type: ignore[no-untyped-def]
    from ..errors import InputError

    suffix = output.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        from ..base.atomic import atomic_path

        with atomic_path(output) as tmp:
            save_file({"latents": result.latents.contiguous()}, str(tmp),
                      metadata={"source": str(translator.source_address), "target": str(translator.target_address)})
        return
    if suffix == ".png":
        import torch

        if not isinstance(result.outputs, torch.Tensor):
            raise InputError(f"{translator.target_address} does not produce images; use -o FILE.txt")
        from ..base.images import save_grid

        save_grid(result.outputs, output, ncol=n)
        return
    if not isinstance(result.outputs, list):
        raise InputError(f"{translator.target_address} produces images; use -o FILE.png")
    from ..base.atomic import atomic_write_bytes

    atomic_write_bytes(output, ("\n".join(map(str, result.outputs)) + "\n").encode())


@cli.command(name="transfer", short_help="Keep exemplars' residual, give them a new condition.")
@click.argument("source")
@click.argument("target")
@click.argument("exemplars", nargs=-1, required=True)
@click.option("--to", help="New domain(s) (recipe 'domains'): one name, or one per exemplar separated by commas.")
@click.option("--from", "from_", help="The exemplars' domain(s) (default: inferred), or their source inputs.")
@click.option("--appearance", multiple=True, help="Image(s) whose appearance to take (recipe 'deformation').")
@click.option("--condition", multiple=True,
              help="Source input(s) giving the new condition (exemplar-guided), e.g. an image the segmenter reads.")
@click.option("-n", "--num-samples", "n", type=click.IntRange(min=0, max=MAX_SAMPLES), default=0, show_default=True,
              help="Also draw N samples with a fresh residual under the new condition, for comparison.")
@click.option("-t", "--temperature", type=FiniteFloat(0, 10), default=None, help="Temperature of those samples.")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None, help="Makes those samples reproducible.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="PNG grid: exemplar, condition, output, samples.")
@click.option("--json", "as_json", is_flag=True, help="Print per-exemplar facts as JSON.")
@click.option("--translator", "kind", default=None,
              help="cinn (default), the deterministic mlp baseline (which has no residual), or another registered kind.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--no-train", is_flag=True, help="Fail instead of training when nothing is cached.")
def transfer_cmd(source: str, target: str, exemplars: tuple[str, ...], to, from_, appearance, condition, n,  # type: ignore[no-untyped-def]
                 temperature, seed, output, as_json: bool, kind, device, no_train) -> None:
    """Translate EXEMPLARS (image files) keeping what SOURCE does not determine about them.

    \b
    z* = τ(τ⁻¹(Θ(y) | c_y) | c_new): the new condition depends on the pair's recipe.
      n2n-hub transfer domain vaegan horse.png --to zebra -o zebra.png       (unpaired, Sec. D)
      n2n-hub transfer vaegan vaegan shape.png --appearance look.png -o x.png (shape/appearance)
      n2n-hub transfer segmenter:labels vaegan pose.png --condition layout.png -o x.png
    """
    from ..errors import InputError
    from ..translators.transfer import grid_rows

    if output is not None and output.suffix.lower() != ".png":
        raise InputError(f"-o {output}: transfer writes a PNG grid; name the file '*.png'")
    if output is None and not as_json:
        raise InputError("pass -o FILE.png to save the grid (or --json for the facts)")
    hub = _hub(device=device, quiet=as_json)
    plan = hub.plan(source, target, translator=kind)
    names = [s.strip() for s in to.split(",")] if to else None
    old = [s.strip() for s in from_.split(",")] if from_ else None  # domain names, or the exemplars' source inputs
    result = hub.transfer(plan, exemplars=list(exemplars), to=names, appearance=list(appearance) or None,
                          condition=list(condition) or None, from_=old, n=n, temperature=temperature, seed=seed,
                          train_if_missing=not no_train)
    if output is not None:
        from ..base.images import save_grid

        images, ncol = grid_rows(result)
        save_grid(images, output, ncol=ncol)
        if not as_json:
            click.echo(f"wrote {output} ({len(exemplars)} exemplar(s); columns: exemplar, "
                       f"{'condition, ' if ncol - n > 2 else ''}transfer{f', {n} fresh samples' if n else ''})")
    if as_json:
        _echo_json({"source": source, "target": target, "output": str(output) if output else None,
                    "results": [{"exemplar": e, **info} for e, info in zip(exemplars, result.info)]})


# -- evaluation and model diagnosis ----------------------------------------------------
def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@cli.command(name="evaluate")
@click.argument("source")
@click.argument("target")
@click.option("--translator", "kind", default=None,
              help="cinn (default), the deterministic mlp baseline, or another registered kind.")
@click.option("--samples", type=click.IntRange(min=2, max=10**6), default=None,
              help="Held-out conditions to evaluate (default: the whole test split).")
@click.option("--per-condition", type=click.IntRange(min=2, max=256), default=8, show_default=True,
              help="Samples per condition for the diversity metrics.")
@click.option("--features", help="EXPERT[:TAP] whose encodings of images give the feature-space Fréchet distance "
                                 "(default: inception if installed, else segmenter:middle, else the target).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=0, show_default=True)
@click.option("--steps", type=click.IntRange(min=1, max=10**8), help="Select (or train) the translator trained for this many steps.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=None, help="CPU threads for torch.")
@click.option("--no-train", is_flag=True, help="Fail instead of training when nothing is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--prompts", "prompts", type=click.Path(dir_okay=False, path_type=Path),
              help="Score your own prompts instead: a TSV of class<TAB>kind<TAB>prompt rows; --per-condition "
                   "samples each, named by the target's classifier (bench/prompts/animals.tsv is an example).")
def evaluate_cmd(source: str, target: str, kind, samples, per_condition: int, features, seed: int, steps,  # type: ignore[no-untyped-def]
                 device: str, threads, no_train: bool, as_json: bool, prompts) -> None:
    """Evaluate the translator SOURCE -> TARGET on held-out data.

    Reports the NLL (cINN), Fréchet distances of latents and of image features,
    sample diversity per condition, and consistency (the source re-encodes the samples).
    """
    _threads(threads)
    hub = _hub(device=device, quiet=as_json)
    options = {"steps": steps} if steps is not None else {}
    if prompts is not None:
        scored = hub.evaluate_prompts(source, target, prompts, n=per_condition, seed=seed,
                                      train_if_missing=not no_train, translator=kind, **options)
        _echo_json(scored.to_dict()) if as_json else click.echo(scored.table())
        return
    report = hub.evaluate(source, target, translator=kind, samples=samples, per_condition=per_condition,
                          features=features, seed=seed, train_if_missing=not no_train, **options)
    _echo_json(report.to_dict()) if as_json else click.echo(report.table())


@cli.command(name="diagnose", short_help="What each layer of SOURCE knows (cINN vs MLP).")
@click.argument("source")
@click.argument("target")
@click.option("--layers", default="early,middle,last", show_default=True,
              help="Comma-separated taps of SOURCE to diagnose, shallow to deep.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG figure: inputs, then per layer cINN samples and the MLP output (Fig. S4).")
@click.option("--steps", type=click.IntRange(min=1, max=10**8), help="Training steps of every translator (default: the registry's).")
@click.option("--samples", type=click.IntRange(min=2, max=10**6), default=None,
              help="Held-out conditions to evaluate (default: the whole test split).")
@click.option("--per-condition", type=click.IntRange(min=2, max=256), default=8, show_default=True,
              help="Samples per condition for the diversity metrics.")
@click.option("--features", help="EXPERT[:TAP] for the feature-space Fréchet distance (as in `evaluate`).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=None, help="CPU threads for torch.")
@click.option("--no-train", is_flag=True, help="Fail instead of training when a translator is not cached.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def diagnose_cmd(source: str, target: str, layers: str, output, steps, samples, per_condition: int, features,  # type: ignore[no-untyped-def]
                 seed: int, device: str, threads, no_train: bool, as_json: bool) -> None:
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
    _threads(threads)
    hub = _hub(device=device, quiet=as_json)
    result = hub.diagnose(source, target, layers.split(","), steps=steps, samples=samples,
                          per_condition=per_condition, features=features, seed=seed, figure=output,
                          train_if_missing=not no_train)
    if as_json:
        _echo_json(result.to_dict())
        return
    click.echo(result.table())
    if output is not None:
        click.echo(f"wrote {output}")


# -- serving ---------------------------------------------------------------------------
@cli.command(name="serve")
@click.argument("pairs", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback unless told).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--max-batch", type=click.IntRange(min=1, max=4096), default=16, show_default=True,
              help="Requests merged into one encode and one translator call (1: no batching).")
@click.option("--max-delay-ms", type=FiniteFloat(0, 10_000), default=5.0, show_default=True,
              help="How long a request waits for others to batch with.")
@click.option("--api-key-env", metavar="VAR", help="Require the key held in environment variable VAR.")
@click.option("--allow-train", is_flag=True, help="Train a pair's translator when it is not cached.")
@click.option("--lazy", is_flag=True, help="Load pairs on first request (503 + Retry-After until ready).")
@click.option("--max-n", type=click.IntRange(min=1, max=MAX_SAMPLES), default=64, show_default=True,
              help="Samples per input.")
@click.option("--max-inputs", type=click.IntRange(min=1, max=4096), default=16, show_default=True,
              help="Inputs per request.")
@click.option("--max-queue", type=click.IntRange(min=1, max=1_000_000), default=256, show_default=True,
              help="Requests waiting per pair before 429.")
@click.option("--request-timeout", type=FiniteFloat(0, 86_400, low_open=True), default=60.0, show_default=True,
              help="Seconds a request may take.")
@click.option("--encode-apart", is_flag=True,
              help="Encode each request's inputs in a call of its own: seeded latents keep their bits in any "
                   "batch even for sources that pad a batch (BERT), at some throughput.")
@click.option("--threads", type=click.IntRange(min=1, max=1024), default=None, help="CPU threads for torch.")
def serve_cmd(pairs: tuple[str, ...], host: str, port: int, device: str, max_batch: int, max_delay_ms: float,  # type: ignore[no-untyped-def]
              api_key_env, allow_train: bool, lazy: bool, max_n: int, max_inputs: int, max_queue: int,
              request_timeout: float, encode_apart: bool, threads) -> None:
    """Serve translations over HTTP: JSON API, web page at /, metrics, dynamic batching.

    PAIRS are registry names (`n2n-hub pairs`) or SRC,TGT; default: the registry pairs
    whose translators are cached, plus the offline default bert,vaegan@animals.

    \b
    Example:
      n2n-hub serve bert-vaegan-animals --port 8000
      curl -s localhost:8000/v1/translate -d '{"pair": "bert-vaegan-animals", "texts": ["a zebra"], "n": 4, "format": "png"}' -o zebra.png
    """
    from dataclasses import replace

    from ..serve import Limits, ServeSettings
    from ..serve.server import api_key_from_env, run

    _threads(threads)
    key = api_key_from_env(api_key_env)
    limits = replace(Limits(), max_n=max_n, max_inputs=max_inputs, max_queue=max_queue,
                     request_timeout_s=request_timeout)
    settings = ServeSettings(max_batch=max_batch, max_delay_ms=max_delay_ms, allow_train=allow_train, lazy=lazy,
                             api_key=key, limits=limits, merge_encode=not encode_apart)
    run(_hub(device=device, quiet=True), settings, list(pairs), host, port, log=lambda m: click.echo(m, err=True))


# -- cache -----------------------------------------------------------------------------
@cli.group(name="cache")
def cache() -> None:
    """Inspect and clean the translator cache ($N2N_HUB_HOME)."""


@cache.command(name="path")
def cache_path() -> None:
    """Print the cache root."""
    from ..base.paths import hub_home

    click.echo(str(hub_home()))


@cache.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cache_list(as_json: bool) -> None:
    """Cached translators: key, pair, size, held-out NLL."""
    hub = _hub(quiet=True)
    entries = hub.cache.entries()
    if as_json:
        _echo_json([e.to_dict() for e in entries])
        return
    leftovers = hub.cache.leftovers(hub.features.root)
    if leftovers:
        click.echo(f"{len(leftovers)} leftover(s) of interrupted runs (`n2n-hub cache verify` lists them, "
                   "`n2n-hub cache gc` removes them)")
    if not entries:
        click.echo("no cached translators")
    for e in entries:
        d = e.to_dict()
        metrics = d.get("metrics") if isinstance(d.get("metrics"), dict) else {}
        nll = metrics.get("best_val_nll")
        size = f"{(d['size'] or 0) / 1e6:.1f} MB"
        click.echo(f"{e.key}  {e.pair}  {d.get('kind')}  {size}"
                   + (f"  NLL {nll:.3f}" if isinstance(nll, (int, float)) else "")
                   + (f"  PROBLEM: {d['problem']}" if d.get("problem") else ""))


@cache.command(name="show")
@click.argument("key")
def cache_show(key: str) -> None:
    """Print the model card of the cached translator KEY (a key prefix, see `cache list`)."""
    click.echo(_hub(quiet=True).card(key), nl=False)


@cache.command(name="verify")
def cache_verify() -> None:
    """Check every cached translator against the sha256 recorded when it was written."""
    hub = _hub(quiet=True)
    results = hub.cache.verify()
    bad = 0
    for entry, problem in results:
        click.echo(f"{'OK ' if problem is None else 'BAD'} {entry.key} {entry.pair}" + (f": {problem}" if problem else ""))
        bad += problem is not None
    click.echo(f"{len(results) - bad} ok, {bad} bad")
    leftovers = hub.cache.leftovers(hub.features.root)
    for path, why in leftovers:
        click.echo(f"LEFTOVER {path}: {why}")
    if leftovers:
        click.echo(f"{len(leftovers)} leftover(s) of interrupted runs; `n2n-hub cache gc` removes them")
    if bad:
        sys.exit(1)


@cache.command(name="gc")
def cache_gc() -> None:
    """Remove what interrupted runs left (temp files, orphan weights, partial feature folders)."""
    hub = _hub(quiet=True)
    removed = hub.cache.gc(hub.features.root)
    for path, why in removed:
        click.echo(f"removed {path}: {why}")
    size = "nothing to remove" if not removed else f"removed {len(removed)} leftover(s)"
    click.echo(size)


@cache.command(name="rm")
@click.argument("selector", required=False)
@click.option("--all", "remove_all", is_flag=True, help="Remove every cached translator.")
def cache_rm(selector: str | None, remove_all: bool) -> None:
    """Remove cached translators by key prefix or pair folder (or --all)."""
    from ..errors import InputError

    if not selector and not remove_all:
        raise InputError("say what to remove: a key prefix or pair folder (see `n2n-hub cache list`), or --all")
    hub = _hub(quiet=True)
    if remove_all:
        for path, why in hub.cache.gc(hub.features.root):
            click.echo(f"removed {path}: {why}")
    removed = hub.cache.remove(None if remove_all else selector)
    if not removed and selector:
        raise InputError(f"no cached translator matches {selector!r} (see `n2n-hub cache list`)")
    for e in removed:
        click.echo(f"removed {e.key} {e.pair}")


# -- plugins management ----------------------------------------------------------------
@cli.command(name="publish")
@click.argument("key")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Folder for the translator file and its registry snippet.")
@click.option("--url", help="Where the file will be served: its URL, or its folder's URL ending in '/'.")
@click.option("--hf-repo", help="Hugging Face repository that will hold the file (instead of --url).")
@click.option("--hf-file", help="File name in --hf-repo (default: the published file's name).")
@click.option("--name", help="Registry entry name (default: the entry it was trained from, else the pair).")
@click.option("--upload", is_flag=True, help="Upload the file to --hf-repo with huggingface_hub (needs a token).")
@click.option("--endpoint", help="Hugging Face endpoint for --upload (default: $HF_ENDPOINT or huggingface.co).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def publish_cmd(key: str, out: Path, url: str | None, hf_repo: str | None, hf_file: str | None, name: str | None,  # type: ignore[no-untyped-def]
                upload: bool, endpoint: str | None, as_json: bool) -> None:
    """Write the cached translator KEY and the registry snippet that lets others fetch it.

    The snippet holds `published` (url, or hf_repo + hf_file, and the sha256); others add
    it to a registry file and `n2n-hub pair` fetches and verifies the file instead of
    training. Without --url or --hf-repo it points at the file beside it.
    """
    result = _hub(quiet=True).publish(key, out, url=url, hf_repo=hf_repo, hf_file=hf_file, name=name,
                     upload=upload, endpoint=endpoint)
    if as_json:
        _echo_json(result.to_dict())
        return
    click.echo(f"wrote {result.file} (sha256 {result.sha256})")
    click.echo(f"wrote {result.snippet}: add it to a registry file so `n2n-hub pair` fetches this translator")
    if upload:
        click.echo(f"uploaded to {hf_repo}")


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    click.echo(" ".join(cmd), err=True)
    code = subprocess.call(cmd)
    if code:
        raise click.ClickException(f"pip exited with status {code}")


@cli.command(name="install")
@click.argument("packages", nargs=-1, required=True)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade if already installed.")
@click.option("-e", "--editable", is_flag=True, help="Install a local plugin folder in editable mode.")
def install_cmd(packages: tuple[str, ...], upgrade: bool, editable: bool) -> None:
    """pip-install plugin packages into the environment n2n-hub runs in."""
    args = ["install", *(["-U"] if upgrade else [])]
    for p in packages:
        args += ["-e", p] if editable else [p]
    _pip(*args)


@cli.command(name="uninstall")
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall_cmd(packages: tuple[str, ...], yes: bool) -> None:
    """pip-uninstall plugin packages."""
    if "n2n-hub" in packages or "n2n_hub" in packages:
        raise click.ClickException("refusing to uninstall n2n-hub itself with this command; use pip")
    _pip("uninstall", *(["-y"] if yes else []), *packages)


@cli.group(name="train-expert")
def train_expert() -> None:
    """Train an expert's own weights (plugins add one subcommand per expert)."""


def _register_plugin_commands() -> None:
    """Let plugins add commands; a plugin whose hook fails is reported, not fatal."""
    from ..catalog.host import PluginProblem, get_host

    host = get_host()
    for impl in host.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a broken plugin must not break the CLI
            host.load_problems.append(PluginProblem(impl.plugin_name, f"register_commands raised {type(e).__name__}: {e}"))


def main() -> None:
    _register_plugin_commands()
    cli()
