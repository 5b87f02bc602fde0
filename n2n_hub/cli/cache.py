"""The translator cache: ``cache path|list|verify|gc|rm``, and ``publish`` (a cached translator, for others)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import InputError
from ..hub import Hub
from .hubs import echo_json, listing_hub, working_hub
from .options import json_option


@click.group(name="cache")
def cache() -> None:
    """Inspect and clean the translator cache ($N2N_HUB_HOME)."""


@cache.command(name="path")
def cache_path() -> None:
    """Print the cache root."""
    click.echo(str(Hub.default_home()))


@cache.command(name="list")
@json_option()
def cache_list(as_json: bool) -> None:
    """Cached translators: key, pair, size, held-out NLL."""
    hub = listing_hub()
    entries = hub.cache.entries()
    if as_json:
        echo_json([e.to_dict() for e in entries])
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
                   + (f"  from route {' -> '.join(map(str, d['from_route']))}"
                      if isinstance(d.get("from_route"), list) else "")
                   + (f"  PROBLEM: {d['problem']}" if d.get("problem") else ""))


@cache.command(name="show")
@click.argument("key")
def cache_show(key: str) -> None:
    """Print the model card of the cached translator KEY (a key prefix, see `cache list`)."""
    click.echo(working_hub(quiet=True).card(key), nl=False)


@cache.command(name="verify")
def cache_verify() -> None:
    """Check every cached translator against the sha256 recorded when it was written."""
    hub = listing_hub()
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
    hub = listing_hub()
    removed = hub.cache.gc(hub.features.root)
    for path, why in removed:
        click.echo(f"removed {path}: {why}")
    click.echo("nothing to remove" if not removed else f"removed {len(removed)} leftover(s)")


@cache.command(name="rm")
@click.argument("selector", required=False)
@click.option("--all", "remove_all", is_flag=True, help="Remove every cached translator.")
def cache_rm(selector: str | None, remove_all: bool) -> None:
    """Remove cached translators by key prefix or pair folder (or --all)."""
    if not selector and not remove_all:
        raise InputError("say what to remove: a key prefix or pair folder (see `n2n-hub cache list`), or --all")
    hub = listing_hub()
    if remove_all:
        for path, why in hub.cache.gc(hub.features.root):
            click.echo(f"removed {path}: {why}")
    removed = hub.cache.remove(None if remove_all else selector)
    if not removed and selector:
        raise InputError(f"no cached translator matches {selector!r} (see `n2n-hub cache list`)")
    for e in removed:
        click.echo(f"removed {e.key} {e.pair}")


@click.command(name="publish")
@click.argument("key")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Folder for the translator file and its registry snippet.")
@click.option("--url", help="Where the file will be served: its URL, or its folder's URL ending in '/'.")
@click.option("--hf-repo", help="Hugging Face repository that will hold the file (instead of --url).")
@click.option("--hf-file", help="File name in --hf-repo (default: the published file's name).")
@click.option("--name", help="Registry entry name (default: the entry it was trained from, else the pair).")
@click.option("--upload", is_flag=True, help="Upload the file to --hf-repo with huggingface_hub (needs a token).")
@click.option("--endpoint", help="Hugging Face endpoint for --upload (default: $HF_ENDPOINT or huggingface.co).")
@json_option("Print what was written as JSON.")
def publish_cmd(key: str, out: Path, url: str | None, hf_repo: str | None, hf_file: str | None, name: str | None,
                upload: bool, endpoint: str | None, as_json: bool) -> None:
    """Write the cached translator KEY and the registry snippet that lets others fetch it.

    The snippet holds `published` (url, or hf_repo + hf_file, and the sha256); others add
    it to a registry file and `n2n-hub pair` fetches and verifies the file instead of
    training. Without --url or --hf-repo it points at the file beside it.
    """
    result = listing_hub().publish(key, out, url=url, hf_repo=hf_repo, hf_file=hf_file, name=name,
                                   upload=upload, endpoint=endpoint)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"wrote {result.file} (sha256 {result.sha256})")
    click.echo(f"wrote {result.snippet}: add it to a registry file so `n2n-hub pair` fetches this translator")
    if upload:
        click.echo(f"uploaded to {hf_repo}")


COMMANDS = [cache, publish_cmd]
