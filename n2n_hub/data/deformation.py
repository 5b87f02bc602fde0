"""The ``deformation`` recipe (shape/appearance, Sec. C): pairs (Θ(d(y)), Θ(y)).

Source and target are usually the same autoencoder. d (flip + TPS + crop) destroys
shape but keeps appearance, so the condition Θ(d(y)) tells the translator y's look and
the residual v = τ⁻¹(Θ(y) | Θ(d(y))) has to carry its shape. Options
(``[pairs.NAME.options]``): ``strength`` (default 1), ``tps_sigma``, ``min_crop``, ``flip``.
Each image is deformed ``pairs_per_item`` times, reproducibly from the entry's seed.
"""

from __future__ import annotations

import torch

from .deform import Deformation, deform
from ..errors import IncompatiblePairError
from .recipes import PairData, RecipeContext, encode_batched


def deformation_of(options: dict) -> Deformation:
    """The registry entry's options (names and ranges checked at planning, see builtin_recipes) as a Deformation."""
    try:
        return Deformation(**{k: float(v) for k, v in options.items()})
    except (TypeError, ValueError) as e:
        raise IncompatiblePairError(f"recipe 'deformation': {e}") from None


def deformation_recipe(ctx: RecipeContext, split: str = "train") -> PairData:
    plan, ds = ctx.plan, ctx.dataset
    if ds is None or "image" not in ds.domains:
        raise IncompatiblePairError(f"recipe 'deformation' needs a dataset of images; {plan.dataset!r} has none")
    if plan.source_spec.input_domain != "image":
        raise IncompatiblePairError(f"recipe 'deformation': the source {plan.source} must read images")
    d = deformation_of(ctx.options)
    data: dict = {}

    def images() -> torch.Tensor:
        if not data:
            data.update(ctx.load_dataset(ds.id, split))
        return data["image"]

    fp = {"dataset": ds.id, "version": ds.version, "split": split}
    z = ctx.features.get_or_compute(
        {"role": "target", "expert": ctx.target.fingerprint(), "data": fp},
        lambda: encode_batched(ctx.target, images(), None, plan.batch_size, f"encoding with {plan.target}",
                               ctx.progress).reshape(len(images()), -1))
    reps = plan.pairs_per_item
    seed = plan.seed + (0 if split == "train" else 7919)

    def compute_source() -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        x = images().repeat(reps, 1, 1, 1)
        warped = torch.cat([deform(x[i:i + 512], d, gen) for i in range(0, x.shape[0], 512)])
        return encode_batched(ctx.source, warped, plan.source.tap, plan.batch_size,
                              f"encoding deformed images with {plan.source}", ctx.progress)

    key = {"role": "source", "expert": ctx.source.fingerprint(), "tap": plan.source.tap, "data": fp,
           "deformation": vars(d), "reps": reps, "seed": seed}
    c = ctx.features.get_or_compute(key, compute_source)
    groups = torch.arange(z.shape[0]).repeat(reps) if reps > 1 else None  # an image's deformations share its id
    return PairData(c, z.repeat(reps, 1), groups)
