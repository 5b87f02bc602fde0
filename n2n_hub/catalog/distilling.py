"""Distilling a route: the plan of a direct translator A → C trained on samples drawn along A → … → C.

A route runs every hop for every request and is only as good as its weakest hop; a direct
translator trained on what the route produces answers in one step. Its training pairs are the
first hop's own source inputs (the dataset items its recipe reads, encoded by A) and, for each,
a sample pushed through the route, each translator hop drawing its own residual.

Everything here works from specs and the route alone: nothing is loaded, sampled or trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import IncompatiblePairError, InputError
from ..spec.components import RecipeSpec
from ..spec.expert import ExpertAddress
from .planning import PairPlan
from .routes import Route

DEFAULT_SAMPLES = 10_000  # training pairs drawn along the route
HELD_OUT_SHARE = 5  # the test split draws one pair for every this many training pairs
TEST_SEED_OFFSET = 7919  # the test split's draws are not the training split's
MAX_SAMPLES = 10_000_000

# What planning and evaluation read about these pairs. It is no registered recipe: a registry
# entry cannot name it, since its pairs need the route's translators, which the hub makes ready.
ROUTE_RECIPE = RecipeSpec(
    id="route", loader="n2n_hub.translators.distill:draw_route_pairs",
    description="the first hop's source inputs, each pushed through a route of translators and expert hops")


@dataclass(frozen=True)
class FromRoute:
    """Where a distilled translator's pairs come from: ``route``, whose first hop's plan ``inputs``
    gives the source inputs, sampled at ``temperature`` (the count and seed are the plan's)."""

    route: Route
    inputs: PairPlan
    temperature: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        hops = [{"source": h.source, "target": h.target, "kind": h.kind, "entry": h.entry, "domain": h.domain}
                for h in self.route.hops]
        inputs = {k: v for k, v in self.inputs.to_dict().items()
                  if k in ("source", "recipe", "start_domain", "bridges", "bridge_versions", "dataset",
                           "registry_entry", "pairs_per_item", "seed", "options")}
        return {"nodes": self.route.nodes, "hops": hops, "inputs": inputs, "temperature": self.temperature}

    def explain(self, plan: PairPlan) -> str:
        data = f"dataset '{self.inputs.dataset}'" if self.inputs.dataset else f"your data at {self.inputs.data_path}"
        return (f"{self.route.explain()}\n{plan.source} -> {plan.target}: distilled from this route; draws "
                f"{plan.samples} training pairs (and {held_out_samples(plan.samples)} held out): the source "
                f"inputs of hop 1 ({data}, recipe '{self.inputs.recipe}') encoded by {plan.source}, each pushed "
                f"through the route with seed {plan.seed} at temperature {self.temperature:g}")


def held_out_samples(samples: int) -> int:
    """Pairs the test split draws for ``samples`` training pairs."""
    return max(1, samples // HELD_OUT_SHARE)


def split_draw(plan: PairPlan, split: str) -> tuple[int, int]:
    """``(pairs, seed)`` a split of a distilled plan draws."""
    if split == "train":
        return plan.samples, plan.seed
    return held_out_samples(plan.samples), plan.seed + TEST_SEED_OFFSET


def check_route(route: Route) -> None:
    """Refuse, before anything is loaded, a route that cannot be distilled."""
    first, last = route.hops[0], route.hops[-1]
    if len(route.hops) == 1 and first.kind == "translator":
        raise IncompatiblePairError(f"the route {' -> '.join(route.nodes)} is one translator, the direct one: there "
                                    "is nothing to distil; plan the route without the direct link (Hub.route(..., "
                                    "direct=False)) or name --via an expert")
    if first.kind != "translator":
        raise IncompatiblePairError(
            f"the route {' -> '.join(route.nodes)} starts with an expert hop ({first.source} decodes, "
            f"{first.target} encodes), which reads no dataset: there are no inputs of {route.source} to draw along "
            "it. Distil a route whose first hop is a translator trained on a dataset (choose it with --via)")
    if first.entry is None:
        raise IncompatiblePairError(
            f"the route's first hop {first.source} -> {first.target} is a cached translator that no registry entry "
            "names, so the dataset it read is not known and there are no inputs to draw along the route; add a "
            "[pairs.NAME] entry for that pair, or choose another first hop with --via")
    if last.kind == "expert":
        spec = route.target_spec
        if spec.latent is not None and spec.representation is not None \
                and spec.latent.numel != spec.representation.numel:
            raise IncompatiblePairError(
                f"the route ends in {route.target}'s encodings ({spec.representation.describe()}), but a "
                f"translator into it samples what it decodes ({spec.latent.describe()}): end the route with a "
                f"translator into {route.target}")


def check_inputs(route: Route, inputs: PairPlan) -> None:
    """The first hop must read a dataset (or data): its items are what is drawn along the route."""
    if inputs.dataset is None and inputs.data_path is None:
        hop = route.hops[0]
        raise IncompatiblePairError(
            f"the route's first hop {hop.source} -> {hop.target} (recipe '{inputs.recipe}') reads no dataset, so "
            f"there are no inputs of {route.source} to draw along the route; choose a route (--via) whose first "
            "translator's registry entry reads a dataset")


def plan_from_route(route: Route, inputs: PairPlan, samples: int = DEFAULT_SAMPLES, temperature: float = 1.0,
                    seed: int = 0, translator: str | None = None) -> PairPlan:
    """The plan of a direct translator ``route.source -> route.target`` trained on the route's samples.

    ``inputs`` is the plan of the route's first hop: its source side gives the inputs.
    """
    check_route(route)
    check_inputs(route, inputs)
    for name, value, low, high in (("samples", samples, 1, MAX_SAMPLES), ("seed", seed, 0, 2**62 - 1)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InputError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 10:
        raise InputError(f"temperature must be a number in [0, 10], got {temperature!r}")
    return PairPlan(inputs.source, ExpertAddress.parse(route.target), inputs.source_spec, route.target_spec,
                    ROUTE_RECIPE.id, inputs.start_domain, inputs.bridges, dataset=inputs.dataset,
                    data_path=inputs.data_path, samples=samples, seed=seed, translator=translator or "cinn",
                    recipe_spec=ROUTE_RECIPE, from_route=FromRoute(route, inputs, float(temperature)))

