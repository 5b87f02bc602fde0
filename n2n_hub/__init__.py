"""n2n-hub: network-to-network translation between frozen pretrained experts.

The public API: :class:`Hub` for users; :class:`ExpertSpec`, :class:`Expert`,
:class:`BridgeSpec`, :class:`DatasetSpec`, :class:`RecipeSpec`, :class:`CommandSpec` and ``hookimpl`` for
plugin authors.
"""

from .spec.components import BridgeContext, BridgeSpec, DatasetSpec, RecipeOption, RecipeSpec
from .errors import N2NError
from .spec.commands import CommandSpec
from .spec.expert import Expert, ExpertAddress, ExpertSpec, PriorSample, Representation, Variant
from .hookspecs import hookimpl
from .base.version import VERSION

__version__ = VERSION

__all__ = [
    "BridgeContext", "BridgeSpec", "CommandSpec", "DatasetSpec", "Expert", "ExpertAddress", "ExpertSpec", "N2NError",
    "PriorSample", "RecipeOption", "RecipeSpec", "Representation", "Variant", "hookimpl", "__version__",
]


def __getattr__(name: str):
    # Hub pulls in training and the store; import it only when asked for.
    if name == "Hub":
        from .hub import Hub

        return Hub
    raise AttributeError(name)
