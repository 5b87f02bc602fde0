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

from ..spec.components import BridgeSpec
from ..errors import IncompatiblePairError, PluginError, UnknownExpertError
from ..spec.expert import ExpertAddress, ExpertSpec
from ..spec.kinds import get_kind
from .host import Catalog
from .registry import PairEntry, Registry

DECODE_COST = 10.0  # rendering the target is expensive; prefer what its prior already tells

SIZES = ("small", "medium", "paper")
FEW_PAIRS = 5_000  # below this a large flow only overfits, whatever the device


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
    dim = plan.target_spec.latent.numel if plan.target_spec.latent is not None else 0
    flow = dict(plan.flow)
    if size is not None:
        flow.update(size_flow(size, dim))
        sizing = f"size '{size}' (asked for)"
    elif {"n_blocks", "hidden"} & set(flow):
        sizing = f"the size of registry entry '{plan.entry.name}'" if plan.entry else "the given size"
    elif not get_kind(plan.translator).sized:
        sizing = f"the {plan.translator} translator's default size"
    else:
        if plan.recipe == "target-prior":
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
    """How a pair will be trained. ``source``/``target`` have their variants resolved."""

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

    @property
    def label(self) -> str:
        return f"{self.source}--{self.target}"

    def explain(self) -> str:
        chain = " -> ".join([self.start_domain] + [f"[{b.id}] {b.to_domain}" for b in self.bridges])
        if self.recipe not in ("dataset", "target-prior"):
            data = f"dataset '{self.dataset}'" if self.dataset else "no dataset"
            how = f"{data}{', options ' + str(self.options) if self.options else ''}"
        elif self.recipe == "dataset":
            data = f"dataset '{self.dataset}'" if self.dataset else f"your data at {self.data_path}"
            how = (f"{data}: the target encodes its '{self.target_spec.input_domain}', "
                   f"the source encodes {chain}")
        else:
            how = f"samples from {self.target}'s prior ({self.target_spec.prior}); the source encodes {chain}"
        if self.options and self.recipe in ("dataset", "target-prior"):
            how += f"; options {self.options}"
        origin = f" (registry entry '{self.entry.name}')" if self.entry else ""
        size = ""
        if self.sizing and get_kind(self.translator).sized:
            f = self.flow
            size = (f"; flow: {f.get('n_blocks', 20)} blocks, hidden {f.get('hidden', 'default')}, "
                    f"depth {f.get('depth', 3)} ({self.sizing})")
        return f"{self.source} -> {self.target}: recipe '{self.recipe}'{origin}; {how}{size}"

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
    if not tgt_spec.can_decode:
        raise IncompatiblePairError(f"{tgt_addr} cannot be a target: it has no decoder, so translations into "
                                    "its representation could not be turned into outputs")
    goal = src_spec.input_domain
    assert goal is not None
    entry = registry.find(src_addr, tgt_addr)
    common: dict[str, Any] = {}
    if entry is not None:
        common = dict(entry=entry, pairs_per_item=entry.pairs_per_item, samples=entry.samples, seed=entry.seed,
                      batch_size=entry.batch_size, translator=entry.translator, flow=dict(entry.flow),
                      training=dict(entry.training))
    if translator is not None:
        common["translator"] = translator
    where = f"registry entry '{entry.name}' ({entry.origin})" if entry else ""
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
        return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, "dataset", dom, found[1], data_path=path.resolve(),
                        entry=None, **{k: v for k, v in common.items()})

    if entry is not None and entry.recipe not in ("dataset", "target-prior"):
        return _plugin_recipe_plan(catalog, entry, src_addr, tgt_addr, src_spec, tgt_spec, where, common)

    if entry is not None and entry.recipe == "dataset":
        ds = catalog.datasets.get(entry.dataset or "")
        if ds is None:
            raise IncompatiblePairError(f"{where} needs dataset {entry.dataset!r}, which no loaded plugin registers "
                                        f"(known: {', '.join(sorted(catalog.datasets)) or 'none'})")
        if tgt_spec.input_domain not in ds.domains:
            raise IncompatiblePairError(f"{where}: dataset {ds.id!r} has {list(ds.domains)}, but {tgt_addr} "
                                        f"encodes '{tgt_spec.input_domain}'")
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
        return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, "dataset", start, chain, dataset=ds.id, **common)

    if not tgt_spec.can_sample:
        raise IncompatiblePairError(
            f"cannot make training pairs for {src_addr} -> {tgt_addr}: no registry recipe names this pair, and "
            f"{tgt_addr} has no prior to sample from. Pass --data with items both experts can read "
            f"({tgt_addr} encodes '{tgt_spec.input_domain}'), or add a [pairs.NAME] entry with a dataset recipe "
            "to a registry file (`n2n-hub pairs` shows the known ones).")
    starts = {d: 0.0 for d in tgt_spec.prior_domains}
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
    return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, "target-prior", start, chain, **common)


def _plugin_recipe_plan(catalog: Catalog, entry: PairEntry, src_addr: ExpertAddress, tgt_addr: ExpertAddress,
                        src_spec: ExpertSpec, tgt_spec: ExpertSpec, where: str, common: dict[str, Any]) -> PairPlan:
    """A plan for a registered recipe other than the two the resolver knows in detail."""
    recipe = catalog.recipes.get(entry.recipe)
    if recipe is None:
        raise IncompatiblePairError(f"{where} names recipe {entry.recipe!r}, which no loaded plugin registers "
                                    f"(known: {', '.join(sorted(catalog.recipes)) or 'none'})")
    if entry.dataset is not None and entry.dataset not in catalog.datasets:
        raise IncompatiblePairError(f"{where} needs dataset {entry.dataset!r}, which no loaded plugin registers "
                                    f"(known: {', '.join(sorted(catalog.datasets)) or 'none'})")
    if recipe.needs_dataset and entry.dataset is None:
        raise IncompatiblePairError(f"{where}: recipe {recipe.id!r} needs 'dataset = \"<dataset id>\"'")
    return PairPlan(src_addr, tgt_addr, src_spec, tgt_spec, entry.recipe, src_spec.input_domain or "",
                    dataset=entry.dataset, **common)
