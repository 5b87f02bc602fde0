"""Specs of the two other things plugins register: bridges and datasets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

from .errors import PluginError
from .experts import DOMAINS

_ID = re.compile(r"^[a-z][a-z0-9_\-]*$")


@dataclass(frozen=True)
class BridgeSpec:
    """Converts data of ``from_domain`` into ``to_domain`` (e.g. ``label`` → ``text``).

    ``loader`` is ``"module:callable"``; the callable is
    ``convert(data, *, context: BridgeContext) -> data``.
    ``cost`` orders alternatives when several chains exist (lower is preferred).
    ``version`` enters every feature and translator key built through the bridge: bump it whenever
    what the bridge writes changes, so caches made with the old text are never reused.
    """

    id: str
    from_domain: str
    to_domain: str
    loader: str
    description: str = ""
    cost: float = 1.0
    plugin: str | None = None
    version: str = "1"

    def validate(self) -> None:
        where = f"bridge spec {self.id!r}"
        if not _ID.match(self.id or ""):
            raise PluginError(f"{where}: id must be lowercase letters, digits, '-' or '_'")
        for name in (self.from_domain, self.to_domain):
            if name not in DOMAINS:
                raise PluginError(f"{where}: domain {name!r} is not one of {DOMAINS}")
        if ":" not in self.loader:
            raise PluginError(f"{where}: loader must be 'module:callable'")
        if not isinstance(self.version, str) or not self.version:
            raise PluginError(f"{where}: version must be a non-empty string such as '2'")


@dataclass
class BridgeContext:
    """What a bridge may need besides the data.

    ``class_names`` names label ids; ``split`` is ``train`` or ``eval`` (bridges with
    templates keep some for evaluation); ``generator`` makes random choices reproducible.
    """

    class_names: tuple[str, ...] | None = None
    split: str = "train"
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset whose items carry data of several domains (e.g. ``image`` and ``label``).

    ``loader`` is ``"module:callable"``; ``load(split) -> dict[domain, data]`` with splits
    ``train`` and ``test``. ``version`` enters feature-cache keys. ``classifier``, if set, is
    ``"module:callable"`` mapping images ``(B, C, H, W)`` in [-1, 1] to logits over
    ``class_names``: ``evaluate --prompts`` uses it to name what a translator generated.
    """

    id: str
    version: str
    loader: str
    domains: tuple[str, ...]
    description: str = ""
    license: str = ""
    image_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None
    plugin: str | None = None
    classifier: str | None = None

    def validate(self) -> None:
        where = f"dataset spec {self.id!r}"
        if not _ID.match(self.id or ""):
            raise PluginError(f"{where}: id must be lowercase letters, digits, '-' or '_'")
        bad = [d for d in self.domains if d not in DOMAINS]
        if bad or not self.domains:
            raise PluginError(f"{where}: domains {list(self.domains)} must be a non-empty subset of {DOMAINS}")
        if ":" not in self.loader:
            raise PluginError(f"{where}: loader must be 'module:callable'")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "domains": list(self.domains),
                "description": self.description, "license": self.license, "plugin": self.plugin,
                "image_shape": list(self.image_shape) if self.image_shape else None,
                "num_classes": len(self.class_names) if self.class_names else None}


TRANSFER_CONDITIONS = ("source", "domain", "appearance")


@dataclass(frozen=True)
class RecipeSpec:
    """A way of making training pairs (z_Φ, z_Θ), named by registry entries (``recipe = "id"``).

    ``loader`` is ``"module:callable"``; the callable is
    ``make(context: RecipeContext, split: str) -> PairData`` with ``split`` ``train`` or ``test``.
    ``transfer`` says what replaces an exemplar's condition in ``n2n-hub transfer``:
    ``source`` (an input the source expert reads), ``domain`` (a named set, ``--to``) or
    ``appearance`` (an image whose encoding is the condition, ``--appearance``).
    ``needs_dataset``: registry entries must name a ``dataset``.
    """

    id: str
    loader: str
    description: str = ""
    transfer: str = "source"
    needs_dataset: bool = False
    plugin: str | None = None

    def validate(self) -> None:
        where = f"recipe spec {self.id!r}"
        if not _ID.match(self.id or ""):
            raise PluginError(f"{where}: id must be lowercase letters, digits, '-' or '_'")
        if ":" not in self.loader:
            raise PluginError(f"{where}: loader must be 'module:callable'")
        if self.transfer not in TRANSFER_CONDITIONS:
            raise PluginError(f"{where}: transfer {self.transfer!r} is not one of {TRANSFER_CONDITIONS}")
