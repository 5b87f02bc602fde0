"""Which expert addresses a request may name: the server reads only what its operator named.

An address resolves with the command line's rules, where ``bert@/some/folder`` reads a folder
and ``bert@org/repo`` may download; on a server the caller chooses the address, so it must be
one the operator allowed before anything is looked up: the addresses of the served pairs and of
the registry's entries, as written and as resolved, and those matching a pattern given with
``serve --allow-address`` (``*`` and ``?`` stay within one path segment, so ``bert@*`` allows
``bert@bert-base-uncased`` but no folder and no hub id). A variant with a ``..`` segment is
refused unless named exactly.
"""

from __future__ import annotations

import re
from typing import Iterable

from ..errors import UnknownExpertError
from ..spec.expert import ExpertAddress


def normal(address: str) -> str | None:
    """The one spelling of an address (``id[:tap][@variant]``, id lower-cased), or None if it does not parse."""
    try:
        return str(ExpertAddress.parse(address))
    except UnknownExpertError:
        return None


def _pattern(glob: str) -> re.Pattern[str]:
    """A shell pattern whose ``*`` and ``?`` never match ``/``."""
    out = []
    for ch in glob:
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    return re.compile("".join(out) + r"\Z")


def _climbs(address: str) -> bool:
    variant = address.partition("@")[2]
    return ".." in re.split(r"[/\\]", variant)


class AddressPolicy:
    """The addresses requests may name: exact ones (grown by the resolved forms of allowed ones) and patterns."""

    def __init__(self, addresses: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self.exact: set[str] = set()
        self.patterns = tuple(patterns)
        self._compiled = [_pattern(normal(p) or p) for p in self.patterns]
        for a in addresses:
            self.add(a)

    def add(self, address: str) -> None:
        spelled = normal(address)
        if spelled is not None:
            self.exact.add(spelled)

    def allows(self, address: str) -> bool:
        spelled = normal(address)
        if spelled is None:
            return False
        if spelled in self.exact:
            return True
        return not _climbs(spelled) and any(p.match(spelled) for p in self._compiled)

    def ids(self) -> set[str]:
        """Expert ids some allowed address names (for messages)."""
        return {a.partition("@")[0].partition(":")[0] for a in self.exact}

    def listing(self, limit: int = 12) -> str:
        shown = sorted(self.exact)[:limit]
        more = len(self.exact) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "") if shown else "none"
