"""The Hub each command works through, and the few output helpers every command uses.

``n2n_hub.hub`` imports no torch, so a listing (``experts``, ``pairs``, ``cache list``)
stays fast; torch loads when a command asks the Hub for work that needs it.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..hub import Hub
from .. import CommandSpec


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def listing_hub() -> Hub:
    """A Hub for listings: quiet, on the CPU, and nothing is loaded until asked for."""
    return Hub(progress=False, log=lambda m: None)


def working_hub(device: str = "cpu", quiet: bool = False) -> Hub:
    """A Hub on a checked ``--device`` that logs its steps to stderr unless ``quiet``."""
    from ..base.validation import check_device

    check_device(device)
    return Hub(device=device, progress=not quiet, log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))


def plugin_commands(group: str) -> dict[str, CommandSpec]:
    """The commands plugins registered for ``group`` (``train-expert``, or ``""`` for the top level), by name."""
    return {c.name: c for c in Hub.commands() if c.group == group}


def load_plugin_command(spec: CommandSpec) -> Any:
    return Hub.load_command(spec)


def set_threads(threads: int | None) -> None:
    """``--threads``: how many CPU threads torch uses (unset: torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
