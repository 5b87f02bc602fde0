"""Plugin packages and what they add: ``install``, ``uninstall``, and the ``train-expert`` group they fill."""

from __future__ import annotations

import subprocess
import sys

import click

from .hubs import load_plugin_command, plugin_commands
from .lazy import LazyGroup


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    click.echo(" ".join(cmd), err=True)
    code = subprocess.call(cmd)
    if code:
        raise click.ClickException(f"pip exited with status {code}")


@click.command(name="install")
@click.argument("packages", nargs=-1, required=True)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade if already installed.")
@click.option("-e", "--editable", is_flag=True, help="Install a local plugin folder in editable mode.")
def install_cmd(packages: tuple[str, ...], upgrade: bool, editable: bool) -> None:
    """pip-install plugin packages into the environment n2n-hub runs in."""
    args = ["install", *(["-U"] if upgrade else [])]
    for p in packages:
        args += ["-e", p] if editable else [p]
    _pip(*args)


@click.command(name="uninstall")
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall_cmd(packages: tuple[str, ...], yes: bool) -> None:
    """pip-uninstall plugin packages."""
    if "n2n-hub" in packages or "n2n_hub" in packages:
        raise click.ClickException("refusing to uninstall n2n-hub itself with this command; use pip")
    _pip("uninstall", *(["-y"] if yes else []), *packages)


@click.group(name="train-expert", cls=LazyGroup, lazy=lambda: plugin_commands("train-expert"),
             load=load_plugin_command)
def train_expert() -> None:
    """Train an expert's own weights (plugins add one subcommand per expert)."""


COMMANDS = [install_cmd, uninstall_cmd, train_expert]
