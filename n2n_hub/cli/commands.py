"""The ``n2n-hub`` command line, assembled from one module per group of commands.

``listing`` (experts, plugins, pairs), ``translate`` (pair, translate, transfer), ``evaluate``
(evaluate, diagnose), ``serving`` (serve), ``cache`` (cache, publish) and ``packages``
(install, uninstall, train-expert). Heavy modules (torch, the experts) load only inside
commands, and plugin commands only when they run, so ``--help`` and the listings answer at once.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ..base.version import VERSION as __version__
from ..errors import N2NError
from . import cache, evaluate, listing, new_plugin, packages, serving, translate
from .errors import DEBUG_ENV, run_main
from ..hub import Hub
from .hubs import load_plugin_command, plugin_commands
from .lazy import LazyGroup


class _Group(LazyGroup):
    """The root: turns every n2n-hub error into one clean line and exit status 1."""

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


def _debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ[DEBUG_ENV] = "1"


@click.group(cls=_Group, lazy=lambda: plugin_commands(""), load=load_plugin_command,
             context_settings={"help_option_names": ["-h", "--help"]})
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


for _module in (listing, translate, evaluate, serving, cache, packages, new_plugin):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def _register_plugin_commands() -> None:
    """Let plugins' ``register_commands(cli)`` hooks add commands; a hook that fails is reported, not fatal.

    Commands registered through ``register_lazy_commands`` need no call: the groups read them when listed or run.
    """
    Hub.extend_cli(cli)


# OpenMP threads spin this many times waiting for the next parallel region, then sleep. libgomp's
# default (300,000 spins) is as fast on idle cores, but when another busy process shares them the
# spinning threads take turns away from the working ones: a training step on two shared cores ran
# 4× slower than with 1,000 spins, which cost nothing on idle cores (bench/RESULTS.md, "The
# OpenMP wait policy"). Only the command line sets it, and only where the user has not chosen.
SPIN_COUNT = "1000"


def bound_openmp_spinning(environ: dict[str, str] | None = None) -> bool:
    """Set ``GOMP_SPINCOUNT`` before torch loads OpenMP, unless a wait policy or spin count is given."""
    env = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return False
    env["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


def main() -> None:
    bound_openmp_spinning()
    _register_plugin_commands()
    cli()
