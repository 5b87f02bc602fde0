"""n2n-hub: network-to-network translation between frozen pretrained experts.

The public API: :class:`Hub` for users; :class:`ExpertSpec`, :class:`Expert`,
:class:`BridgeSpec`, :class:`DatasetSpec`, :class:`RecipeSpec`, :class:`CommandSpec` and ``hookimpl`` for
plugin authors.
"""

from .spec.components import BridgeContext, BridgeSpec, DatasetSpec, RecipeOption, RecipeSpec
from .errors import N2NError
from .spec.commands import CommandSpec
from .spec.expert import Expert, ExpertAddress, ExpertSpec, PriorSample, Representation, Variant
from .hookspecs import PLUGIN_API_VERSION, hookimpl
from .base.version import VERSION

__version__ = VERSION

__all__ = [
    "BridgeContext", "BridgeSpec", "CommandSpec", "DatasetSpec", "Expert", "ExpertAddress", "ExpertSpec", "N2NError",
    "PairPlan", "PLUGIN_API_VERSION", "PriorSample", "RecipeOption", "RecipeSpec", "Representation", "Translation",
    "Translator", "Variant", "hookimpl", "__version__",
]


def __getattr__(name: str):
    # Hub pulls in training and the store, the plan the plugin host; import them only when asked for.
    if name == "Hub":
        from .hub import Hub

        return Hub
    if name == "PairPlan":
        from .catalog.planning import PairPlan

        return PairPlan
    if name in ("Translator", "Translation"):  # what Hub.pair and Translator.translate hand out
        from .translators import translator

        return getattr(translator, name)
    raise AttributeError(name)
