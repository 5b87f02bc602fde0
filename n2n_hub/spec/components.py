"""Specs of the two other things plugins register: bridges and datasets."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import torch

from ..errors import IncompatiblePairError, PluginError
from .expert import DOMAINS

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
OPTION_KINDS = ("number", "integer", "bool", "choices", "table")


@dataclass(frozen=True)
class RecipeOption:
    """One ``[pairs.NAME.options]`` setting a recipe reads, and the values it accepts.

    ``kind``: ``number`` or ``integer`` (within ``[low, high]`` where given), ``bool``,
    ``choices`` (a list of strings, each one of ``choices``) or ``table`` (the recipe checks it).
    """

    name: str
    description: str = ""
    kind: str = "number"
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.kind in ("number", "integer"):
            integer = self.kind == "integer"
            ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
            span = f"[{'-inf' if self.low is None else f'{self.low:g}'}, {'inf' if self.high is None else f'{self.high:g}'}]"
            if isinstance(value, bool) or not ok_type or not math.isfinite(value) \
                    or (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                return f"must be a {'whole ' if integer else ''}number in {span}, got {value!r}"
        elif self.kind == "bool" and not isinstance(value, bool):
            return f"must be true or false, got {value!r}"
        elif self.kind == "choices":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"must be a list of strings among {list(self.choices)}, got {value!r}"
            bad = [v for v in value if v not in self.choices]
            if bad:
                return f"has {bad}, not among {list(self.choices)}"
        elif self.kind == "table" and not isinstance(value, dict):
            return f"must be a table, got {value!r}"
        return None


@dataclass(frozen=True)
class RecipeSpec:
    """A way of making training pairs (z_Φ, z_Θ), named by registry entries (``recipe = "id"``).

    ``loader`` is ``"module:callable"``; the callable is
    ``make(context: RecipeContext, split: str) -> PairData`` with ``split`` ``train`` or ``test``.
    ``transfer`` says what replaces an exemplar's condition in ``n2n-hub transfer``:
    ``source`` (an input the source expert reads), ``domain`` (a named set, ``--to``) or
    ``appearance`` (an image whose encoding is the condition, ``--appearance``).
    ``needs_dataset``: registry entries must name a ``dataset``.
    ``options``: the ``[pairs.NAME.options]`` settings the recipe reads; entries naming any
    other, or a bad value, are refused when their pair is planned. ``None`` (a recipe that
    declares nothing) passes every option through unchecked.

    What planning and evaluation need to know about the pairs, declared rather than inferred
    from the id (the defaults describe a recipe that makes its conditions its own way from
    the entry's dataset):

    ``samples_prior``: the pairs come from samples of the target's prior, not from data
    items: the target needs a prior (and need not encode what it decodes), no dataset is
    read, and the flow's size follows the entry's ``samples``.
    ``bridged_source``: the source encodes data that the item (or the prior sample) carries,
    converted by a chain of bridges: planning chooses where the chain starts and which
    bridges it takes (from the dataset's domains, or from what the prior reports). Without
    it the plan only names the dataset and the recipe makes the condition itself.
    ``bridged_target``: the target may encode data that the item carries in another domain,
    converted by bridges (registry keys ``target_from`` and ``target_bridges``): a target that
    reads none of the dataset's domains (a sentence encoder, with labels turned into captions)
    can then be translated into, whether or not it decodes.
    ``rows_are_items``: row ``i`` of a split's pairs comes from item ``i % N`` of the
    dataset's split, in order: evaluation then compares samples with the raw items (image
    Fréchet distances against real data and their floor) and takes the prompt ceiling and
    the NLL parts from the items' labels.
    """

    id: str
    loader: str
    description: str = ""
    transfer: str = "source"
    needs_dataset: bool = False
    plugin: str | None = None
    options: tuple[RecipeOption, ...] | None = None
    samples_prior: bool = False
    bridged_source: bool = False
    rows_are_items: bool = False
    bridged_target: bool = False

    def check_options(self, values: Mapping[str, Any], where: str = "") -> None:
        """Refuse options this recipe does not read, and values it cannot take (IncompatiblePairError)."""
        if self.options is None:
            return
        where = where or f"recipe {self.id!r}"
        declared = {o.name: o for o in self.options}
        for name, value in values.items():
            option = declared.get(name)
            if option is None:
                close = difflib.get_close_matches(name, list(declared), n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                known = ", ".join(sorted(declared)) or "none"
                raise IncompatiblePairError(f"{where}: recipe {self.id!r} has no option {name!r}.{hint} "
                                            f"Its options: {known}")
            problem = option.problem(value)
            if problem:
                raise IncompatiblePairError(f"{where}: options.{name} {problem}")

    def validate(self) -> None:
        where = f"recipe spec {self.id!r}"
        if not _ID.match(self.id or ""):
            raise PluginError(f"{where}: id must be lowercase letters, digits, '-' or '_'")
        if ":" not in self.loader:
            raise PluginError(f"{where}: loader must be 'module:callable'")
        if self.transfer not in TRANSFER_CONDITIONS:
            raise PluginError(f"{where}: transfer {self.transfer!r} is not one of {TRANSFER_CONDITIONS}")
        for name in ("needs_dataset", "samples_prior", "bridged_source", "rows_are_items", "bridged_target"):
            if not isinstance(getattr(self, name), bool):
                raise PluginError(f"{where}: {name} must be True or False, got {getattr(self, name)!r}")
        if self.samples_prior and (self.needs_dataset or self.rows_are_items):
            raise PluginError(f"{where}: a recipe that samples the target's prior reads no dataset; drop "
                              "needs_dataset / rows_are_items or samples_prior")
        for option in self.options or ():
            if not isinstance(option, RecipeOption) or option.kind not in OPTION_KINDS:
                raise PluginError(f"{where}: options must be RecipeOption(name, description, kind) with kind "
                                  f"one of {OPTION_KINDS}")
