"""What is installed: ``experts``, ``plugins``, ``pairs``. None of them imports torch."""

from __future__ import annotations

import click

from .hubs import echo_json, listing_hub
from .options import json_option


@click.group(name="experts", invoke_without_command=True)
@click.option("-q", "--query", help="Filter by id or description (substring or wildcard).")
@json_option()
@click.pass_context
def experts(ctx: click.Context, query: str | None, as_json: bool) -> None:
    """List the experts installed plugins provide (`experts list` is the same)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(experts_list, query=query, as_json=as_json)


@experts.command(name="list")
@click.option("-q", "--query", help="Filter by id or description (substring or wildcard).")
@json_option()
def experts_list(query: str | None, as_json: bool) -> None:
    """List experts: id, what they encode and decode, and their plugin."""
    hub = listing_hub()
    specs, conflicts = hub.experts(query), hub.catalog.conflicts
    if as_json:
        echo_json([{**s.to_dict(), "conflict": conflicts.get(f"expert:{s.id}")} for s in specs])
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
        clash = conflicts.get(f"expert:{s.id}")
        click.echo(f"{s.id:<12} {s.description}" + (f"  [CONFLICT: registered by {', '.join(clash)}; "
                                                   "unusable until one is uninstalled]" if clash else ""))
        default = f", default variant {s.default_variant}" if s.default_variant else ""  # a search hit may have none
        click.echo(f"{'':<12} {'; '.join(can)}  [plugin {s.plugin}{default}]")


@experts.command(name="show")
@click.argument("expert_id")
@json_option()
def experts_show(expert_id: str, as_json: bool) -> None:
    """Everything an expert declares: domains, shapes, taps, variants, licence."""
    hub = listing_hub()
    spec = hub.expert_spec(expert_id)
    d = hub.describe_expert(expert_id)  # a file or folder variant is loaded: its shapes are the file's
    if as_json:
        echo_json(d)
        return
    for key, value in d.items():
        if key == "variants":
            click.echo("variants:")
            for v in value:
                mark = " (default)" if v["name"] == spec.default_variant else ""
                click.echo(f"  {v['name']}{mark}: {v['description']} {v['source']}".rstrip())
        elif value not in (None, [], {}, ""):
            click.echo(f"{key}: {value}")


@click.command(name="plugins")
@click.option("--check", is_flag=True, help="Also warn about plugins that import n2n_hub modules beyond n2n_hub "
                                           "and n2n_hub.kit (internals move between releases).")
@json_option()
def plugins_cmd(check: bool, as_json: bool) -> None:
    """Loaded plugins with their versions and hooks, and any that failed."""
    hub = listing_hub()
    report = hub.plugin_report()
    if check:
        reaches = hub.plugin_internal_imports()
        for r in report["plugins"]:
            r["internal_imports"] = reaches.get(r["name"], [])
    if as_json:
        echo_json(report)
        return
    for r in report["plugins"]:
        pkg = f"{r['package']} {r['version']}" if r["package"] else "registered in-process"
        click.echo(f"{r['name']:<12} {pkg}: {', '.join(r['hooks'])}")
        for p in r["problems"]:
            click.echo(f"{'':<12} problem: {p}")
        for where in r.get("internal_imports", []):
            click.echo(f"{'':<12} warning: imports an internal module ({where}); use n2n_hub and n2n_hub.kit only")
    for f in report["failed"]:
        click.echo(f"{f['plugin']:<12} FAILED: {f['reason']}")


@click.command(name="pairs")
@json_option()
def pairs_cmd(as_json: bool) -> None:
    """Pairs the registry knows, with their recipes and where each entry came from.

    An entry comes from the built-in registry, a plugin (``register_pairs``) or a user file;
    any other pair is resolved from the specs.
    """
    hub = listing_hub()
    entries = hub.pairs()
    refused = hub.refused_pairs()
    if as_json:
        echo_json([e.to_dict() for e in entries] + [{**r, "refused": True} for r in refused])
        return
    width = max((len(e.name) for e in entries), default=0) + 2
    for e in entries:
        click.echo(f"{e.name:<{width}}{e.source} -> {e.target}  recipe={e.recipe}"
                   + (f" dataset={e.dataset}" if e.dataset else "")
                   + (f" temperature={e.temperature:g}" if e.temperature != 1.0 else "")
                   + (" (published)" if e.published else "") + f"  from: {e.describe_origin()}")
        if e.description:
            click.echo(f"{'':<{width}}{e.description}")
    for r in refused:
        click.echo(f"{r['name']:<{width}}REFUSED (plugin {r['plugin']}): {r['reason']}")
    for problem in hub.registry.problems:
        click.echo(f"problem: {problem}")
    click.echo(f"registry files: {', '.join(str(f) for f in hub.registry.files)}")


COMMANDS = [experts, plugins_cmd, pairs_cmd]
