"""Pair resolution: can these two experts be paired, and how are their training pairs made?

Everything here works from specs alone (no expert is loaded), so an impossible pair is
explained before anything expensive happens.
"""

from __future__ import annotations

import difflib
import heapq
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..spec.components import BridgeSpec, RecipeSpec
from ..errors import IncompatiblePairError, PluginError, UnknownExpertError
from ..spec.expert import ExpertAddress, ExpertSpec
from ..spec.kinds import get_kind
from .builtin_recipes import FOR_UNNAMED_PAIRS, FOR_USER_DATA
from .host import Catalog
from .registry import PairEntry, Registry

DECODE_COST = 10.0  # rendering the target is expensive; prefer what its prior already tells

SIZES = ("small", "medium", "paper")
FEW_PAIRS = 5_000  # below this a large flow only overfits, whatever the device


def target_dim(spec: ExpertSpec) -> int:
    """Dimensions of what a translation into ``spec`` is: its latent, or, for an expert that only
    encodes, its representation."""
    rep = spec.latent if spec.latent is not None else spec.representation
    return rep.numel if rep is not None else 0


def size_flow(preset: str, dim: int) -> dict[str, int]:
    """The cINN's size for a preset and a target of ``dim`` dimensions.

    ``paper`` is Table S3 (20 blocks, subnets of 8·D with 3 hidden layers: hours on a CPU);
    ``small`` trains in about a minute on one CPU core; ``medium`` lies between.
    """
    if preset == "small":
        return {"n_blocks": 4, "hidden": min(max(2 * dim, 64), 256), "depth": 2}
    if preset == "medium":
        return {"n_blocks": 8, "hidden": min(max(4 * dim, 128), 512), "depth": 2}
    if preset == "paper":
        return {"n_blocks": 20, "hidden": 8 * dim, "depth": 3}
    from ..errors import InputError

    raise InputError(f"unknown size {preset!r}; use one of {', '.join(SIZES)}")


def choose_size(dim: int, pairs: int | None, device: str) -> tuple[str, str]:
    """``(preset, why)`` for a pair without a sized registry entry: small on a CPU or with
    few pairs, the paper's size on a GPU with enough data."""
    on_gpu = str(device).startswith("cuda")
    data = f"{pairs} pairs" if pairs is not None else "the data"
    if pairs is not None and pairs < FEW_PAIRS:
        return "small", f"{data} are few for a larger flow"
    if on_gpu:
        return "paper", f"a {dim}-d target, {data}, device {device}"
    return "small", f"a {dim}-d target on the CPU (use --size medium or paper on a GPU)"


def _count_items(path: Path) -> int | None:
    """Items in ``--data`` (images in a folder, lines of a text file), cheaply; None if unknown."""
    try:
        if path.is_dir():
            from ..base.inputs import IMAGE_SUFFIXES

            return sum(1 for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        return sum(1 for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())
    except (OSError, UnicodeDecodeError):
        return None


def apply_size(plan: "PairPlan", device: str = "cpu", size: str | None = None,
               n_blocks: int | None = None, hidden: int | None = None) -> "PairPlan":
    """Fill in the flow's size: explicit ``n_blocks``/``hidden`` win, then a ``size`` preset,
    then the registry entry's flow, else a size chosen from the target, the data and the device."""
    dim = target_dim(plan.target_spec)
    flow = dict(plan.flow)
    if size is not None:
        flow.update(size_flow(size, dim))
        sizing = f"size '{size}' (asked for)"
    elif {"n_blocks", "hidden"} & set(flow):
        sizing = f"the size of registry entry '{plan.entry.name}'" if plan.entry else "the given size"
    elif not get_kind(plan.translator).sized:
        sizing = f"the {plan.translator} translator's default size"
    else:
        if plan.recipe_spec is not None and plan.recipe_spec.samples_prior or plan.from_route is not None:
            pairs: int | None = plan.samples
        elif plan.data_path is not None:
            pairs = _count_items(plan.data_path)
            pairs = pairs * plan.pairs_per_item if pairs is not None else None
        else:
            pairs = None
        preset, why = choose_size(dim, pairs, device)
        flow = {**size_flow(preset, dim), **flow}
        sizing = f"size '{preset}' chosen for {why}"
    if n_blocks is not None:
        flow["n_blocks"] = n_blocks
    if hidden is not None:
        flow["hidden"] = hidden
    if n_blocks is not None or hidden is not None:
        sizing += ", with " + ", ".join(f"{k}={v}" for k, v in (("n_blocks", n_blocks), ("hidden", hidden))
                                         if v is not None) + " given"
    return replace(plan, flow=flow, sizing=sizing)


@dataclass(frozen=True)
class PairPlan:
    """How a pair will be trained, worked out from specs alone: ``Hub.plan(source, target)`` makes it.

    Pass it on instead of the two addresses (``Hub.pair(plan)``, ``Hub.translate(plan, inputs=...)``,
    ``Hub.transfer(plan, exemplars=...)``) and the pair is not planned again.

    Attributes:
        source, target: the experts' addresses, variants resolved (``bert@all-minilm-l6-v2``).
        source_spec, target_spec: their :class:`~n2n_hub.ExpertSpec`.
        recipe: the id of the recipe that makes training pairs; ``recipe_spec`` is the recipe itself.
        start_domain, bridges: where the source's inputs start and the bridges that carry them
            into the source's input domain (``label -> [label-caption] text``).
        target_start, target_bridges: the same for the target's inputs, where the recipe bridges
            them (a sentence encoder as the target of image items: ``label -> [label-prose] text``).
        dataset, data_path: the registered dataset, or the user's ``--data`` folder or file.
        entry: the registry entry that named the pair, if any.
        pairs_per_item, samples, seed, batch_size: how many pairs the recipe makes and how.
        translator: the translator kind (``cinn``, ``mlp``, ...).
        flow, training: the module's and the trainer's settings from the entry and the size preset.
        options: the recipe's settings (``[pairs.NAME.options]``).
        sizing: why the flow has its size.
        asked_translator, asked_size: what the caller asked for explicitly (not part of the record).
        from_route: for a translator distilled from a route, the route and the plan of its first hop
            (a :class:`~n2n_hub.catalog.distilling.FromRoute`; ``samples`` and ``seed`` are its draws).
    ``to_dict()`` is the plan's record (it enters the translator's key); ``explain()`` is one line.
    """

    source: ExpertAddress
    target: ExpertAddress
    source_spec: ExpertSpec
    target_spec: ExpertSpec
    recipe: str
    start_domain: str
    bridges: tuple[BridgeSpec, ...] = ()
    dataset: str | None = None
    data_path: Path | None = None
    entry: PairEntry | None = None
    pairs_per_item: int = 1
    samples: int = 50_000
    seed: int = 0
    batch_size: int = 256
    translator: str = "cinn"
    flow: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # the recipe's settings (registry [options])
    sizing: str = ""  # why the flow has its size (see apply_size)
    # What the caller asked for, beside what was resolved: an explicit kind or size makes
    # `Hub.pair` pick a translator for these settings instead of the pair's current one.
    asked_translator: str | None = None
    asked_size: str | None = None
    # What the recipe declares about its pairs (see RecipeSpec); not part of the plan's record.
    recipe_spec: RecipeSpec | None = None
    target_start: str | None = None
    target_bridges: tuple[BridgeSpec, ...] = ()
    from_route: Any = None  # a FromRoute (catalog.distilling, which imports this module)

    @property
    def label(self) -> str:
        return f"{self.source}--{self.target}"

    def explain(self) -> str:
        size = ""
        if self.sizing and get_kind(self.translator).sized:
            f = self.flow
            size = (f"; flow: {f.get('n_blocks', 20)} blocks, hidden {f.get('hidden', 'default')}, "
                    f"depth {f.get('depth', 3)} ({self.sizing})")
        if self.from_route is not None:
            return f"{self.from_route.explain(self)}{size}"
        chain = " -> ".join([self.start_domain] + [f"[{b.id}] {b.to_domain}" for b in self.bridges])
        spec = self.recipe_spec
        if spec is None or not spec.bridged_source:
            data = f"dataset '{self.dataset}'" if self.dataset else "no dataset"
            how = f"{data}{', options ' + str(self.options) if self.options else ''}"
        elif not spec.samples_prior:
            data = f"dataset '{self.dataset}'" if self.dataset else f"your data at {self.data_path}"
            if self.target_start is not None:
                tchain = " -> ".join([self.target_start] + [f"[{b.id}] {b.to_domain}" for b in self.target_bridges])
                reads = f"the target encodes {tchain}"
            else:
                reads = f"the target encodes its '{self.target_spec.input_domain}'"
            how = f"{data}: {reads}, the source encodes {chain}"
        else:
            how = f"samples from {self.target}'s prior ({self.target_spec.prior}); the source encodes {chain}"
        if self.options and spec is not None and spec.bridged_source:
            how += f"; options {self.options}"
        origin = f" (registry entry '{self.entry.name}')" if self.entry else ""
        latents = "" if self.target_spec.can_decode else (
            f"; translations are {self.target}'s encodings (it has no decoder: write them with "
            "-o FILE.safetensors or --json)")
        return f"{self.source} -> {self.target}: recipe '{self.recipe}'{origin}; {how}{size}{latents}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source), "target": str(self.target), "recipe": self.recipe,
            "start_domain": self.start_domain, "bridges": [b.id for b in self.bridges],
            "bridge_versions": [b.version for b in self.bridges],
            "dataset": self.dataset, "data_path": str(self.data_path) if self.data_path else None,
            "registry_entry": self.entry.name if self.entry else None, "pairs_per_item": self.pairs_per_item,
            "samples": self.samples, "seed": self.seed, "translator": self.translator,
            "flow": self.flow, "training": self.training, "sizing": self.sizing,
            **({"options": self.options} if self.options else {}),  # absent when empty: older keys stay valid
            **({"target_start": self.target_start, "target_bridges": [b.id for b in self.target_bridges],
                "target_bridge_versions": [b.version for b in self.target_bridges]}
               if self.target_start is not None else {}),
            **({"from_route": self.from_route.to_dict()} if self.from_route is not None else {}),
        }


def lookup_spec(catalog: Catalog, address: ExpertAddress) -> ExpertSpec:
    """The spec for ``address.id``, or an error with suggestions."""
    key = f"expert:{address.id}"
    if key in catalog.conflicts:
        raise PluginError(f"expert id {address.id!r} is registered by several plugins: "
                          f"{', '.join(catalog.conflicts[key])}; uninstall one of them")
    if address.id not in catalog.experts:
        close = difflib.get_close_matches(address.id, list(catalog.experts), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(sorted(catalog.experts)) or "none (no plugin loaded)"
        raise UnknownExpertError(f"unknown expert {address.id!r}.{hint} Known experts: {known}. "
                                 "`n2n-hub experts` lists them; `n2n-hub plugins` shows plugins that failed to load.")
    spec = catalog.experts[address.id]
    if address.variant is not None and spec.variant_spec:
        spec = variant_spec(spec, resolve_variant(spec, address))
    if address.tap is not None:
        spec.tap_representation(address.tap)
    return spec


def variant_spec(spec: ExpertSpec, address: ExpertAddress) -> ExpertSpec:
    """The spec of the variant ``address`` names, from the expert's ``variant_spec`` hook.

    For experts whose taps and shapes depend on the variant (a model zoo): the hook is
    imported now, not at registration, and what it returns is checked like a registered spec.
    """
    from ..spec.boundary import call_plugin
    from ..spec.expert import import_object

    hook = call_plugin(spec, "import", import_object, spec.variant_spec)
    out = call_plugin(spec, "variant_spec", hook, spec, address)
    if not isinstance(out, ExpertSpec) or out.id != spec.id:
        got = f"a spec with id {out.id!r}" if isinstance(out, ExpertSpec) else f"a {type(out).__name__}"
        raise PluginError(f"expert {spec.id!r} (plugin {spec.plugin!r}): variant_spec returned {got}, "
                          f"expected an ExpertSpec with id {spec.id!r}")
    try:
        out.validate()
    except PluginError as e:
        raise PluginError(f"expert {spec.id!r} (plugin {spec.plugin!r}): the spec of variant "
                          f"{address.variant!r} is invalid: {e}") from None
    return replace(out, plugin=spec.plugin)


def resolve_variant(spec: ExpertSpec, address: ExpertAddress) -> ExpertAddress:
    """Fill in the default variant, and check a given one is something the expert accepts."""
    variant = address.variant
    if variant is None:
        return replace(address, variant=spec.default_variant)
    if spec.variant(variant) is not None:
        return address
    looks_like_path = variant.startswith(("/", ".", "~")) or Path(variant).expanduser().exists()
    if looks_like_path and spec.accepts_paths:
        return replace(address, variant=str(Path(variant).expanduser().resolve()))
    if not looks_like_path and spec.accepts_hub_ids:
        return address
    names = ", ".join(v.name for v in spec.variants) or "none"
    also = [w for w, ok in (("a local path", spec.accepts_paths), ("a Hugging Face id", spec.accepts_hub_ids)) if ok]
    raise UnknownExpertError(f"expert {spec.id!r} has no variant {variant!r}; named variants: {names}"
                             + (f"; it also accepts {' or '.join(also)}" if also else ""))


def find_bridge_chain(catalog: Catalog, starts: dict[str, float], goal: str) -> tuple[str, tuple[BridgeSpec, ...]] | None:
    """Cheapest chain of bridges from any start domain (with its entry cost) to ``goal``."""
    heap: list[tuple[float, int, str, str, tuple[BridgeSpec, ...]]] = []
    counter = 0
    for dom, cost in starts.items():
        heapq.heappush(heap, (cost, counter, dom, dom, ()))
        counter += 1
    seen: set[str] = set()
    while heap:
        cost, _, dom, start, chain = heapq.heappop(heap)
        if dom == goal:
            return start, chain
        if dom in seen:
            continue
        seen.add(dom)
        for b in sorted(catalog.bridges.values(), key=lambda b: b.id):
            if b.from_domain == dom and b.to_domain not in seen:
                counter += 1
                heapq.heappush(heap, (cost + b.cost, counter, b.to_domain, start, chain + (b,)))
    return None


def _explicit_chain(catalog: Catalog, ids: tuple[str, ...], start: str, goal: str, where: str) -> tuple[BridgeSpec, ...]:
    chain = []
    dom = start
    for bid in ids:
        if bid not in catalog.bridges:
            raise IncompatiblePairError(f"{where} names bridge {bid!r}, which no loaded plugin registers "
                                        f"(known: {', '.join(sorted(catalog.bridges)) or 'none'})")
        b = catalog.bridges[bid]
        if b.from_domain != dom:
            raise IncompatiblePairError(f"{where}: bridge {bid!r} converts {b.from_domain} but receives {dom}")
        chain.append(b)
        dom = b.to_domain
    if dom != goal:
        raise IncompatiblePairError(f"{where}: its bridges end in '{dom}', but the source encodes '{goal}'")
    return tuple(chain)


def data_domain(path: Path) -> str:
    """The domain of user data: a folder of images, or a text file with one input per line."""
    if path.is_dir():
        return "image"
    if path.is_file() and path.suffix.lower() in (".txt", ".text"):
        return "text"
    from ..errors import InputError

    raise InputError(f"--data {path} must be a folder of images or a .txt file with one text per line")


def resolve_pair(catalog: Catalog, registry: Registry, source: str, target: str,
                 data: str | Path | None = None, translator: str | None = None) -> PairPlan:
    """Check that ``source`` can be translated into ``target`` and choose the recipe."""
    src_addr, tgt_addr = ExpertAddress.parse(source), ExpertAddress.parse(target)
    src_spec, tgt_spec = lookup_spec(catalog, src_addr), lookup_spec(catalog, tgt_addr)
    if tgt_addr.tap is not None:
        raise IncompatiblePairError(f"the target {tgt_addr} names a tap; taps select what a source encodes")
    src_addr, tgt_addr = resolve_variant(src_spec, src_addr), resolve_variant(tgt_spec, tgt_addr)
    if not src_spec.can_encode:
        raise IncompatiblePairError(f"{src_addr} cannot be a source: it does not encode anything "
                                    f"(it {'only decodes ' + str(src_spec.output_domain) if src_spec.can_decode else 'has no encoder'})")
    if not tgt_spec.can_decode and not tgt_spec.can_encode:
        raise IncompatiblePairError(f"{tgt_addr} cannot be a target: it neither encodes nor decodes, so there "
                                    "is nothing to translate into")
    goal = src_spec.input_domain
    assert goal is not None
    entry = registry.find(src_addr, tgt_addr)
    if entry is None and data is None:
        _no_silent_fallback(catalog, src_addr, tgt_addr)
    common: dict[str, Any] = {}
    if entry is not None:
        common = dict(entry=entry, pairs_per_item=entry.pairs_per_item, samples=entry.samples, seed=entry.seed,
                      batch_size=entry.batch_size, translator=entry.translator, flow=dict(entry.flow),
                      training=dict(entry.training))
    if translator is not None:
        common["translator"] = translator
    where = f"registry entry '{entry.name}' ({entry.origin})" if entry else ""
    if entry is not None and (entry.target_from or entry.target_bridges is not None) \
            and entry.recipe in catalog.recipes and not catalog.recipes[entry.recipe].bridged_target:
        raise IncompatiblePairError(f"{where}: recipe {entry.recipe!r} does not bridge the target's inputs; drop "
                                    "target_from / target_bridges or name a recipe with bridged_target (`dataset`)")
    if entry is not None and entry.recipe in catalog.recipes:
        catalog.recipes[entry.recipe].check_options(entry.options, where)
        common["options"] = dict(entry.options)

    if data is not None:
        path = Path(data).expanduser()
        dom = data_domain(path)
        if tgt_spec.input_domain != dom:
            raise IncompatiblePairError(
                f"--data holds '{dom}' but {tgt_addr} encodes '{tgt_spec.input_domain}': with --data both experts "
                "must be able to read the same items")
        found = find_bridge_chain(catalog, {dom: 0.0}, goal)
        if found is None:
            raise IncompatiblePairError(f"--data holds '{dom}' and {src_addr} encodes '{goal}', and no bridge "
                                        f"converts {dom} into {goal}")
        common.pop("entry", None)
        common.pop("options", None)  # the entry's recipe settings are for its own data
        recipe = registered_recipe(catalog, FOR_USER_DATA, "--data")
        return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, recipe.id, dom, found[1], data_path=path.resolve(),
                        entry=None, recipe_spec=recipe, **{k: v for k, v in common.items()})

    recipe = registered_recipe(catalog, entry.recipe if entry is not None else FOR_UNNAMED_PAIRS, where)
    common["recipe_spec"] = recipe
    if entry is not None and not recipe.bridged_source:
        return _own_condition_plan(catalog, recipe, entry, src_addr, tgt_addr, src_spec, tgt_spec, where, common)

    if entry is not None and not recipe.samples_prior:
        if entry.dataset is None:
            raise IncompatiblePairError(f"{where}: recipe {recipe.id!r} needs 'dataset = \"<dataset id>\"'")
        ds = catalog.datasets.get(entry.dataset)
        if ds is None:
            raise IncompatiblePairError(f"{where} needs dataset {entry.dataset!r}, which no loaded plugin registers "
                                        f"(known: {', '.join(sorted(catalog.datasets)) or 'none'})")
        target_side = _target_chain(catalog, recipe, entry, ds.domains, tgt_addr, tgt_spec, where)
        start = entry.source_from or (goal if goal in ds.domains else None)
        if start is not None and start not in ds.domains:
            raise IncompatiblePairError(f"{where}: source_from {start!r} is not among dataset {ds.id!r}'s domains {list(ds.domains)}")
        if entry.bridges is not None and start is not None:
            chain = _explicit_chain(catalog, entry.bridges, start, goal, where)
        else:
            found = find_bridge_chain(catalog, {start: 0.0} if start else {d: 0.0 for d in ds.domains}, goal)
            if found is None:
                raise IncompatiblePairError(f"{where}: no bridge turns dataset {ds.id!r}'s {list(ds.domains)} into '{goal}'")
            start, chain = found
        return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, recipe.id, start, chain, dataset=ds.id,
                        **target_side, **common)

    if not tgt_spec.can_sample:
        raise IncompatiblePairError(
            f"cannot make training pairs for {src_addr} -> {tgt_addr}: no registry recipe names this pair, and "
            f"{tgt_addr} has no prior to sample from. Pass --data with items both experts can read "
            f"({tgt_addr} encodes '{tgt_spec.input_domain}'), or add a [pairs.NAME] entry with a dataset recipe "
            "to a registry file (`n2n-hub pairs` shows the known ones).")
    starts = {d: 0.0 for d in tgt_spec.prior_domains}
    if tgt_spec.can_decode:
        starts.setdefault(tgt_spec.output_domain, DECODE_COST)  # type: ignore[arg-type]
    if entry is not None and entry.bridges is not None:
        first = entry.bridges[0] if entry.bridges else None
        start = catalog.bridges[first].from_domain if first in catalog.bridges else goal
        if start not in starts:
            raise IncompatiblePairError(f"{where}: the first bridge reads '{start}', but {tgt_addr}'s prior "
                                        f"gives {sorted(starts)}")
        chain = _explicit_chain(catalog, entry.bridges, start, goal, where)
    else:
        found = find_bridge_chain(catalog, starts, goal)
        if found is None:
            raise IncompatiblePairError(
                f"cannot make training pairs for {src_addr} -> {tgt_addr}: samples of {tgt_addr}'s prior give "
                f"{sorted(starts)}, {src_addr} encodes '{goal}', and no loaded bridge connects them. "
                f"Install a plugin with a bridge into '{goal}', or pass --data.")
        start, chain = found
    return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, recipe.id, start, chain, **common)


def _target_chain(catalog: Catalog, recipe: RecipeSpec, entry: PairEntry, domains: tuple[str, ...],
                  tgt_addr: ExpertAddress, tgt_spec: ExpertSpec, where: str) -> dict[str, Any]:
    """Where the target's inputs start in the dataset and the bridges that carry them (empty: read as they are)."""
    goal = tgt_spec.input_domain
    if goal is None:
        raise IncompatiblePairError(f"{where}: {tgt_addr} does not encode, so dataset items cannot give its latents; "
                                    "name a recipe that samples its prior")
    if entry.target_from is None and entry.target_bridges is None:
        if goal in domains:
            return {}
        if not recipe.bridged_target:
            raise IncompatiblePairError(f"{where}: the dataset has {list(domains)}, but {tgt_addr} encodes '{goal}'")
    start = entry.target_from
    if start is not None and start not in domains:
        raise IncompatiblePairError(f"{where}: target_from {start!r} is not among the dataset's domains "
                                    f"{list(domains)}")
    if entry.target_bridges is not None and start is not None:
        chain = _explicit_chain(catalog, entry.target_bridges, start, goal, where + " (target_bridges)")
    else:
        found = find_bridge_chain(catalog, {start: 0.0} if start else {d: 0.0 for d in domains}, goal)
        if found is None:
            raise IncompatiblePairError(f"{where}: no bridge turns the dataset's {list(domains)} into '{goal}', "
                                        f"which {tgt_addr} encodes; add target_bridges or a bridge plugin")
        start, chain = found
    return {"target_start": start, "target_bridges": chain}


def _no_silent_fallback(catalog: Catalog, src: ExpertAddress, tgt: ExpertAddress) -> None:
    """A plugin's entry for this pair was refused: say so, instead of planning the pair another way."""
    def same(raw: str | None, addr: ExpertAddress) -> bool:
        try:
            want = ExpertAddress.parse(raw) if raw else None
        except Exception:  # noqa: BLE001 - an unparsable address matches nothing
            return False
        return want is not None and want.id == addr.id and want.variant in (None, addr.variant) \
            and want.tap == addr.tap

    for refused in catalog.refused_pairs:
        if same(refused.source, src) and same(refused.target, tgt):
            raise IncompatiblePairError(
                f"plugin {refused.plugin!r} registers [pairs.{refused.name}] for {src} -> {tgt}, but the hub "
                f"refused it: {refused.reason}. Fix the plugin (`n2n-hub plugins` lists its problems), or pass "
                "--data / add a registry entry to pair them another way")


def registered_recipe(catalog: Catalog, recipe_id: str, where: str) -> RecipeSpec:
    """The recipe a plan uses, or an error naming the registered ones."""
    recipe = catalog.recipes.get(recipe_id)
    if recipe is None:
        raise IncompatiblePairError(f"{where or 'this pair'} names recipe {recipe_id!r}, which no loaded plugin "
                                    f"registers (known: {', '.join(sorted(catalog.recipes)) or 'none'})")
    return recipe


def _own_condition_plan(catalog: Catalog, recipe: RecipeSpec, entry: PairEntry, src_addr: ExpertAddress,
                        tgt_addr: ExpertAddress, src_spec: ExpertSpec, tgt_spec: ExpertSpec, where: str,
                        common: dict[str, Any]) -> PairPlan:
    """A plan for a recipe that makes its conditions itself: it only needs to know the dataset."""
    if entry.dataset is not None and entry.dataset not in catalog.datasets:
        raise IncompatiblePairError(f"{where} needs dataset {entry.dataset!r}, which no loaded plugin registers "
                                    f"(known: {', '.join(sorted(catalog.datasets)) or 'none'})")
    if recipe.samples_prior and not tgt_spec.can_sample:
        raise IncompatiblePairError(f"{where}: recipe {recipe.id!r} samples {tgt_addr}'s prior, but {tgt_addr} "
                                    "has none; name a recipe that reads a dataset")
    if recipe.needs_dataset and entry.dataset is None:
        raise IncompatiblePairError(f"{where}: recipe {recipe.id!r} needs 'dataset = \"<dataset id>\"'")
    return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, entry.recipe, src_spec.input_domain or "",
                    dataset=entry.dataset, **common)
