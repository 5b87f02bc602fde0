"""The ``n2n-hub`` command line."""

from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="n2n-hub")
def cli() -> None:
    """Pair frozen pretrained experts with conditional INNs and translate between them."""


@cli.group(name="train-expert")
def train_expert() -> None:
    """Train an expert's own weights (plugins add one subcommand per expert)."""


def _register_plugin_commands() -> None:
    from .plugins import get_host

    host = get_host()
    for impl in host.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(cli=cli)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break the CLI
            host.load_problems.append(_problem(impl.plugin_name, f"register_commands raised {type(e).__name__}: {e}"))


def _problem(plugin: str, reason: str):
    from .plugins import PluginProblem

    return PluginProblem(plugin, reason)


def main() -> None:
    _register_plugin_commands()
    cli()
