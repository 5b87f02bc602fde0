"""The spec of a command a plugin adds to the ``n2n-hub`` command line, imported only when it runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import PluginError

_NAME = re.compile(r"^[a-z][a-z0-9\-]*$")
COMMAND_GROUPS = ("train-expert", "")  # where a plugin command may go: `n2n-hub train-expert NAME`, `n2n-hub NAME`


@dataclass(frozen=True)
class CommandSpec:
    """A click command named by ``"module:attr"``, so listing it imports nothing.

    ``name`` is what the user types (``n2n-hub train-expert NAME``, or ``n2n-hub NAME`` with
    ``group=""``); ``loader`` is ``"module:attr"`` of a :class:`click.Command`, imported when
    the command runs or its own ``--help`` is asked for; ``help`` is the one line that
    ``n2n-hub train-expert --help`` (or ``n2n-hub --help``) shows for it. A name the command
    line already has is not replaced.
    """

    name: str
    loader: str
    help: str = ""
    group: str = "train-expert"
    plugin: str | None = None

    @property
    def id(self) -> str:
        """The words that run it after ``n2n-hub``: ``"train-expert vaegan"``."""
        return f"{self.group} {self.name}".strip()

    def validate(self) -> None:
        where = f"command spec {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise PluginError(f"{where}: name must be lowercase letters, digits or '-', starting with a letter")
        if not isinstance(self.loader, str) or ":" not in self.loader:
            raise PluginError(f"{where}: loader must be 'module:attr' of a click command")
        if self.group not in COMMAND_GROUPS:
            raise PluginError(f"{where}: group must be 'train-expert' or '' (a top-level command), "
                              f"got {self.group!r}")
        if not isinstance(self.help, str):
            raise PluginError(f"{where}: help must be a string (one line)")
