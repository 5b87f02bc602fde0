"""How the command line fails: one line and exit status 1, whatever went wrong.

Usage errors (click's status 2) exit 1 as the README promises; an unexpected exception
becomes one line and a hint to rerun with ``--debug`` (or ``N2N_HUB_DEBUG=1``) for the
traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import N2NError

DEBUG_ENV = "N2N_HUB_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def run_main(group: click.Group, parent_main: Any, args: Any, prog_name: Any, complete_var: Any,
             standalone_mode: bool, extra: dict[str, Any]) -> Any:
    """Run click's ``main`` and turn every way of failing into one line and an exit status.

    ``--debug`` holds for this invocation only: a program (or test) that runs several
    commands in one process gets back the environment it had.
    """
    before = os.environ.get(DEBUG_ENV)
    try:
        return _run_main(parent_main, args, prog_name, complete_var, standalone_mode, extra)
    finally:
        if before is None:
            os.environ.pop(DEBUG_ENV, None)
        else:
            os.environ[DEBUG_ENV] = before


def _run_main(parent_main: Any, args: Any, prog_name: Any, complete_var: Any, standalone_mode: bool,
              extra: dict[str, Any]) -> Any:
    if not standalone_mode:
        return parent_main(args, prog_name, complete_var, standalone_mode=False, **extra)
    try:
        rv = parent_main(args, prog_name, complete_var, standalone_mode=False, **extra)
    except click.ClickException as e:  # usage errors included: status 1, as documented
        e.show()
        sys.exit(1)
    except N2NError as e:  # raised outside a command (while listing, say): the same one line
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, EOFError):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the last resort: never a traceback unless asked
        if debugging():
            raise
        first = (str(e).strip().splitlines() or [""])[0][:300]
        click.echo(f"Error: unexpected {type(e).__name__}: {first}. This is a bug in n2n-hub or a plugin; rerun "
                   f"with `n2n-hub --debug ...` (or {DEBUG_ENV}=1) to see the traceback, and report it.", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
