"""Guarded plugin loading through the ``n2n_hub`` entry-point group.

Every entry point is loaded on its own: one that fails to import, implements a hook
that does not exist, or registers something invalid is recorded with its name and
reason and skipped; everything else keeps working. ``N2N_HUB_LOAD_PLUGINS`` restricts
which entry points load (comma-separated names; empty loads none).
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import importlib.metadata as md
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pluggy

from .. import hookspecs
from ..spec.commands import CommandSpec
from ..spec.components import BridgeSpec, DatasetSpec, RecipeSpec
from ..errors import N2NError, PluginError
from ..spec.expert import ExpertSpec

ENTRY_POINT_GROUP = "n2n_hub"
LOAD_ENV = "N2N_HUB_LOAD_PLUGINS"
# The host's own recipes: registered through the register_recipes hook like any plugin's,
# always loaded (N2N_HUB_LOAD_PLUGINS does not remove them) and not listed as a plugin.
BUILTIN_PLUGIN = "n2n_hub.builtin"
BUILTIN_PACKAGE = "n2n-hub"


def _distribution(ep: md.EntryPoint, seen: dict[int, tuple[str, str]]) -> tuple[str, str] | None:
    """(package, version) of the distribution shipping ``ep``, its metadata parsed once per distribution.

    Parsing a distribution's metadata reads its whole long description; doing it once per
    entry point made every command start slower.
    """
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None
    if id(dist) not in seen:
        meta = dist.metadata
        seen[id(dist)] = (str(meta["Name"]), meta["Version"])
    return seen[id(dist)]


def _package(ep: md.EntryPoint, seen: dict[int, tuple[str, str]]) -> str:
    about = _distribution(ep, seen)
    return about[0] if about is not None else "?"


@dataclass
class PluginProblem:
    """A plugin that could not be loaded, or something it registered that was refused.

    A ``warning`` did not stop the plugin from loading (an unknown hook, an import of internals).
    """

    plugin: str
    reason: str
    warning: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "reason": self.reason, **({"warning": True} if self.warning else {})}


class _Manager(pluggy.PluginManager):
    """pluggy's manager, except that a hook no spec declares is reported and skipped, not fatal.

    pluggy would refuse the whole plugin (``check_pending``); a misspelt or newer hook should
    cost the plugin only that hook.
    """

    def __init__(self, project: str) -> None:
        super().__init__(project)
        self.unknown_hooks: list[tuple[object, str]] = []

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and not hasattr(self.hook, name):
            self.unknown_hooks.append((plugin, name))
            return None
        return opts


def internal_imports(plugin: object) -> list[str]:
    """``file:line: module`` for each import of an n2n_hub module beyond ``n2n_hub`` and ``n2n_hub.kit``
    in the plugin's package: internals move between releases, the public surface does not."""
    import ast

    file = getattr(plugin, "__file__", None)
    if not file:
        return []
    root = Path(file).parent if Path(file).name == "__init__.py" else Path(file)
    found = []
    for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for mod in names:
                if mod.startswith("n2n_hub.") and mod != "n2n_hub.kit":
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {mod}")
    return found


def _did_you_mean(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, [n for n in dir(hookspecs) if n.startswith("register_")], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _api_problem(plugin: object, name: str) -> str | None:
    """Why ``plugin`` cannot load under this hub's plugin-API version, or None."""
    wanted = getattr(plugin, hookspecs.PLUGIN_API_ATTRIBUTE, None)
    if wanted is None:
        return None
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        accepted = SpecifierSet(str(wanted))
    except InvalidSpecifier:
        return (f"{hookspecs.PLUGIN_API_ATTRIBUTE} = {wanted!r} is not a version range "
                f"(write e.g. '>=1.0,<2'); not loaded")
    if hookspecs.PLUGIN_API_VERSION not in accepted:
        from ..base.version import VERSION

        return (f"needs plugin API {accepted}, but n2n-hub {VERSION} offers plugin API "
                f"{hookspecs.PLUGIN_API_VERSION}; not loaded (upgrade the one that is behind)")
    return None


@dataclass(frozen=True)
class RefusedPair:
    """A ``register_pairs`` entry the hub refused: who offered it, for which experts, and why."""

    name: str
    plugin: str
    reason: str
    source: str | None = None
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "reason": self.reason, "source": self.source,
                "target": self.target}


@dataclass
class Catalog:
    """Everything the loaded plugins registered, by id, plus the problems met on the way."""

    experts: dict[str, ExpertSpec] = field(default_factory=dict)
    bridges: dict[str, BridgeSpec] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    recipes: dict[str, RecipeSpec] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # "expert:id" -> plugin names
    pairs: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # name -> (plugin, [pairs.NAME] table)
    refused_pairs: list[RefusedPair] = field(default_factory=list)  # entries planning must not fall back past
    commands: dict[str, CommandSpec] = field(default_factory=dict)  # "train-expert NAME" -> spec

    def search(self, query: str | None = None) -> list[ExpertSpec]:
        """Experts sorted by id, filtered by a substring or wildcard over id and description.

        An expert with open variants (``find_variants``, e.g. a model zoo) also matches
        when some of its variants do: it is then listed with just those variants.
        """
        specs = sorted(self.experts.values(), key=lambda s: s.id)
        if not query:
            return specs
        q = query.lower()
        pattern = q if any(ch in q for ch in "*?[") else f"*{q}*"
        found = []
        for s in specs:
            if fnmatch.fnmatch(s.id, pattern) or fnmatch.fnmatch(s.description.lower(), pattern):
                found.append(s)
            elif s.find_variants:
                hits = self._matching_variants(s, query)
                if hits:
                    found.append(_narrowed(s, query, hits))
        return found

    def _matching_variants(self, spec: ExpertSpec, query: str) -> list[Any]:
        """What the expert's ``find_variants`` hook returns; a failing hook is a recorded problem."""
        from ..spec.expert import Variant, import_object

        try:
            hits = list(import_object(spec.find_variants)(spec, query))  # type: ignore[arg-type]
            if not all(isinstance(v, Variant) for v in hits):
                raise PluginError("find_variants must return Variant objects")
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a search must not fail on one plugin
            self.problems.append(PluginProblem(spec.plugin or spec.id, f"find_variants of expert {spec.id!r} "
                                                                       f"raised {type(e).__name__}: {e}"))
            return []
        return hits


class PluginHost:
    """One pluggy manager plus the record of which entry points loaded and which failed."""

    def __init__(self) -> None:
        self.pm = _Manager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        from . import builtin_recipes

        self.pm.register(builtin_recipes, name=BUILTIN_PLUGIN)
        self.load_problems: list[PluginProblem] = []
        self.distributions: dict[str, tuple[str, str]] = {}  # plugin name -> (dist, version)
        self._loaded = False

    def load_entry_points(self) -> None:
        """Load every allowed entry point once (idempotent)."""
        if self._loaded:
            return
        self._loaded = True
        allowed = os.environ.get(LOAD_ENV)
        allow = None if allowed is None else {s.strip() for s in allowed.split(",") if s.strip()}
        owner: dict[str, tuple[str, str]] = {}  # entry-point name -> (package, value) that took it
        seen: dict[int, tuple[str, str]] = {}
        entry_points = list(md.entry_points(group=ENTRY_POINT_GROUP))

        def builtins_first(ep: md.EntryPoint) -> tuple[int, str]:
            """Built-in plugins load first, so a third-party entry point can never take their names."""
            return (0 if _package(ep, seen).replace("_", "-").lower() == BUILTIN_PACKAGE else 1, ep.name)

        for ep in sorted(entry_points, key=builtins_first):
            if allow is not None and ep.name not in allow:
                continue
            package = _package(ep, seen)
            if ep.name in owner:
                if owner[ep.name] != (package, ep.value):  # the same one seen twice is no conflict
                    first = owner[ep.name][0]
                    self.load_problems.append(PluginProblem(
                        f"{ep.name} ({package})", f"entry point name {ep.name!r} is already taken by "
                        f"{'the built-in plugin of ' if first == BUILTIN_PACKAGE else ''}{first}: not loaded; "
                        "the plugin must use another entry-point name (or uninstall one of them)"))
                continue
            owner[ep.name] = (package, ep.value)
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            about = _distribution(ep, seen)
            if about is not None:
                self.distributions[ep.name] = about
            try:
                module = ep.load()
            except (Exception, SystemExit) as e:  # noqa: BLE001 - a broken plugin must not break the host
                what = f"exited at import (SystemExit {e.code!r})" if isinstance(e, SystemExit) else \
                    f"{type(e).__name__}: {e}"
                self.load_problems.append(PluginProblem(ep.name, f"failed to import {ep.value!r}: {what}"))
                continue
            self.register(module, ep.name)

    def register(self, plugin: object, name: str) -> bool:
        """Register a plugin object: one whose API range excludes this hub, or whose hooks do not fit
        their specs, is refused and recorded; an unknown hook is recorded as a warning and skipped."""
        problem = _api_problem(plugin, name)
        if problem is not None:
            self.load_problems.append(PluginProblem(name, problem))
            return False
        self.pm.unknown_hooks.clear()
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as e:
            if self.pm.get_plugin(name) is plugin:
                self.pm.unregister(plugin)
            self.load_problems.append(PluginProblem(name, f"invalid plugin: {e}"))
            return False
        for _, hook in self.pm.unknown_hooks:
            self.load_problems.append(PluginProblem(
                name, f"unknown hook {hook!r}{_did_you_mean(hook)} skipped; its other hooks are loaded", warning=True))
        return True

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)

    def plugin_names(self) -> list[str]:
        return sorted(n for n, p in self.pm.list_name_plugin() if p is not None and n != BUILTIN_PLUGIN)

    def hooks_of(self, name: str) -> list[str]:
        plugin = self.pm.get_plugin(name)
        return sorted(h.name for h in self.pm.get_hookcallers(plugin) or []) if plugin is not None else []

    def _call_each(self, hook: str, register_for: Callable[[str], Callable[..., None]], catalog: Catalog) -> None:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                impl.function(register=register_for(impl.plugin_name))
            except (Exception, SystemExit) as e:  # noqa: BLE001
                catalog.problems.append(PluginProblem(impl.plugin_name, f"{hook} raised {type(e).__name__}: {e}"))

    def collect(self) -> Catalog:
        """Call every registration hook and gather what it registers, validated."""
        catalog = Catalog(problems=list(self.load_problems))
        owners: dict[str, dict[str, str]] = {"expert": {}, "bridge": {}, "dataset": {}, "recipe": {}, "command": {}}

        def make(kind: str, cls: type, table: dict[str, Any]) -> Callable[[str], Callable[..., None]]:
            def register_for(plugin: str) -> Callable[..., None]:
                def register(spec: Any) -> None:
                    if not isinstance(spec, cls):
                        raise PluginError(f"register() takes a {cls.__name__}, got {type(spec).__name__}")
                    try:
                        spec.validate()
                    except PluginError as e:
                        catalog.problems.append(PluginProblem(plugin, f"refused: {e}"))
                        return
                    spec = _with_plugin(spec, plugin)
                    if spec.id in table:
                        first = owners[kind][spec.id]
                        catalog.conflicts.setdefault(f"{kind}:{spec.id}", [first]).append(plugin)
                        catalog.problems.append(PluginProblem(
                            plugin, f"{kind} id {spec.id!r} is already registered by plugin {first!r}"))
                        return
                    table[spec.id] = spec
                    owners[kind][spec.id] = plugin
                return register
            return register_for

        self._call_each("register_experts", make("expert", ExpertSpec, catalog.experts), catalog)
        self._call_each("register_bridges", make("bridge", BridgeSpec, catalog.bridges), catalog)
        self._call_each("register_datasets", make("dataset", DatasetSpec, catalog.datasets), catalog)
        self._call_each("register_recipes", make("recipe", RecipeSpec, catalog.recipes), catalog)
        self._call_each("register_pairs", lambda plugin: _pair_register(plugin, catalog), catalog)
        self._call_each("register_lazy_commands", make("command", CommandSpec, catalog.commands), catalog)
        return catalog

    def report(self, catalog: Catalog) -> dict[str, list[dict[str, Any]]]:
        """Loaded plugins (name, package, version, hooks, problems) and the ones that failed, as `n2n-hub plugins` shows them."""
        names = self.plugin_names()
        rows = []
        for name in names:
            dist, version = self.distributions.get(name, (None, None))
            rows.append({"name": name, "package": dist, "version": version, "hooks": self.hooks_of(name),
                         "problems": [p.reason for p in catalog.problems if p.plugin == name]})
        failed = [p.to_dict() for p in catalog.problems if p.plugin not in names]
        return {"plugins": rows, "failed": failed}

    def extend_cli(self, cli: object) -> None:
        """Call every ``register_commands(cli)`` hook; one that fails is recorded as a load problem, not raised."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - a broken plugin must not break the CLI
                self.load_problems.append(PluginProblem(impl.plugin_name,
                                                        f"register_commands raised {type(e).__name__}: {e}"))


def _pair_register(plugin: str, catalog: Catalog) -> Callable[..., None]:
    """``register(name, entry)`` for one plugin: validated like a registry file's ``[pairs.NAME]`` table."""
    from .registry import parse_entry, plugin_origin

    def refuse(name: str, entry: dict[str, Any], reason: str) -> None:
        catalog.problems.append(PluginProblem(plugin, f"refused: {reason}"))
        side = {k: entry.get(k) if isinstance(entry.get(k), str) else None for k in ("source", "target")}
        catalog.refused_pairs.append(RefusedPair(name, plugin, reason, **side))

    def register(name: str, entry: dict[str, Any]) -> None:
        if not isinstance(name, str) or not isinstance(entry, dict):
            raise PluginError("register() takes a pair name and a dict of registry keys")
        try:
            parsed = parse_entry(plugin_origin(plugin), name, entry)
        except N2NError as e:
            refuse(name, entry, str(e))
            return
        if parsed.recipe not in catalog.recipes:  # recipes are collected first
            refuse(name, entry, f"[pairs.{name}] recipe {parsed.recipe!r} is not registered "
                                f"(known: {', '.join(sorted(catalog.recipes))})")
            return
        if name in catalog.pairs:
            first = catalog.pairs[name][0]
            catalog.problems.append(PluginProblem(plugin, f"pair {name!r} is already registered by plugin {first!r}"))
            return
        catalog.pairs[name] = (plugin, dict(entry))
    return register


SHOWN_VARIANTS = 8  # variant names a search result's description lists; JSON has them all


def _narrowed(spec: ExpertSpec, query: str, hits: list[Any]) -> ExpertSpec:
    """``spec`` as a search result: only the variants that matched, named in its description."""
    from dataclasses import replace

    names = ", ".join(v.name for v in hits[:SHOWN_VARIANTS])
    more = f" (+{len(hits) - SHOWN_VARIANTS} more; --json lists all)" if len(hits) > SHOWN_VARIANTS else ""
    what = f"{len(hits)} variant{'s' if len(hits) != 1 else ''} match {query!r}: {names}{more}"
    default = spec.default_variant if any(v.name == spec.default_variant for v in hits) else None
    return replace(spec, description=f"{spec.description}; {what}", variants=tuple(hits), default_variant=default)


def _with_plugin(spec: Any, plugin: str) -> Any:
    from dataclasses import replace

    return replace(spec, plugin=plugin)


_host: PluginHost | None = None
_active: contextvars.ContextVar[PluginHost | None] = contextvars.ContextVar("n2n_hub_host", default=None)


def get_host() -> PluginHost:
    """The process-wide plugin host, with entry points loaded."""
    global _host
    if _host is None:
        _host = PluginHost()
        _host.load_entry_points()
    return _host


@contextlib.contextmanager
def using_host(host: PluginHost) -> Iterator[None]:
    """Within this block :func:`active_host` is ``host``: how ``Hub(host=...)`` reaches plugin code it runs."""
    token = _active.set(host)
    try:
        yield
    finally:
        _active.reset(token)


def active_host() -> PluginHost:
    """The host of the hub whose work is running now, else the process-wide one."""
    return _active.get() or get_host()
