"""The hooks a plugin can implement. Each receives a ``register`` callback and returns nothing.

A plugin module looks like::

    from n2n_hub import hookimpl, ExpertSpec

    @hookimpl
    def register_experts(register):
        register(ExpertSpec(id="myexpert", version="1", loader="my_plugin.expert:MyExpert", ...))

and is listed under the ``n2n_hub`` entry-point group of its package.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "n2n_hub"

# The plugin contract's version: hooks, their signatures, and what n2n_hub and n2n_hub.kit
# export. The minor number grows when something is added, the major when something a plugin
# may use changes or goes. A plugin states what it needs with a module attribute,
# ``N2N_HUB_PLUGIN_API = ">=1.1,<2"``, on the module its entry point names.
# 1.2 added register_lazy_commands, n2n_hub.CommandSpec and kit.hf_cache_dir.
PLUGIN_API_VERSION = "1.2"
PLUGIN_API_ATTRIBUTE = "N2N_HUB_PLUGIN_API"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_experts(register: Callable[..., None]) -> None:
    """Register experts: call ``register(ExpertSpec(...))`` once per expert.

    :param register: takes one :class:`n2n_hub.ExpertSpec`. Keep this cheap: import
        nothing heavy here; the spec's ``loader`` is imported when the expert is used.
    """


@hookspec
def register_bridges(register: Callable[..., None]) -> None:
    """Register bridges: call ``register(BridgeSpec(...))`` for each domain converter.

    :param register: takes one :class:`n2n_hub.BridgeSpec`, which converts one domain's
        data into another's (for example class labels into caption text).
    """


@hookspec
def register_datasets(register: Callable[..., None]) -> None:
    """Register datasets: call ``register(DatasetSpec(...))`` for each dataset.

    :param register: takes one :class:`n2n_hub.DatasetSpec`; its loader is imported lazily.
    """


@hookspec
def register_recipes(register: Callable[..., None]) -> None:
    """Register recipes: call ``register(RecipeSpec(...))`` for each way of making training pairs.

    :param register: takes one :class:`n2n_hub.RecipeSpec`. Its ``loader`` names
        ``make(context: RecipeContext, split: str) -> PairData``, imported when a pair
        whose registry entry names the recipe is trained; a registry entry selects it
        with ``recipe = "<id>"``. What planning and evaluation need to know about its pairs
        is declared on the spec (``samples_prior``, ``bridged_source``, ``bridged_target``, ``rows_are_items``,
        ``transfer``, ``needs_dataset``). The built-in recipes register through this hook too.
    """


@hookspec
def register_pairs(register: Callable[..., None]) -> None:
    """Ship registry entries: call ``register(name, entry)`` for each pair the plugin knows how to train.

    :param register: takes a pair name and a dict with the keys of a ``[pairs.NAME]`` table of
        registry.toml (``source``, ``target``, ``recipe``, ``dataset``, ``flow``, ``training``,
        ``published``, ...). Entries are validated like a registry file's. They merge over the
        shipped registry, and user registry files still override them key by key.
    """


@hookspec
def register_lazy_commands(register: Callable[..., None]) -> None:
    """Add commands to the ``n2n-hub`` CLI that are imported only when they run (the preferred way).

    :param register: takes one :class:`n2n_hub.CommandSpec`: ``name``, ``loader``
        (``"module:attr"`` of a :class:`click.Command`), ``help`` (the one line listings show)
        and ``group`` (``"train-expert"``, the default, for ``n2n-hub train-expert NAME``;
        ``""`` for ``n2n-hub NAME``). Listing commands and ``--help`` import nothing of the
        plugin's; the loader is imported when the command runs or its own ``--help`` is asked.
    """


@hookspec
def register_commands(cli: object) -> None:
    """Add commands to the ``n2n-hub`` CLI by hand (prefer :func:`register_lazy_commands`).

    Called at every start of ``n2n-hub``, whatever the command: keep it cheap, and import
    the command's heavy modules inside the command.

    :param cli: the root :class:`click.Group`; add commands with ``@cli.command()``.
    """
