"""The ``domains`` recipe (unpaired translation, Sec. D): named subsets of datasets → ids 0..K-1.

The source is a set indicator whose class names are the domains. By default domain
``name`` is the items of the entry's dataset whose class is called ``name``; the
registry entry's ``[pairs.NAME.options] subsets`` table can say otherwise, with members
``"CLASS"`` (of the entry's dataset), ``"DATASET:CLASS"`` or ``"DATASET:*"``, so that
one translator can join several datasets. The target encodes every member image.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import IncompatiblePairError
from .augment import augmented
from .recipes import PairData, RecipeContext, encode_batched, training_augmentations


def domain_members(ctx: RecipeContext) -> list[list[tuple[str, str]]]:
    """Per domain id, its ``(dataset, class or "*")`` members, checked against the datasets."""
    names = ctx.source.class_names
    if not names:
        raise IncompatiblePairError(f"recipe 'domains' needs a source with named domains; {ctx.plan.source} has none")
    subsets: dict[str, Any] = dict(ctx.options.get("subsets", {}))
    unknown = sorted(set(subsets) - set(names))
    if unknown:
        raise IncompatiblePairError(f"options.subsets names {unknown}, which are not domains of {ctx.plan.source} "
                                    f"({', '.join(names)})")
    out = []
    for name in names:
        members = []
        for m in subsets.get(name, [name]):
            ds_id, _, cls = str(m).rpartition(":") if ":" in str(m) else (ctx.plan.dataset, "", str(m))
            ds = ctx.datasets.get(ds_id or "")
            if ds is None:
                raise IncompatiblePairError(f"domain {name!r}: dataset {ds_id!r} is not registered")
            if cls != "*" and cls not in (ds.class_names or ()):
                raise IncompatiblePairError(f"domain {name!r}: dataset {ds_id!r} has no class {cls!r} "
                                            f"(classes: {', '.join(ds.class_names or ()) or 'none'})")
            members.append((ds.id, cls))
        out.append(members)
    return out


def domains_recipe(ctx: RecipeContext, split: str = "train") -> PairData:
    """(domain id, Θ(image)) for every image of every domain."""
    members = domain_members(ctx)
    augment = training_augmentations(ctx.options, split)
    target_codes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for ds_id in sorted({d for ms in members for d, _ in ms}):
        ds = ctx.datasets[ds_id]
        data: dict[str, Any] = {}

        def load() -> dict[str, Any]:
            if not data:
                data.update(augmented(ctx.load_dataset(ds_id, split), augment))
            return data

        # The same key as the dataset recipe's, so both share one encoding of the dataset.
        fp: dict[str, Any] = {"dataset": ds.id, "version": ds.version, "split": split}
        key = {"role": "target", "expert": ctx.target.fingerprint(),
               "data": {**fp, "augment": augment} if augment else fp}
        z = ctx.features.get_or_compute(key, lambda: encode_batched(
            ctx.target, load()["image"], None, ctx.plan.batch_size, f"encoding with {ctx.plan.target}",
            ctx.progress).reshape(len(load()["image"]), -1))
        labels = load()["label"] if "label" in ds.domains else torch.full((z.shape[0],), -1)
        if len(labels) != z.shape[0]:
            raise IncompatiblePairError(f"dataset {ds_id!r}: {len(labels)} labels for {z.shape[0]} images")
        target_codes[ds_id] = (z, torch.as_tensor(labels).long())
    # An item id per image: a mirrored copy shares its original's, so validation holds out both.
    offsets, start = {}, 0
    for ds_id, (z, _) in target_codes.items():
        offsets[ds_id], start = start, start + z.shape[0] // (1 + len(augment))
    ids, zs, items = [], [], []
    for k, ms in enumerate(members):
        for ds_id, cls in ms:
            z, labels = target_codes[ds_id]
            names = ctx.datasets[ds_id].class_names or ()
            mask = torch.ones_like(labels, dtype=torch.bool) if cls == "*" else labels == names.index(cls)
            zs.append(z[mask])
            ids.append(torch.full((int(mask.sum()),), k, dtype=torch.long))
            rows = torch.nonzero(mask).flatten()
            items.append(offsets[ds_id] + rows % (z.shape[0] // (1 + len(augment))))
    source_ids = torch.cat(ids)
    with torch.no_grad():
        c = ctx.source.encode(source_ids).cpu()
    groups = torch.cat(items)
    return PairData(c, torch.cat(zs), groups if len(torch.unique(groups)) < len(groups) else None)
