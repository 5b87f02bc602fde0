"""A click group whose plugin subcommands are imported only when they run.

A plugin names its command as ``"module:attr"`` with a one-line help (``register_lazy_commands``);
listing the group (``--help``) shows that line and imports nothing, so a plugin whose command
needs torch does not slow down ``n2n-hub experts``. The module is imported when the command
runs, or when its own ``--help`` is asked for.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping, Protocol

import click

from ..errors import PluginError


class LazySpec(Protocol):
    """What the group needs to know of a lazy command before importing it."""

    name: str
    loader: str
    help: str
    plugin: str | None

    @property
    def id(self) -> str: ...


_META = "n2n_hub.lazy_commands"


class LazyGroup(click.Group):
    """A group of eager commands (``add_command``) plus lazy ones, read from ``lazy()`` when needed.

    ``lazy`` returns the lazy commands by name, ``load`` imports one (raising an n2n-hub error
    that names the plugin when it cannot). An eager command of the same name wins.
    """

    def __init__(self, *args: Any, lazy: Callable[[], Mapping[str, LazySpec]],
                 load: Callable[[LazySpec], Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy
        self._load = load

    def lazy_commands(self, ctx: click.Context) -> Mapping[str, LazySpec]:
        """The lazy commands, asked for once per invocation (plugins may change between invocations)."""
        seen = ctx.find_root().meta.setdefault(_META, {})
        if id(self) not in seen:
            seen[id(self)] = {name: spec for name, spec in self._lazy().items() if name not in self.commands}
        return seen[id(self)]  # type: ignore[no-any-return]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        spec = self.lazy_commands(ctx).get(cmd_name)
        return None if spec is None else self._import(spec)

    def _import(self, spec: LazySpec) -> click.Command:
        command = self._load(spec)
        if not isinstance(command, click.Command):
            raise PluginError(f"plugin {spec.plugin!r}: {spec.loader!r} of the command `n2n-hub {spec.id}` is a "
                              f"{type(command).__name__}, not a click command; the plugin must point at one")
        if command.name != spec.name:  # it runs under the name it was registered with
            command = copy.copy(command)
            command.name = spec.name
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with each lazy command's line taken from its registration: nothing is imported."""
        lazy = self.lazy_commands(ctx)
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            # a stand-in carrying the registered help shortens it exactly as click shortens a docstring
            cmd = click.Command(name, help=lazy[name].help) if name in lazy else self.commands.get(name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])
