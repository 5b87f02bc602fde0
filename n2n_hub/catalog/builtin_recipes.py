"""The recipes n2n-hub ships, registered through the same hook a plugin uses.

Only metadata here: each loader is imported when a pair that names the recipe is trained.
What planning and evaluation need to know about a recipe is a field of its spec (see
:class:`~n2n_hub.spec.components.RecipeSpec`); nothing else in the package looks at these ids.
"""

from __future__ import annotations

from typing import Callable

from ..spec.components import RecipeOption, RecipeSpec
from ..hookspecs import hookimpl

# Names only: n2n_hub.data.augment imports torch, and registering recipes must not.
AUGMENT = RecipeOption("augment", "transformed copies of every training item, e.g. [\"hflip\"] adds mirror images",
                       kind="choices", choices=("hflip",))

DATASET = RecipeSpec(
    id="dataset", loader="n2n_hub.data.recipes:dataset_recipe", needs_dataset=True, options=(AUGMENT,),
    bridged_source=True, rows_are_items=True, bridged_target=True,
    description="items of a dataset feed both experts; either side's input may be bridged from another "
                "domain of the item")
TARGET_PRIOR = RecipeSpec(
    id="target-prior", loader="n2n_hub.data.recipes:prior_recipe", options=(), samples_prior=True,
    bridged_source=True,
    description="latents sampled from the target's prior; what they show is bridged into the source's input")
DOMAINS = RecipeSpec(
    id="domains", loader="n2n_hub.data.domains:domains_recipe", transfer="domain", needs_dataset=True,
    options=(AUGMENT, RecipeOption("subsets", "domain name -> its members: \"CLASS\", \"DATASET:CLASS\" or "
                                              "\"DATASET:*\"", kind="table")),
    description="named subsets of one or several datasets become a set indicator 0..K-1 (unpaired "
                "translation, Sec. D)")
DEFORMATION = RecipeSpec(
    id="deformation", loader="n2n_hub.data.deformation:deformation_recipe", transfer="appearance",
    needs_dataset=True,
    options=(RecipeOption("strength", "scales the TPS displacement and the crop; 0 only flips", low=0, high=2),
             RecipeOption("tps_sigma", "std of the control points' displacement at strength 1", low=0, high=1),
             RecipeOption("min_crop", "smallest crop side, as a fraction of the image, at strength 1",
                          low=0.1, high=1),
             RecipeOption("flip", "probability of a horizontal flip", low=0, high=1)),
    description="the target's own encoding of a randomly flipped, thin-plate-spline warped and cropped "
                "image conditions the encoding of the original (shape/appearance, Sec. C)")

BUILTIN_RECIPES: tuple[RecipeSpec, ...] = (DATASET, TARGET_PRIOR, DOMAINS, DEFORMATION)
# The recipe of pairs trained on the user's --data, and of pairs no registry entry names.
FOR_USER_DATA = DATASET.id
FOR_UNNAMED_PAIRS = TARGET_PRIOR.id


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    for spec in BUILTIN_RECIPES:
        register(spec)
