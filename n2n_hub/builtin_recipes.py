"""The recipes n2n-hub ships, registered through the same hook a plugin uses.

Only metadata here: each loader is imported when a pair that names the recipe is trained.
"""

from __future__ import annotations

from typing import Callable

from .components import RecipeSpec
from .hookspecs import hookimpl


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    register(RecipeSpec(
        id="dataset", loader="n2n_hub.recipes:dataset_recipe", needs_dataset=True,
        description="items of a dataset feed both experts; the source's input may be bridged from another "
                    "domain of the item"))
    register(RecipeSpec(
        id="target-prior", loader="n2n_hub.recipes:prior_recipe",
        description="latents sampled from the target's prior; what they show is bridged into the source's input"))
    register(RecipeSpec(
        id="domains", loader="n2n_hub.recipe_domains:domains_recipe", transfer="domain", needs_dataset=True,
        description="named subsets of one or several datasets become a set indicator 0..K-1 (unpaired "
                    "translation, Sec. D)"))
    register(RecipeSpec(
        id="deformation", loader="n2n_hub.recipe_deformation:deformation_recipe", transfer="appearance",
        needs_dataset=True,
        description="the target's own encoding of a randomly flipped, thin-plate-spline warped and cropped "
                    "image conditions the encoding of the original (shape/appearance, Sec. C)"))
