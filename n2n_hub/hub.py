"""The Hub: the Python API over plugins, registry, caches and training.

    >>> from n2n_hub import Hub
    >>> hub = Hub()
    >>> translator = hub.pair("bert", "vaegan@animals")        # cached, fetched or trained
    >>> result = translator.translate(["a zebra"], n=8, seed=0)  # result.outputs: images
"""

from __future__ import annotations

import logging
import math
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .spec.commands import CommandSpec
from .spec.components import BridgeSpec, DatasetSpec, RecipeSpec
from .errors import (CacheError, CheckpointError, IncompatiblePairError, InputError, IntegrityError, MissingWeightsError,
                     N2NError, OfflineError, PluginError, ShapeError, TrainingError, UnknownExpertError)
from .spec.expert import Expert, ExpertAddress, ExpertSpec, import_object
from .spec.kinds import TranslatorKind, fits_closed_form, get_kind, kind_names, kind_of
from .catalog.planning import SIZES, PairPlan, apply_size, lookup_spec, resolve_pair, resolve_variant
from .base.paths import hub_home, using_home
from .catalog.host import Catalog, PluginHost, get_host, using_host
from .catalog.registry import PairEntry, Registry

# Listing experts, pairs and datasets needs none of what follows; torch and everything that
# trains, stores or runs a translator is imported on first use, so `import n2n_hub.hub` is cheap.
if TYPE_CHECKING:
    from torch import nn

    from .cinn import ConditionSpec
    from .evaluation.diagnosis import Diagnosis
    from .evaluation.metrics import Evaluation, FeatureSpace, HeldOut
    from .data.features import FeatureStore
    from .evaluation.prompts import PromptEvaluation
    from .translators.publish import Publication
    from .data.recipes import PairData, RecipeContext
    from .translators.store import TranslatorStore
    from .training import TrainConfig, TrainResult
    from .training.estimate import TrainingEstimate
    from .training.compute import ComputeRecord
    from .catalog.routes import Route
    from .translators.captions import CaptionBank
    from .translators.transfer import TransferResult
    from .translators.translator import Translation, Translator

logger = logging.getLogger("n2n_hub")



def _flow_args() -> set[str]:
    """Options some registered translator kind takes (see :mod:`n2n_hub.spec.kinds`)."""
    return set().union(*(get_kind(k).options for k in kind_names()))



def _train_fields() -> set[str]:
    from .training import TrainConfig

    return {f.name for f in fields(TrainConfig)}


def train(*args: Any, **kwargs: Any) -> TrainResult:
    """:func:`n2n_hub.training.train`, imported when the hub first trains."""
    from .training import train as run

    return run(*args, **kwargs)

_KEYLESS_TRAIN_FIELDS = {"device", "progress", "checkpoint_path", "checkpoint_every", "run_key", "compile"}
MIN_PAIRS = 32  # fewer training pairs cannot train and validate a translator


def too_few_draws(samples: int) -> str:
    """Why a route distilled from ``samples`` drawn pairs cannot be trained (a plan of it may still be drawn)."""
    return (f"--samples {samples} draws too few pairs along the route: a translator needs at least {MIN_PAIRS} "
            "to train and validate")
# A held-out NLL this far above the N(0, I) reference (nats/dim) means training failed.
FAILED_NLL_MARGIN = 50.0


def _check_fits_in_memory(kind: Any, dim: int, cond: Any, flow: dict[str, Any], plan: PairPlan) -> None:
    """Refuse a translator too large to train here, in one line, before any memory is taken.

    The module is first built on torch's meta device (shapes only, no storage) to count
    its parameters; training needs about 16 bytes each (weights, gradients, two Adam moments).
    """
    import os

    import torch

    with torch.device("meta"):
        probe = kind.build(dim, cond, flow)
    params = sum(p.numel() for p in probe.parameters())
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if 16 * params > memory:
        sizes = ", ".join(f"{k} = {flow[k]}" for k in ("n_blocks", "hidden", "depth") if k in flow)
        raise InputError(f"a {kind.name} translator for {plan.source} -> {plan.target} with {sizes} has "
                         f"{params:,} parameters, about {16 * params / 2**30:.0f} GiB to train, more than this "
                         f"machine's {memory / 2**30:.0f} GiB: choose fewer blocks or a smaller hidden width")


def _steps_kept(meta: dict[str, Any]) -> str:
    """``the weights of step 1800 of 5000`` (after early stopping) or ``5000 steps``, from a file's metadata."""
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    ran = metrics.get("steps") or (meta.get("training") or {}).get("steps")
    kept = metrics.get("best_step")
    if isinstance(kept, int) and isinstance(ran, int) and kept < ran:
        return f"the weights of step {kept} of {ran}"
    return f"{ran} steps"


def _temperature(plan: PairPlan) -> float:
    """A pair's default sampling temperature: its registry entry's, else 1."""
    return plan.entry.temperature if plan.entry is not None else 1.0


class Hub:
    """Find experts, pair them, and translate.

    Args:
        home: cache root (default ``$N2N_HUB_HOME``, else ``$XDG_CACHE_HOME/n2n-hub``, else ``~/.cache/n2n-hub``).
        device: where experts and translators run (``cpu``, ``cuda``).
        progress: show progress bars for long work.
        host: plugin host (tests pass one with fake plugins registered).
        registry: pair registry (default: shipped + user + ``$N2N_HUB_REGISTRY``).
        log: receives one line per step of long work (default: the ``n2n_hub`` logger).
    """

    SIZES: tuple[str, ...] = SIZES  # the flow size presets plan() and pair() take

    def __init__(self, home: str | Path | None = None, device: str = "cpu", progress: bool = True,
                 host: PluginHost | None = None, registry: Registry | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.home = Path(home).expanduser() if home is not None else hub_home()
        if self.home.exists() and not self.home.is_dir():
            raise CacheError(f"the cache folder {self.home} is a file, not a folder; point N2N_HUB_HOME at a "
                             "folder (or move that file away)")
        self.device = device
        self.progress = progress
        self.host = host or get_host()
        self._registry = registry
        self._catalog: Catalog | None = None
        self._experts: dict[str, Expert] = {}
        self._cache: TranslatorStore | None = None
        self._features: FeatureStore | None = None
        self._log = log or logger.info

    @property
    def cache(self) -> TranslatorStore:
        """Trained translators under ``home/translators``."""
        if self._cache is None:
            from .translators.store import TranslatorStore

            self._cache = TranslatorStore(self.home / "translators")
        return self._cache

    @property
    def features(self) -> FeatureStore:
        """Encoded training pairs under ``home/features``."""
        if self._features is None:
            from .data.features import FeatureStore

            self._features = FeatureStore(self.home / "features")
        return self._features

    # -- what is available ------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = self.host.collect()
        return self._catalog

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry.load(plugin_pairs=self.catalog.pairs)
            for problem in self._registry.problems:
                self._log(problem)
        return self._registry

    def refused_pairs(self) -> list[dict[str, Any]]:
        """Pair entries that plugins offered and the hub refused: name, plugin and why (``pairs`` lists them)."""
        refused = [r.to_dict() for r in self.catalog.refused_pairs]
        refused += [{"name": name, "plugin": plugin, "reason": why, "source": None, "target": None}
                    for name, plugin, why in self.registry.conflicts]
        return refused

    @staticmethod
    def default_home() -> Path:
        """The cache root a ``Hub()`` given no ``home`` uses (``$N2N_HUB_HOME``, ...)."""
        return hub_home()

    def plugin_report(self) -> dict[str, list[dict[str, Any]]]:
        """``{"plugins": [...], "failed": [...]}``: each loaded plugin's package, version, hooks and problems,
        a pair entry it may not register (one that would replace a built-in entry) among them."""
        report = self.host.report(self.catalog)
        for name, plugin, why in self.registry.conflicts:
            for row in report["plugins"]:
                if row["name"] == plugin:
                    row["problems"].append(f"conflict: [pairs.{name}] refused: {why}")
        return report

    def plugin_internal_imports(self) -> dict[str, list[str]]:
        """Per loaded plugin, its imports of n2n_hub modules beyond ``n2n_hub`` and ``n2n_hub.kit``."""
        from .catalog.host import internal_imports

        self.catalog  # noqa: B018 - loads the entry points
        return {name: internal_imports(self.host.pm.get_plugin(name)) for name in self.host.plugin_names()}

    # Plugin commands belong to the command line, not to one hub: they need no home or device
    # (`n2n-hub --help` lists them even when $N2N_HUB_HOME is unusable) and come from the
    # installed plugins unless a host is given.
    @staticmethod
    def commands(host: PluginHost | None = None) -> list[CommandSpec]:
        """Commands plugins add to the ``n2n-hub`` CLI through ``register_lazy_commands``, by id."""
        return sorted((host or get_host()).collect().commands.values(), key=lambda c: c.id)

    @staticmethod
    def load_command(spec: CommandSpec) -> Any:
        """Import a plugin command's ``loader``; :class:`PluginError` names the plugin when that fails."""
        try:
            return import_object(spec.loader)
        except PluginError as e:
            raise PluginError(f"plugin {spec.plugin!r}: the command `n2n-hub {spec.id}` cannot be loaded ({e}); "
                              "reinstall or upgrade that plugin") from None

    @staticmethod
    def extend_cli(cli: object, host: PluginHost | None = None) -> None:
        """Let plugins' ``register_commands(cli)`` hooks add commands; a hook that fails is a plugin problem."""
        (host or get_host()).extend_cli(cli)

    @staticmethod
    def kinds() -> dict[str, TranslatorKind]:
        """The registered translator kinds by name (``cinn``, ``mlp``, ...)."""
        return {name: get_kind(name) for name in kind_names()}

    def refresh(self) -> None:
        """Forget what plugins registered (after registering or removing one)."""
        self._catalog = None
        self._experts.clear()

    def experts(self, query: str | None = None) -> list[ExpertSpec]:
        """Registered experts, optionally filtered by a substring or wildcard over id and description."""
        return self.catalog.search(query)

    def expert_spec(self, address: str | ExpertAddress) -> ExpertSpec:
        """The spec of ``address`` (``id[:tap][@variant]``); a variant's spec may read files under this hub's home."""
        with using_home(self.home):
            return lookup_spec(self.catalog, ExpertAddress.parse(address) if isinstance(address, str) else address)

    def describe_expert(self, address: str) -> dict[str, Any]:
        """What ``experts show`` prints: the spec, and for a variant that is a file or folder the shapes of
        the weights found there (a spec can only declare its default weights' shapes)."""
        addr = ExpertAddress.parse(address)
        spec = self.expert_spec(addr)
        described = spec.to_dict()
        if addr.variant is not None and spec.accepts_paths and Path(addr.variant).expanduser().exists():
            expert = self.load_expert(addr)
            described["loaded_from"] = addr.variant
            if spec.representation is not None:
                described["representation"] = expert.representation_for(None).to_dict()
                described["taps"] = {tap: expert.representation_for(tap).to_dict() for tap in spec.taps}
            if spec.latent is not None:
                described["latent"] = expert.latent_representation().to_dict()
        return described

    def datasets(self) -> list[DatasetSpec]:
        return sorted(self.catalog.datasets.values(), key=lambda d: d.id)

    def bridges(self) -> list[BridgeSpec]:
        return sorted(self.catalog.bridges.values(), key=lambda b: b.id)

    def pairs(self) -> list[PairEntry]:
        """Pairs the registry knows, with their recipes."""
        return sorted(self.registry.entries.values(), key=lambda e: e.name)

    # -- experts ----------------------------------------------------------------------
    def load_expert(self, address: str | ExpertAddress) -> Expert:
        """Load (once per hub) the expert at ``id[@variant]``; the tap does not matter here."""
        from .spec.boundary import call_plugin, guard

        addr = ExpertAddress.parse(address) if isinstance(address, str) else address
        spec = self.expert_spec(addr)
        addr = resolve_variant(spec, ExpertAddress(addr.id, None, addr.variant))
        key = str(addr)
        if key not in self._experts:
            cls = call_plugin(spec, "import", import_object, spec.loader)
            if not (isinstance(cls, type) and issubclass(cls, Expert)):
                raise PluginError(f"expert {spec.id!r}: loader {spec.loader!r} is not an n2n_hub.Expert subclass")
            self._log(f"loading expert {addr}")

            def construct() -> Expert:
                try:
                    return cls(spec, addr.variant, device=self.device)
                except (FileNotFoundError, OSError) as e:
                    raise MissingWeightsError(f"cannot load weights for {addr}: {e}") from None

            with using_home(self.home), using_host(self.host):
                expert = call_plugin(spec, "loading", construct)
            self._experts[key] = guard(expert)  # outputs are checked against the spec at the boundary
        return self._experts[key]

    def load_dataset(self, dataset: str, split: str) -> dict[str, Any]:
        """The items of one split of a registered dataset (``{domain: items, ...}``), from its plugin's loader."""
        if dataset not in self.catalog.datasets:
            known = ", ".join(sorted(self.catalog.datasets)) or "none"
            raise InputError(f"unknown dataset {dataset!r}; registered datasets: {known} "
                             "(install the plugin that provides it)")
        spec = self.catalog.datasets[dataset]
        from .spec.boundary import call_plugin

        loader = call_plugin(spec, "import", import_object, spec.loader)
        with using_home(self.home), using_host(self.host):
            items = call_plugin(spec, "loading", loader, split)
        if not isinstance(items, dict):
            raise PluginError(f"dataset {dataset!r} (plugin {getattr(spec, 'plugin', None)!r}) returned a "
                              f"{type(items).__name__}, expected {{domain: items}}")
        return items  # type: ignore[no-any-return]

    # -- pairing ----------------------------------------------------------------------
    def plan(self, source: str, target: str, data: str | Path | None = None,
             translator: str | None = None, size: str | None = None, n_blocks: int | None = None,
             hidden: int | None = None) -> PairPlan:
        """How ``source -> target`` would be trained (no expert is loaded).

        ``size`` (``small``, ``medium``, ``paper``), ``n_blocks`` and ``hidden`` override the
        flow's size; without them a pair with no sized registry entry gets one chosen from
        the target's dimension, the data and the device (``plan.sizing`` says which and why).
        """
        if translator is not None:
            get_kind(translator)  # an unknown kind fails here, naming the known ones
        with using_home(self.home):
            plan = resolve_pair(self.catalog, self.registry, source, target, data=data, translator=translator)
        plan = apply_size(plan, self.device, size, n_blocks, hidden)
        return replace(plan, asked_translator=translator, asked_size=size)

    def estimate(self, plan: PairPlan, **options: Any) -> TrainingEstimate:
        """What training ``plan``'s translator will cost here: parameters, steps, batch, and the time of
        one timed step of the trainer on random rows of the planned shapes (no expert is loaded)."""
        from .cinn import ConditionSpec
        from .training.estimate import estimate

        rep = plan.source_spec.tap_representation(plan.source.tap)
        # what the translator samples: the target's latent, or what it encodes when it has no decoder
        target = plan.target_spec.latent or plan.target_spec.representation
        if target is None:
            raise IncompatiblePairError(f"{plan.target} neither decodes nor encodes: nothing to translate into")
        cond = ConditionSpec.infer(rep.shape, rep.dtype, rep.num_classes)
        config = self._train_config(plan, options)
        module = self._build(plan, cond, target.numel, options)
        import torch

        dtype = torch.float32 if rep.dtype.startswith(("float", "bfloat")) else torch.int64
        return estimate(module, tuple(rep.shape), dtype, target.numel, config)

    def _plan_of(self, source: str | PairPlan, target: str | None, **planning: Any) -> PairPlan:
        """``source`` itself when it is a plan (nothing is planned again), else a new plan of the pair."""
        if isinstance(source, PairPlan):
            given = {k: v for k, v in planning.items() if v is not None}
            if target is not None or {"data", "translator", "size"} & set(given):
                raise InputError("a pair given as a plan carries its own target, data, translator and size; "
                                 "pass them to Hub.plan instead")
            return source
        if target is None:
            raise InputError("name the target expert (or pass a plan from Hub.plan)")
        return self.plan(source, target, **planning)

    def training_pairs(self, plan: PairPlan, split: str = "train") -> PairData:
        """(z_Φ, z_Θ) rows for a plan, from the feature cache when possible."""
        if plan.from_route is not None:
            return self._route_pairs(plan, split)
        src, tgt = self.load_expert(plan.source), self.load_expert(plan.target)
        self._check_target_shapes(plan, tgt)
        from .data.recipes import PairData
        from .spec.boundary import call_plugin

        recipe = self.recipe(plan.recipe)
        make = call_plugin(recipe, "import", import_object, recipe.loader)
        with using_home(self.home), using_host(self.host):
            data = call_plugin(recipe, "making training pairs", make, self._recipe_context(plan, src, tgt), split)
        if not isinstance(data, PairData):
            raise PluginError(f"recipe {recipe.id!r} (plugin {getattr(recipe, 'plugin', None)!r}) returned a "
                              f"{type(data).__name__}, expected an n2n_hub PairData of (source, target) rows")
        return data

    def recipe(self, name: str) -> RecipeSpec:
        """The registered recipe ``name`` (built-in or a plugin's)."""
        if name not in self.catalog.recipes:
            known = ", ".join(sorted(self.catalog.recipes)) or "none"
            raise IncompatiblePairError(f"recipe {name!r} is not registered by any loaded plugin (known: {known})")
        return self.catalog.recipes[name]

    def _recipe_context(self, plan: PairPlan, src: Expert, tgt: Expert) -> RecipeContext:
        from .data.recipes import RecipeContext

        options = dict(plan.entry.options) if plan.entry is not None and plan.data_path is None else {}
        return RecipeContext(plan, src, tgt, self.features, dict(self.catalog.datasets), self.load_dataset,
                             self.progress, options)

    @staticmethod
    def _check_target_shapes(plan: PairPlan, target: Expert) -> None:
        if plan.recipe_spec is None or not plan.recipe_spec.samples_prior:  # prior samples are never encoded
            rep, lat = target.representation_for(None), target.latent_representation()
            if rep.numel != lat.numel:
                raise IncompatiblePairError(f"{plan.target} encodes {rep.describe()} but decodes {lat.describe()}: "
                                            "its encodings cannot be translation targets")

    def _condition_spec(self, plan: PairPlan, source: Expert) -> ConditionSpec:
        from .cinn import ConditionSpec

        rep = source.representation_for(plan.source.tap)
        return ConditionSpec.infer(rep.shape, rep.dtype, rep.num_classes)

    def _build(self, plan: PairPlan, cond: ConditionSpec, dim: int, overrides: dict[str, Any]) -> nn.Module:
        from .base.validation import FLOW_RULES, number_problem

        for k, v in overrides.items():
            problem = number_problem(k, v, FLOW_RULES[k]) if k in FLOW_RULES and v is not None else None
            if problem:
                raise InputError(problem)
        kind = get_kind(plan.translator)
        flow = {**plan.flow, **{k: v for k, v in overrides.items() if k in kind.options}}
        _check_fits_in_memory(kind, dim, cond, flow, plan)
        return kind.build(dim, cond, flow)  # type: ignore[no-any-return]

    def _train_config(self, plan: PairPlan, options: dict[str, Any]) -> TrainConfig:
        from .training import TrainConfig

        flow_args, train_fields = _flow_args(), _train_fields()
        unknown = sorted(set(options) - train_fields - flow_args)
        if unknown:
            raise InputError(f"unknown training option(s) {unknown}; training options: {sorted(train_fields)}, "
                             f"flow options: {sorted(flow_args)}")
        values = {"device": self.device, "progress": self.progress, **plan.training,
                  **{k: v for k, v in options.items() if k in train_fields and v is not None}}
        return TrainConfig(**values)

    def _key(self, plan: PairPlan, source: Expert, target: Expert, module: nn.Module, config: TrainConfig) -> str:
        from .data.features import stable_hash

        return stable_hash(self._request(plan, source, target, module, config))[:32]

    def _request(self, plan: PairPlan, source: Expert, target: Expert, module: nn.Module,
                 config: TrainConfig, hops: Sequence[Any] | None = None) -> dict[str, Any]:
        """What a translator answers: its key is a hash of this, and its file carries it. A translator
        distilled from a route also answers its ``hops``: a changed hop is another translator."""
        from .translators import file as translator_file

        train_cfg = {k: v for k, v in config.to_dict().items() if k not in _KEYLESS_TRAIN_FIELDS}
        parts = {
            "format": translator_file.FORMAT_VERSION,
            "source": self._expert_meta(plan.source, source), "target": self._expert_meta(plan.target, target),
            "recipe": {k: v for k, v in plan.to_dict().items()
                       if k not in ("flow", "training", "source", "target", "sizing")},
            "module": {"kind": kind_of(module).name, "arch": getattr(module, "arch_version", 1),
                       "config": module.config()},  # type: ignore[operator]
            "training": train_cfg,
        }
        if plan.dataset:
            parts["dataset_version"] = self.catalog.datasets[plan.dataset].version
        if hops is not None:
            from .translators.distill import hop_records

            parts["route"] = hop_records(hops)
        return parts

    @staticmethod
    def _expert_meta(address: ExpertAddress, expert: Expert) -> dict[str, Any]:
        return {"address": str(address), "id": expert.spec.id, "version": expert.spec.version,
                "variant": address.variant, "tap": address.tap, "fingerprint": expert.fingerprint()}

    def pair(self, source: str | PairPlan, target: str | None = None, *, data: str | Path | None = None,
             translator: str | None = None, force: bool = False, train_if_missing: bool = True,
             size: str | None = None, make_current: bool = False, use_current: bool | None = None,
             **options: Any) -> Translator:
        """Return the translator for ``source -> target``: from the cache, a published file, or trained now.

        ``source`` may instead be a :class:`PairPlan` from :meth:`plan` (``target`` omitted): the
        pair is then not planned again, and ``data``, ``translator`` and ``size`` come from the plan.

        Args:
            data: a folder of images or a text file both experts can read (instead of a registry recipe).
            translator: ``cinn`` (default) or ``mlp`` (the deterministic baseline of Sec. E).
            force: retrain (afresh, ignoring any checkpoint) even if a cached translator exists.
            train_if_missing: if False, raise :class:`CacheError` instead of training.
            size: ``small``, ``medium`` or ``paper`` flow size instead of the registry's or the chosen one.
            make_current: make the result the pair's current translator (what ``n2n-hub pair`` does).
            use_current: use the pair's current translator; by default when no setting is given.
            options: training options (``steps``, ``batch_size``, ``lr``, ``seed``, ...) and flow
                options (``n_blocks``, ``hidden``, ...); they enter the cache key.
        """
        from .base import distributed
        from .data.features import stable_hash

        plan = self._plan_of(source, target, data=data, translator=translator, size=size,
                             n_blocks=options.get("n_blocks"), hidden=options.get("hidden"))
        translator, size = plan.asked_translator, plan.asked_size
        data = plan.data_path
        if plan.from_route is not None and plan.samples < MIN_PAIRS:  # refused before anything loads
            raise InputError(too_few_draws(plan.samples))
        src, tgt = self.load_expert(plan.source), self.load_expert(plan.target)
        condition = self._condition_spec(plan, src)
        config = self._train_config(plan, options)
        module = self._build(plan, condition, tgt.latent_representation().numel, options)
        # A distilled translator's key names its route's translators, so they are made ready first.
        hops = self.route_hops(plan.from_route.route, train_if_missing=train_if_missing) \
            if plan.from_route is not None else None
        request = self._request(plan, src, tgt, module, config, hops)
        key = stable_hash(request)[:32]
        explicit = (bool({k for k in options if k not in _KEYLESS_TRAIN_FIELDS}) or translator is not None
                    or size is not None)
        if use_current is None:
            use_current = not (explicit or force or data is not None)
        if use_current and not force:
            found = self._current(plan, request, src, tgt, module)
            if found is not None:
                return self._shown(found)

        # A published file is what its registry entry says: it answers only the entry's own settings.
        published_ok = (not {k for k in options if k not in _KEYLESS_TRAIN_FIELDS} and size is None
                        and translator in (None, plan.entry.translator if plan.entry else None))
        result: Translator | None = None
        if not force:
            result = self._from_cache_or_published(plan, key, request, src, tgt, module, fetch=published_ok)
        if result is None:
            if not train_if_missing:
                kind = f" --translator {plan.translator}" if plan.translator not in (None, "cinn") else ""
                raise CacheError(f"no cached translator for {plan.source} -> {plan.target} with these settings "
                                 f"(key {key}); run `n2n-hub pair {plan.source} {plan.target}{kind}` to train it")
            if distributed.world().distributed:  # torchrun: the ranks train together and rank 0 writes
                result = self._train_and_save(plan, key, request, src, tgt, module, config, fresh=force, hops=hops)
            else:
                with self.cache.lock(key):
                    if not force:  # another process may have finished it while we waited
                        result = self._from_cache_or_published(plan, key, request, src, tgt, module, fetch=False)
                    if result is None:
                        result = self._train_and_save(plan, key, request, src, tgt, module, config, fresh=force,
                                                      hops=hops)
        if make_current:
            self.cache.set_current(key, plan.label)
        return self._shown(result)

    def _shown(self, translator: Translator) -> Translator:
        """A text target without a decoder shows its latents through a caption bank, made on first use."""
        if translator.captions is None and not translator.target.spec.can_decode \
                and translator.target.spec.input_domain == "text":
            translator.captions = lambda: self.caption_bank(translator)
        return translator

    @staticmethod
    def read_captions(path: str | Path) -> list[str]:
        """A caption file's captions (UTF-8, one per line); an empty or unreadable file is an InputError."""
        from .translators.captions import read_captions

        return read_captions(path)

    def caption_bank(self, translator: Translator, captions: str | Path | Sequence[str] | None = None) -> "CaptionBank":
        """The texts a text target's latents are shown by, encoded by the target.

        ``captions``: a UTF-8 file (one caption per line) or a list of texts; by default the
        names and sentences of the pair's classes and the captions its target bridges write for them.
        """
        from .translators.captions import CAPTIONS_PER_CLASS, class_captions, encode_bank, read_captions

        target, plan = translator.target, translator.plan
        if target.spec.input_domain != "text":
            raise InputError(f"a caption bank shows text latents, but {translator.target_address} encodes "
                             f"'{target.spec.input_domain}'; drop --captions")
        if captions is not None:
            texts = read_captions(captions) if isinstance(captions, (str, Path)) else [str(c) for c in captions]
            if not texts:
                raise InputError("the caption bank is empty; give at least one caption")
            return encode_bank(target, texts)
        ds = self.catalog.datasets.get(plan.dataset) if plan is not None and plan.dataset else None
        names = (ds.class_names if ds is not None else None) or target.class_names or \
            (translator.source.class_names if translator.source is not None else None)
        if not names:
            raise InputError(f"{translator.target_address}'s pair names no classes to caption; pass --captions FILE "
                             "(one caption per line)")
        bridged: list[tuple[str, int]] = []
        if plan is not None and plan.target_start == "label" and plan.target_bridges:
            import torch

            from .data.recipes import apply_bridges
            from .spec.components import BridgeContext

            labels = torch.arange(len(names)).repeat(CAPTIONS_PER_CLASS)
            ctx = BridgeContext(class_names=tuple(names), split="train", generator=torch.Generator().manual_seed(0))
            with using_home(self.home), using_host(self.host):
                texts = apply_bridges(plan.target_bridges, labels, ctx)
            bridged = [(str(t), int(k)) for t, k in zip(texts, labels)]
        texts, labels_of = class_captions(names, bridged)
        return encode_bank(target, texts, labels_of)

    def _current(self, plan: PairPlan, request: dict[str, Any], src: Expert, tgt: Expert,
                 built: nn.Module) -> Translator | None:
        """The pair's current translator, if ``pair`` set one and it still fits these experts and recipe."""
        from .translators.store import check_record, differences
        from .translators.translator import Translator

        key = self.cache.current(plan.label)
        path = self.cache.find(key) if key else None
        if key is None or path is None:
            return None
        module, meta = self.cache.load(path, map_location=self.device)
        record = check_record(meta, key, path)
        def what(r: dict[str, Any]) -> dict[str, Any]:  # the experts and the data, not the settings
            recipe = {k: v for k, v in (r.get("recipe") or {}).items() if k != "translator"}
            return {**{k: v for k, v in r.items() if k not in ("module", "training")}, "recipe": recipe}

        stale = differences(what(request), what(record))
        if stale:
            self._log(f"the current translator {key} of {plan.source} -> {plan.target} was trained for another "
                      f"{', '.join(stale)}; not using it")
            return None
        self._check_loaded(module, meta, plan, built, path, None)
        steps = _steps_kept(meta)
        self._log(f"using translator {key} ({meta.get('kind')}, {steps}), the current one for "
                  f"{plan.source} -> {plan.target} (set by `n2n-hub pair`; pass settings to choose another)")
        return Translator(module, meta, src, tgt, plan.source, plan.target, path, temperature=_temperature(plan),
                          plan=plan)

    def _from_cache_or_published(self, plan: PairPlan, key: str, request: dict[str, Any], src: Expert, tgt: Expert,
                                 built: nn.Module, fetch: bool = True) -> Translator | None:
        from .translators.store import RecordMismatch
        from .translators.translator import Translator

        path = self.cache.find(key)
        if path is None and fetch and plan.entry is not None and plan.entry.published is not None:
            def accept(meta: dict[str, Any]) -> None:
                self._check_record(meta, request, key, "the published translator")

            try:
                self._log(f"fetching the published translator for {plan.source} -> {plan.target}")
                path = self.cache.fetch(plan.entry.published, key, plan.label, accept=accept)
            except OfflineError as e:
                self._log(f"{e}; training it locally instead")
                path = None
            except RecordMismatch as e:
                self._log(f"{e}; not caching it, training locally instead")
                path = None
        if path is None:
            return None
        module, meta = self.cache.load(path, map_location=self.device)
        self._check_loaded(module, meta, plan, built, path, request)
        self._log(f"using translator {key} ({meta.get('kind')}, {_steps_kept(meta)})")
        return Translator(module, meta, src, tgt, plan.source, plan.target, path, temperature=_temperature(plan),
                          plan=plan)

    @staticmethod
    def _check_record(meta: dict[str, Any], request: dict[str, Any], key: str, what: str) -> None:
        """Refuse a translator file whose own record is not the request it is meant to answer."""
        from .translators.store import RecordMismatch, differences

        record = meta.get("request")
        if not isinstance(record, dict):
            raise RecordMismatch(f"{what} carries no request record, so what it answers cannot be checked")
        diff = differences(request, record)
        if diff:
            raise RecordMismatch(f"{what} was trained with other settings than requested "
                                 f"(different {', '.join(diff)}; it is a {meta.get('kind')})")
        if meta.get("kind") != request["module"]["kind"]:
            raise RecordMismatch(f"{what} is a {meta.get('kind')}, but a {request['module']['kind']} was requested")

    def _check_loaded(self, module: nn.Module, meta: dict[str, Any], plan: PairPlan, built: nn.Module,
                      path: Path, request: dict[str, Any] | None) -> None:
        """Refuse a loaded file that is not the request, or does not fit the module built for this pair."""
        from .translators.store import check_record

        if request is not None:
            try:
                self._check_record(meta, request, path.name.split(".")[0], f"cached translator {path}")
                check_record(meta, path.name.split(".")[0], path)
            except CacheError as e:
                raise CacheError(f"{e}; remove it with `n2n-hub cache rm {path.name.split('.')[0]}` "
                                 "and pair again") from None
        want_dim, want_cond = getattr(built, "dim", None), getattr(built, "condition", None)
        if getattr(module, "dim", None) != want_dim or getattr(module, "condition", None) != want_cond:
            raise CacheError(f"{path} does not fit {plan.source} -> {plan.target} (translates "
                             f"{getattr(module, 'condition', '?')} into {getattr(module, 'dim', '?')} dims); "
                             f"remove it with `n2n-hub cache rm {path.name.split('.')[0]}`")

    def _train_and_save(self, plan: PairPlan, key: str, request: dict[str, Any], src: Expert, tgt: Expert,
                        module: nn.Module, config: TrainConfig, fresh: bool = False,
                        hops: Sequence[Any] | None = None) -> Translator:
        import torch

        from .base import distributed
        from .translators import file as translator_file
        from .training.compute import Stopwatch, training_cost
        from .translators.translator import Translator

        self._log(f"pairing {plan.explain()}")
        data = self._route_pairs(plan, "train", hops) if plan.from_route is not None else self.training_pairs(plan)
        n_pairs = int(data.source.shape[0])
        if n_pairs < MIN_PAIRS:
            where = f" from --data {plan.data_path}" if plan.data_path is not None else ""
            more = "draw more along the route (--samples)" if plan.from_route is not None else "give more items"
            raise InputError(f"only {n_pairs} training pairs{where}: a translator needs at least {MIN_PAIRS} to "
                             f"train and validate; {more}")
        self._log(f"training a {module.kind} translator on {n_pairs} pairs "  # type: ignore[union-attr]
                  f"({config.steps} steps, batch {config.batch_size})")
        module.to(config.device)
        ckpt = self.cache.checkpoint_for(key, plan.label)
        if fresh:
            ckpt.unlink(missing_ok=True)
        config = replace(config, checkpoint_path=ckpt, run_key=key)
        initial = {k: v.detach().clone() for k, v in module.state_dict().items()}

        def log(event: dict[str, Any]) -> None:
            if event.get("event") in ("skip", "early_stop", "warning", "resume", "compile"):
                self._log(str(event.get("message")))

        stopwatch = Stopwatch(torch.device(config.device))
        try:
            result: TrainResult = train(module, data.source, data.target, config, log=log, groups=data.groups,
                                        labels=data.labels)
        except CheckpointError as e:
            self._log(f"{e.problem}: starting afresh")
            ckpt.unlink(missing_ok=True)
            module.load_state_dict(initial)
            stopwatch = Stopwatch(torch.device(config.device))
            result = train(module, data.source, data.target, config, log=log, groups=data.groups, labels=data.labels)
        cost = training_cost(module, data.source, data.target, config.batch_size, result.steps, stopwatch,
                             world_size=distributed.world().size)
        module.eval()
        self._check_validation(plan, result, ckpt)
        meta = {
            "key": key, "request": request,
            "source": self._expert_meta(plan.source, src), "target": self._expert_meta(plan.target, tgt),
            "recipe": plan.to_dict(), "training": {k: v for k, v in config.to_dict().items() if k != "checkpoint_path"},
            "metrics": {k: v for k, v in result.to_dict().items() if k != "history"},
            "pairs": n_pairs,
            "compute": cost.to_dict(),
        }
        path = self.cache.path_for(key, plan.label)
        if distributed.world().is_main:
            path = self.cache.save(module, meta, key, plan.label)
            ckpt.unlink(missing_ok=True)
            self._log(f"saved translator {key} to {path}")
        distributed.barrier()  # the other ranks load what rank 0 wrote
        if distributed.world().is_main:
            meta = translator_file.verify_written(path, module)  # the object handed out is what the file holds
            module.to(self.device)
        else:
            module, meta = translator_file.load(path, map_location=self.device)
        return Translator(module, meta, src, tgt, plan.source, plan.target, path, temperature=_temperature(plan),
                          plan=plan)

    def transfer(self, source: str | PairPlan, target: str | None = None, exemplars: Any = None, *,
                 to: Any = None, appearance: Any = None, condition: Any = None, from_: Any = None, n: int = 0,
                 temperature: float | None = None, seed: int | None = None, **pair_options: Any) -> "TransferResult":
        """Keep each exemplar's residual and give it a new condition (see :mod:`n2n_hub.translators.transfer`).

        ``exemplars`` are images of the target (a tensor, or image files). What the new condition
        is depends on the pair's recipe: ``to`` (domain names, recipe ``domains``), ``appearance``
        (images, recipe ``deformation``) or ``condition`` (inputs of the source expert:
        exemplar-guided translation); images may be given as files. ``n`` adds that many samples
        with a fresh residual under the new condition, for comparison. ``source`` may be a plan
        from :meth:`plan` (``target`` omitted).
        """
        from .spec.inputs import read_inputs
        from .translators.transfer import check_domain_names, check_request, run_transfer

        plan = self._plan_of(source, target, translator=pair_options.pop("translator", None))
        if exemplars is None:
            raise InputError("give the exemplars to transfer (images of the target)")
        kind = (plan.recipe_spec or self.recipe(plan.recipe)).transfer
        pair_name = f"{plan.source} -> {plan.target}"
        check_request(kind, pair_name, plan.recipe, to=to, appearance=appearance, condition=condition)
        if not plan.target_spec.can_encode:
            raise IncompatiblePairError(f"{plan.target} cannot encode exemplars, so it has nothing to transfer")
        if kind == "domain":  # unknown domain names fail before anything is loaded or trained
            check_domain_names(plan, to, from_)
        elif from_ is not None:
            from_ = read_inputs(plan.source_spec, from_, exact=True, who=str(plan.source))
        # Inputs are read (and refused) before anything is trained.
        exemplars = read_inputs(plan.target_spec, exemplars, exact=True, who=str(plan.target))
        if appearance is not None:
            appearance = read_inputs(plan.source_spec, appearance, exact=True, who=str(plan.source))
        if condition is not None:
            condition = read_inputs(plan.source_spec, condition, exact=True, who=str(plan.source))
        t = self.pair(plan, **pair_options)
        return run_transfer(t, kind, exemplars, to=to, appearance=appearance, condition=condition, from_=from_,
                            n=n, temperature=temperature, seed=seed)

    def _check_validation(self, plan: PairPlan, result: TrainResult, ckpt: Path) -> None:
        """A translator that failed validation is never cached as if it were good."""
        nll, mse = result.best_val_nll, result.best_val_mse
        problem = None
        if nll is not None and (not math.isfinite(nll) or nll > result.reference_nll_per_dim + FAILED_NLL_MARGIN):
            problem = (f"held-out NLL {nll:.4g} nats/dim, where N(0, I) data scores "
                       f"{result.reference_nll_per_dim:.3f}")
        elif mse is not None and not math.isfinite(mse):
            problem = f"held-out MSE {mse}"
        if problem is not None:
            ckpt.unlink(missing_ok=True)
            raise TrainingError(f"training {plan.source} -> {plan.target} failed validation ({problem}); nothing "
                                "was cached. Give more (or more varied) training data, or fewer steps / a lower --lr")

    # -- routes -----------------------------------------------------------------------
    def route(self, source: str, target: str, via: Sequence[str] | None = None, direct: bool = True) -> "Route":
        """The cheapest route ``source -> via... -> target`` through the registry's and the cache's
        translators and the experts' decode -> encode links (nothing is loaded or trained).

        ``direct=False`` leaves out a translator ``source -> target`` itself (a route to distil goes
        through other experts). Raises :class:`IncompatiblePairError` naming the missing link when
        there is none.
        """
        from .catalog.routes import find_route, route_links

        stops = [source, *(via or ()), target]
        links, specs = route_links(self.catalog, self.registry, self._cached_pairs(), stops)
        names = [str(resolve_variant(lookup_spec(self.catalog, ExpertAddress.parse(a)), ExpertAddress.parse(a)))
                 for a in stops]
        if not direct:
            links = [lk for lk in links if (lk.source, lk.target) != (names[0], names[-1])]
        return find_route(links, names[0], names[-1], names[1:-1], specs)

    def _cached_pairs(self) -> dict[tuple[str, str], str]:
        """``(source, target) -> key`` of the translators a route can use without training: each pair's
        current one, else the newest cached one; a distilled one only while its hops' files are unchanged."""
        found: dict[tuple[str, str], tuple[bool, str, str]] = {}
        entries = self.cache.entries()
        sha256 = {e.key: e.summary.get("sha256") for e in entries if e.path.is_file()}
        for e in entries:
            src, tgt = e.summary.get("source"), e.summary.get("target")
            if not isinstance(src, str) or not isinstance(tgt, str) or not e.path.is_file():
                continue
            hops = e.summary.get("route_translators")
            if isinstance(hops, list) and any(not isinstance(h, dict) or sha256.get(str(h.get("key"))) != h.get(
                    "sha256") for h in hops):
                continue  # distilled from hop translators that are gone or were retrained: stale
            current = self.cache.current(f"{src}--{tgt}") == e.key
            try:
                entry = self.registry.find(ExpertAddress.parse(src), ExpertAddress.parse(tgt))
            except Exception:  # noqa: BLE001 - an odd record is only not counted
                continue
            if not current and entry is not None and entry.training.get("steps") not in (None, e.summary.get("steps")):
                continue  # trained with other settings than the entry's: running the route would train again
            rank = (current, str(e.summary.get("created") or ""), e.key)
            if (src, tgt) not in found or rank > found[(src, tgt)]:
                found[(src, tgt)] = rank
        return {pair: rank[2] for pair, rank in found.items()}

    def route_hops(self, route: "Route", **pair_options: Any) -> list[Any]:
        """The route's hops made ready once: each translator paired (cached, fetched or trained), each
        expert hop's two experts loaded. Hold them to run the route many times
        (:func:`n2n_hub.translators.routes.run_route`) without pairing again."""
        from .translators.routes import ExpertHop

        hops: list[Any] = []
        for link in route.hops:
            if link.kind == "expert":
                to = ExpertAddress.parse(link.target)
                hops.append(ExpertHop(self.load_expert(link.source), self.load_expert(to), to.tap))
            elif link.entry is None and link.key is not None:  # no recipe to plan: the cached file itself
                hops.append(self._cached_translator(link.key))
            else:
                hops.append(self.pair(self.plan(link.source, link.target), **pair_options))
        return hops

    def _cached_translator(self, key: str) -> Translator:
        """The cached translator ``key`` with no plan behind it (one distilled from a route, or trained on
        --data), its experts loaded; refused when they are no longer the ones it was trained with."""
        from .translators.store import check_record, differences
        from .translators.translator import Translator

        path = self.cache.find(key)
        if path is None:
            raise CacheError(f"the cached translator {key} is gone; plan the route again")
        module, meta = self.cache.load(path, map_location=self.device)
        check_record(meta, key, path)
        addresses = [ExpertAddress.parse(str((meta.get(role) or {}).get("address"))) for role in ("source", "target")]
        experts = [self.load_expert(a) for a in addresses]
        for role, address, expert in zip(("source", "target"), addresses, experts):
            if differences(self._expert_meta(address, expert), meta.get(role) or {}):
                raise CacheError(f"the cached translator {key} was trained for other weights of {address}; "
                                 f"remove it with `n2n-hub cache rm {key}`")
        return self._shown(Translator(module, meta, experts[0], experts[1], addresses[0], addresses[1], path))

    def plan_from_route(self, route: "Route", *, samples: int | None = None, temperature: float | None = None,
                        seed: int | None = None, translator: str | None = None, size: str | None = None,
                        n_blocks: int | None = None, hidden: int | None = None) -> PairPlan:
        """The plan of a direct translator ``route.source -> route.target`` distilled from ``route``:
        trained on ``samples`` pairs (default 10,000), each an input of the first hop's dataset encoded
        by the source and pushed through the route (seed ``seed``, default 0; ``temperature``, default 1).
        Nothing is loaded or trained; :meth:`pair` takes the plan. ``route`` comes from
        :meth:`route` (``direct=False``)."""
        from .catalog.distilling import DEFAULT_SAMPLES, check_route, plan_from_route

        check_route(route)
        if translator is not None:
            get_kind(translator)
        inputs = self.plan(route.hops[0].source, route.hops[0].target)
        plan = plan_from_route(route, inputs, DEFAULT_SAMPLES if samples is None else samples,
                               1.0 if temperature is None else temperature, 0 if seed is None else seed, translator)
        plan = apply_size(plan, self.device, size, n_blocks, hidden)
        return replace(plan, asked_translator=translator, asked_size=size)

    def _route_pairs(self, plan: PairPlan, split: str, hops: Sequence[Any] | None = None) -> PairData:
        """A distilled plan's pairs: its first hop's inputs of ``split``, each pushed through the route
        (the drawn targets are cached with the features, keyed by everything that determines them)."""
        from .catalog.distilling import split_draw
        from .translators.distill import DRAW_BLOCK, draw_route_pairs, hop_records

        source = plan.from_route
        hops = hops if hops is not None else self.route_hops(source.route)
        inputs = self.training_pairs(source.inputs, split)
        count, seed = split_draw(plan, split)
        expert = self.load_expert(plan.source)
        key_parts = {"role": "route-target", "route": hop_records(hops), "from_route": source.to_dict(),
                     "source": self._expert_meta(plan.source, expert), "count": count, "seed": seed, "split": split,
                     "block": DRAW_BLOCK,
                     "dataset_version": self.catalog.datasets[plan.dataset].version if plan.dataset else None}
        return draw_route_pairs(hops, inputs, count, source.temperature, seed, store=self.features,
                                key_parts=key_parts, progress=self.progress,
                                desc=f"drawing {split} pairs along {' -> '.join(source.route.nodes)}")

    def _run_route(self, route: "Route", inputs: Any, n: int, temperature: float | None, seed: int | None,
                   captions: Sequence[str] | None, pair_options: dict[str, Any]) -> Translation:
        from .spec.inputs import read_inputs
        from .translators.routes import run_route

        source_address = ExpertAddress.parse(route.source)
        batch = read_inputs(route.source_spec, inputs, who=route.source)  # refused before anything trains
        hops = self.route_hops(route, **pair_options)
        last = hops[-1]
        if captions is not None:
            if not hasattr(last, "captions"):
                raise InputError(f"the route ends in an expert hop into {route.target}; captions show a "
                                 "translator's latents")
            last.captions = self.caption_bank(last, captions)
        return run_route(hops, self.load_expert(source_address), source_address, batch, n=n,
                         temperature=temperature, seed=seed)

    def translate(self, source: str | PairPlan | "Route", target: str | None = None, inputs: Any = None, n: int = 1,
                  temperature: float | None = None, seed: int | None = None, *,
                  captions: str | Path | Sequence[str] | None = None, **pair_options: Any) -> Translation:
        """Pair (if needed) and translate ``inputs`` (texts, image files or folders, tensors) in one call.

        ``source`` may be a plan from :meth:`plan` (``target`` omitted); inputs are read and
        checked before anything is trained. ``captions`` (a file or a list of texts) replaces the
        default caption bank of a text target (``info[i]["nearest"]``).
        """
        from .catalog.routes import Route
        from .spec.inputs import read_inputs

        if isinstance(captions, (str, Path)):
            from .translators.captions import read_captions

            captions = read_captions(captions)  # a bad file fails before anything is trained
        if isinstance(source, Route):
            if inputs is None:
                raise InputError("give the inputs to translate")
            if captions is not None and source.target_spec.input_domain != "text":
                raise InputError(f"a caption bank shows text latents, but {source.target} encodes "
                                 f"'{source.target_spec.input_domain}'; drop --captions")
            return self._run_route(source, inputs, n, temperature, seed, captions, pair_options)
        plan = self._plan_of(source, target, data=pair_options.pop("data", None),
                             translator=pair_options.pop("translator", None), size=pair_options.pop("size", None),
                             n_blocks=pair_options.get("n_blocks"), hidden=pair_options.get("hidden"))
        if inputs is None:
            raise InputError("give the inputs to translate")
        batch = read_inputs(plan.source_spec, inputs, who=str(plan.source))
        if captions is not None and plan.target_spec.input_domain != "text":
            raise InputError(f"a caption bank shows text latents, but {plan.target} encodes "
                             f"'{plan.target_spec.input_domain}'; drop --captions")
        t = self.pair(plan, **pair_options)
        if captions is not None:
            t.captions = self.caption_bank(t, captions)
        return t.translate(batch, n=n, temperature=temperature, seed=seed)


    @staticmethod
    def is_main_process() -> bool:
        """False in every process but rank 0 of a ``torchrun`` job: rank 0 speaks for all."""
        from .base.distributed import world

        return world().is_main

    @staticmethod
    def training_cost(translator: Translator) -> ComputeRecord | None:
        """What training ``translator`` took (time, FLOPs, device), from its file's record; None if unrecorded."""
        from .training.compute import ComputeRecord

        record = translator.metadata.get("compute")
        return ComputeRecord(**record) if record else None

    # The faces (CLI, server, notebooks) reach evaluation, diagnosis and publishing through
    # these doors: the hub pairs and gathers the values (translators, held-out data, feature
    # experts, datasets), and the evaluation modules, imported on first use, only compute.

    def held_out(self, translator: Translator) -> HeldOut:
        """The held-out and training pairs of a translator's pair, and the dataset items behind
        them when its recipe's rows are dataset items (what :mod:`n2n_hub.evaluation` measures on)."""
        from .evaluation.metrics import HeldOut

        plan = translator.plan
        if plan is None:
            raise InputError("this translator carries no pair plan; get it from Hub.pair")
        dataset = plan.dataset if (plan.recipe_spec or self.recipe(plan.recipe)).rows_are_items else None
        return HeldOut(self.training_pairs(plan, "test"), self.training_pairs(plan, "train"),
                       self.load_dataset(dataset, "test") if dataset else None,
                       self.load_dataset(dataset, "train") if dataset else None)

    def feature_space(self, features: str | None, target: Expert) -> FeatureSpace | None:
        """The expert whose features of ``target``'s images the evaluation compares: ``features``
        (``id[:tap][@variant]``) if given, else the first of ``PREFERRED_FEATURES`` that loads,
        else the target's own encoder (None for targets that make no images)."""
        from .evaluation.metrics import (PREFERRED_FEATURES, FeatureSpace, check_features,
                                         fits_as_default_features, target_features)

        if features is not None:
            addr = ExpertAddress.parse(features)
            check_features(features, self.expert_spec(features), target)
            return FeatureSpace(str(addr), self.load_expert(addr), addr.tap)
        if target.spec.output_domain != "image":
            return None
        for candidate in PREFERRED_FEATURES:
            addr = ExpertAddress.parse(candidate)
            spec = self.catalog.experts.get(addr.id)
            if spec is None or not fits_as_default_features(spec, target):
                continue
            try:
                expert = self.load_expert(addr)
            except Exception:  # noqa: BLE001 - an unusable candidate just is not the default
                continue
            return FeatureSpace(candidate, expert, addr.tap)
        return target_features(target)

    def evaluate(self, source: str, target: str, *, translator: str | None = None, samples: int | None = None,
                 per_condition: int = 8, features: str | None = None, seed: int = 0, train_if_missing: bool = True,
                 **pair_options: Any) -> Evaluation:
        """Pair ``source -> target`` (cache, or train) and measure it on held-out data
        (see :mod:`n2n_hub.evaluation.metrics`)."""
        from .evaluation.metrics import evaluate_translator

        t = self.pair(source, target, translator=translator, train_if_missing=train_if_missing, **pair_options)
        feats = self.feature_space(features, t.target)
        return evaluate_translator(t, self.held_out(t), features=feats, samples=samples,
                                   per_condition=per_condition, seed=seed)

    def evaluate_prompts(self, source: str, target: str, prompts: str | Path, *, n: int = 16,
                         temperature: float | None = None, seed: int = 0, train_if_missing: bool = True,
                         translator: str | None = None, **pair_options: Any) -> PromptEvaluation:
        """Read the prompt file ``prompts``, pair ``source -> target`` (cache, or train) and score the
        prompts per class and kind (see :mod:`n2n_hub.evaluation.prompts`)."""
        from .evaluation.prompts import check_prompt_source, evaluate_prompts, read_prompts

        rows = read_prompts(prompts)
        check_prompt_source(source, self.expert_spec(source))  # before pairing, which may train
        t = self.pair(source, target, translator=translator, train_if_missing=train_if_missing, **pair_options)
        dataset = self.catalog.datasets.get(t.plan.dataset) if t.plan is not None and t.plan.dataset else None
        return evaluate_prompts(t, rows, self.held_out(t), dataset=dataset, n=n, temperature=temperature, seed=seed)

    def diagnose(self, sources: str | Sequence[str], target: str, layers: Sequence[str] | str | None = None, *,
                 steps: int | None = None, samples: int | None = None, per_condition: int = 8,
                 features: str | None = None, seed: int = 0, figure: str | Path | None = None, inputs: int = 8,
                 cinn_rows: int = 3, kinds: Sequence[str] | None = None, train_if_missing: bool = True) -> Diagnosis:
        """What each layer of one or more source models knows about ``target``: per model and tap a
        cINN, an MLP and a closed-form linear translator, paired (cache, or train) and evaluated,
        with the tap's linear CKA; ``figure`` draws Fig. S4 (see :mod:`n2n_hub.evaluation.diagnosis`).

        ``layers``: tap names (with several models, each takes those it has; a tap no model
        has is an error), ``"all"`` (each model's every tap), or None (``early, middle, last``
        where a model has them, else all its taps). Evaluations are kept under
        ``<home>/evaluations``, so a model added later costs only its own cells.
        """
        from .evaluation.cells import CellCache
        from .evaluation.diagnosis import KINDS, check_figure_path, diagnose_cells, layer_addresses, taps_of_each

        check_figure_path(figure)
        names = [sources] if isinstance(sources, str) else list(sources)
        if not names:
            raise InputError("name at least one source model to diagnose")
        if len({str(ExpertAddress.parse(n)) for n in names}) != len(names):
            raise InputError(f"a source model is named twice: {' '.join(names)}")
        kinds = list(KINDS if kinds is None else kinds)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds or kinds[0] != "cinn" or len(set(kinds)) != len(kinds):
            raise InputError(f"diagnosis kinds are cinn first, then any of {', '.join(KINDS[1:])}, each once; "
                             f"got {','.join(kinds) or 'none'}")
        specs = {name: self.expert_spec(name) for name in names}
        addresses = []
        for name, spec in specs.items():
            model = resolve_variant(spec, ExpertAddress.parse(name))  # `segmenter` is `segmenter@animals`
            addresses += layer_addresses(str(model) if model.tap is None else name,
                                         taps_of_each(layers, spec, specs), spec)
        target_spec = self.expert_spec(target)
        if figure is not None and not (target_spec.can_decode and target_spec.output_domain == "image"):
            raise InputError(f"-o {figure}: the figure shows decoded images, and {target} does not decode into "
                             "images; leave -o out (the table does not need it)")
        # every cell is planned once, before anything trains: a bad tap or target fails at once, and a
        # baseline that cannot serve a tap is skipped when its turn comes (the table notes why)
        plans: dict[tuple[str, str], PairPlan | InputError] = {}
        for address in addresses:
            for kind in kinds:
                try:
                    plans[(address, kind)] = self.plan(address, target, translator=kind)
                except InputError as e:
                    if kind == kinds[0]:
                        raise
                    plans[(address, kind)] = e
        step_options: dict[str, Any] = {"steps": steps} if steps is not None else {}

        def pair(address: str, kind: str) -> Translator:
            plan = plans[(address, kind)]
            if isinstance(plan, InputError):
                raise plan
            closed_form = fits_closed_form(get_kind(kind).cls)  # solved once: it takes no steps
            return self.pair(plan, train_if_missing=train_if_missing, **({} if closed_form else step_options))

        return diagnose_cells([str(ExpertAddress.parse(n)) for n in names], addresses, target, pair, self.held_out,
                              lambda t: self.feature_space(features, t.target),
                              CellCache(self.home / "evaluations", log=self._log), kinds=kinds, samples=samples,
                              per_condition=per_condition, seed=seed, figure=Path(figure) if figure else None,
                              inputs=inputs, cinn_rows=cinn_rows, log=self._log)

    def publish(self, key: str, out_dir: str | Path, **options: Any) -> Publication:
        """Write the cached translator ``key``, its model card and its registry snippet
        (see :func:`n2n_hub.translators.publish.publish`)."""
        from .translators.publish import publish

        return publish(self.cache, key, out_dir, specs=self._card_specs, **options)

    def card(self, key: str | Path) -> str:
        """The model card (``README.md`` text, see :mod:`n2n_hub.translators.card`) of the cached
        translator whose key starts with ``key``, or of the translator file at a :class:`Path`."""
        from .translators import file as translator_file
        from .translators.card import model_card
        from .translators.publish import find_cached

        path = key if isinstance(key, Path) else find_cached(self.cache, key).path
        meta = translator_file.read_metadata(path)
        return model_card(meta, *self._card_specs(meta))

    def _card_specs(self, meta: Mapping[str, Any]) -> tuple[ExpertSpec | None, ExpertSpec | None, DatasetSpec | None]:
        """The specs a translator's card is written from; None for what no installed plugin registers."""
        def spec(role: str) -> ExpertSpec | None:
            try:
                return self.expert_spec(str((meta.get(role) or {})["address"]))
            except (N2NError, KeyError):
                return None

        dataset = (meta.get("recipe") or {}).get("dataset")
        return spec("source"), spec("target"), self.catalog.datasets.get(dataset) if dataset else None


__all__ = ["Hub", "CacheError", "IntegrityError", "ShapeError", "UnknownExpertError"]
