"""Routes: translating A into C through other experts when no recipe joins them directly.

The experts are the nodes of a graph, by address (``vaegan@animals``, ``segmenter:last@animals``).
Its links are of two kinds:

- a **translator** A → B: a registry entry or a cached translator, a cINN that samples its own
  residual. It costs nothing when cached, else its training steps.
- an **expert** link B → C: B decodes into the domain C encodes (an image), and C encodes it.
  It costs one decode.

``find_route`` is a shortest-path search over those links, from specs and the registry alone:
nothing is loaded or trained to plan a route.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

from ..errors import IncompatiblePairError, UnknownExpertError
from ..spec.expert import ExpertAddress, ExpertSpec
from .host import Catalog
from .registry import Registry

FETCH_COST = 1.0  # a published translator: a download, not training
EXPERT_LINK_COST = 1.0  # one decode: cheaper than training anything, dearer than a cached translator
DEFAULT_STEPS = 10_000  # a translator whose entry names no steps trains this many (TrainConfig's default)


@dataclass(frozen=True)
class Link:
    """One hop of a route.

    ``kind`` is ``translator`` (``entry``: the registry entry that trains it; ``key``: the cached
    translator, None when it would be trained, ``steps`` then) or ``expert`` (``domain``: what
    ``source`` decodes and ``target`` encodes).
    """

    source: str
    target: str
    kind: str
    cost: float
    entry: str | None = None
    key: str | None = None
    steps: int | None = None
    domain: str | None = None
    published: bool = False

    @property
    def trains(self) -> bool:
        return self.kind == "translator" and self.key is None and not self.published

    def explain(self) -> str:
        if self.kind == "expert":
            return f"{self.source} -> {self.target}: {self.source} decodes '{self.domain}', {self.target} encodes it"
        origin = f"registry entry '{self.entry}'" if self.entry else "cached translator"
        how = f"cached ({self.key})" if self.key else "fetches its published file" if self.published \
            else f"trains {self.steps} steps"
        return f"{self.source} -> {self.target}: translator, {origin}, {how}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "kind": self.kind, "cost": self.cost,
                "entry": self.entry, "translator_key": self.key, "trains": self.trains,
                "steps": self.steps if self.trains else None, "published": self.published, "domain": self.domain}


@dataclass(frozen=True)
class Route:
    """Hops from ``source`` to ``target``; ``specs`` maps each node to its expert spec."""

    hops: tuple[Link, ...]
    specs: Mapping[str, ExpertSpec]

    @property
    def source(self) -> str:
        return self.hops[0].source

    @property
    def target(self) -> str:
        return self.hops[-1].target

    @property
    def source_spec(self) -> ExpertSpec:
        return self.specs[self.source]

    @property
    def target_spec(self) -> ExpertSpec:
        return self.specs[self.target]

    @property
    def cost(self) -> float:
        return sum(h.cost for h in self.hops)

    @property
    def nodes(self) -> list[str]:
        return [self.source] + [h.target for h in self.hops]

    def explain(self) -> str:
        trains = [h for h in self.hops if h.trains]
        head = (f"route {' -> '.join(self.nodes)} ({len(self.hops)} hop{'s' * (len(self.hops) != 1)}, cost "
                f"{self.cost:g}; trains {len(trains)} translator{'s' * (len(trains) != 1)})")
        return "\n".join([head] + [f"  {i + 1}. {h.explain()}" for i, h in enumerate(self.hops)])

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "cost": self.cost, "nodes": self.nodes,
                "hops": [h.to_dict() for h in self.hops]}


def _search(links: Sequence[Link], source: str, target: str, banned: set[str]) -> tuple[Link, ...] | None:
    """The cheapest hops from ``source`` to ``target`` through no ``banned`` node (Dijkstra; ties by name)."""
    out: dict[str, list[Link]] = {}
    for link in links:
        out.setdefault(link.source, []).append(link)
    heap: list[tuple[float, int, str, tuple[Link, ...]]] = [(0.0, 0, source, ())]
    counter, done = 1, set()
    while heap:
        cost, _, node, path = heapq.heappop(heap)
        if node == target:
            return path
        if node in done:
            continue
        done.add(node)
        for link in sorted(out.get(node, ()), key=lambda lk: (lk.target, lk.kind)):
            if link.target not in done and link.target not in banned:
                heapq.heappush(heap, (cost + link.cost, counter, link.target, path + (link,)))
                counter += 1
    return None


def _reach(links: Sequence[Link], start: str, forward: bool) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for link in links:
            a, b = (link.source, link.target) if forward else (link.target, link.source)
            if a == node and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen - {start}


def find_route(links: Sequence[Link], source: str, target: str, via: Sequence[str] = (),
               specs: Mapping[str, ExpertSpec] | None = None) -> Route:
    """The cheapest route ``source -> via... -> target``; a route that visits a node twice is refused.

    Raises :class:`IncompatiblePairError` naming the missing link when a leg has no route.
    """
    stops = [source, *via, target]
    repeated = sorted({s for s in stops if stops.count(s) > 1})
    if repeated:
        raise IncompatiblePairError(f"the route {' -> '.join(stops)} visits {', '.join(repeated)} twice: a cycle "
                                    "translates nothing new; name each expert once")
    hops: list[Link] = []
    visited = {source}
    for a, b in zip(stops, stops[1:]):
        banned = (visited | set(stops)) - {a, b}
        leg = _search(links, a, b, banned)
        if leg is None:
            raise IncompatiblePairError(_missing(links, a, b))
        hops.extend(leg)
        visited.update(h.target for h in leg)
    return Route(tuple(hops), dict(specs or {}))


def _missing(links: Sequence[Link], a: str, b: str) -> str:
    """One line naming the link a route from ``a`` to ``b`` lacks."""
    ahead, behind = _reach(links, a, True), _reach(links, b, False)
    if not ahead:
        gap = f"nothing leads out of {a} (no translator from it, and it decodes nothing another expert encodes)"
    elif not behind:
        gap = f"nothing leads into {b} (no translator into it, and no expert decodes what it encodes)"
    else:
        gap = (f"{a} reaches {', '.join(sorted(ahead))}, but only {', '.join(sorted(behind))} lead into {b}; "
               "a link between them is missing")
    return (f"no route from {a} to {b}: {gap}. Add a [pairs.NAME] registry entry for the missing pair, "
            "or pass --via an expert that links them")


def _address(catalog: Catalog, text: str | ExpertAddress) -> tuple[str, ExpertSpec] | None:
    """A node's canonical address (default variant filled in) and spec; None when the expert is not installed."""
    from .planning import lookup_spec, resolve_variant

    addr = ExpertAddress.parse(text) if isinstance(text, str) else text
    if addr.id not in catalog.experts:
        return None
    spec = lookup_spec(catalog, addr)
    return str(resolve_variant(spec, addr)), spec


def route_links(catalog: Catalog, registry: Registry, cached: Mapping[tuple[str, str], str],
                nodes: Iterable[str] = ()) -> tuple[list[Link], dict[str, ExpertSpec]]:
    """The graph's links and its nodes' specs: registry entries and cached translators (``cached``
    maps ``(source, target)`` addresses to a translator key), and every decode -> encode link
    between the nodes they and ``nodes`` (the request's experts) name."""
    specs: dict[str, ExpertSpec] = {}
    links: dict[tuple[str, str, str], Link] = {}
    for text in nodes:
        found = _address(catalog, text)
        if found is None:
            raise UnknownExpertError(f"unknown expert {ExpertAddress.parse(text).id!r}; `n2n-hub experts` lists "
                                     "the installed ones")
        specs[found[0]] = found[1]
    for entry in registry.entries.values():
        src, tgt = _address(catalog, entry.source), _address(catalog, entry.target)
        if src is None or tgt is None or entry.target.tap is not None:
            continue
        specs.update((src, tgt))
        key = cached.get((src[0], tgt[0]))
        steps = int(entry.training.get("steps", DEFAULT_STEPS))
        published = entry.published is not None and entry.translator == "cinn"
        cost = 0.0 if key else FETCH_COST if published else float(steps)
        links[(src[0], tgt[0], "translator")] = Link(src[0], tgt[0], "translator", cost, entry=entry.name, key=key,
                                                     steps=steps, published=published and not key)
    for (s, t), key in cached.items():
        src, tgt = _address(catalog, s), _address(catalog, t)
        if src is None or tgt is None or (src[0], tgt[0], "translator") in links:
            continue
        specs.update((src, tgt))
        links[(src[0], tgt[0], "translator")] = Link(src[0], tgt[0], "translator", 0.0, key=key)
    for b, b_spec in specs.items():
        if not b_spec.can_decode or ExpertAddress.parse(b).tap is not None:
            continue
        for c, c_spec in specs.items():
            if c_spec.input_domain != b_spec.output_domain or ExpertAddress.parse(c).id == ExpertAddress.parse(b).id:
                continue
            if b_spec.output_shape and c_spec.input_shape and tuple(b_spec.output_shape) != tuple(c_spec.input_shape):
                continue
            links[(b, c, "expert")] = Link(b, c, "expert", EXPERT_LINK_COST, domain=b_spec.output_domain)
    return sorted(links.values(), key=lambda lk: (lk.source, lk.target, lk.kind)), specs


def with_specs(route: Route, specs: Mapping[str, ExpertSpec]) -> Route:
    return replace(route, specs={**route.specs, **specs})
