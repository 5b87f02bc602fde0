"""The command line: a thin face over :class:`n2n_hub.Hub` (entry point ``n2n-hub``)."""

from .commands import main

__all__ = ["main"]
