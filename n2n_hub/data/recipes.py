"""Recipes: turning a :class:`~n2n_hub.catalog.planning.PairPlan` into training pairs (z_Φ, z_Θ).

A recipe is a :class:`~n2n_hub.spec.components.RecipeSpec` registered through the
``register_recipes`` hook (the built-ins in :mod:`n2n_hub.catalog.builtin_recipes` too); its
loader is called as ``make(context: RecipeContext, split) -> PairData``.

Every expert pass goes through the feature store, keyed by the expert's fingerprint
and the data's, so changing only hyperparameters never re-runs an expert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from ..base.progress import tqdm

from .augment import augmented
from ..spec.components import BridgeContext, BridgeSpec, DatasetSpec
from ..errors import ShapeError
from ..spec.expert import Expert, import_object
from .features import FeatureStore, stable_hash
from .sharding import encode_sharded
from ..base.inputs import fingerprint_paths, image_files, read_images, read_text_lines


@dataclass
class PairData:
    """Training (or evaluation) pairs, row-aligned: ``source[i]`` conditions ``target[i]``.

    ``groups``, where rows repeat items (several captions, mirrored or deformed copies of
    one image), is each row's item id: validation then holds out whole items.
    ``labels[i]``, when the recipe knows it, is the class id of row ``i``'s item (what a
    condition projection is fitted to).
    """

    source: torch.Tensor
    target: torch.Tensor
    groups: torch.Tensor | None = None
    labels: torch.Tensor | None = None


@dataclass
class RecipeContext:
    """What a recipe gets to make pairs: the plan, both loaded experts, the feature store and datasets.

    ``load_dataset(id, split)`` returns a registered dataset's ``{domain: data}``;
    ``options`` is the registry entry's ``[pairs.NAME.options]`` table.
    """

    plan: Any
    source: Expert
    target: Expert
    features: FeatureStore
    datasets: dict[str, DatasetSpec]
    load_dataset: Callable[[str, str], dict]
    progress: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> DatasetSpec | None:
        return self.datasets.get(self.plan.dataset) if self.plan.dataset else None


def dataset_recipe(ctx: RecipeContext, split: str = "train") -> PairData:
    """The ``dataset`` recipe: items of a dataset (or the user's ``--data``) that both sides read."""
    ds = ctx.dataset
    if ctx.plan.data_path is not None or ds is None:
        return dataset_pairs(ctx.plan, ctx.source, ctx.target, ctx.features, lambda s: {}, "", None, split,
                             ctx.progress)
    return dataset_pairs(ctx.plan, ctx.source, ctx.target, ctx.features, lambda s: ctx.load_dataset(ds.id, s),
                         ds.version, ds.class_names, split, ctx.progress)


def prior_recipe(ctx: RecipeContext, split: str = "train") -> PairData:
    """The ``target-prior`` recipe; evaluation pairs use another seed and held-out bridge templates."""
    plan = ctx.plan
    if split == "train":
        return prior_pairs(plan, ctx.source, ctx.target, ctx.features, ctx.progress)
    return prior_pairs(plan, ctx.source, ctx.target, ctx.features, ctx.progress, samples=max(1000, plan.samples // 10),
                       seed=plan.seed + 7919, bridge_split="eval")


def training_augmentations(options: dict[str, Any], split: str) -> list[str]:
    """The ``augment`` option's names for the training split; evaluation data is never augmented."""
    return list(options.get("augment", ())) if split == "train" else []


def take(data: Any, index: torch.Tensor) -> Any:
    if isinstance(data, torch.Tensor):
        return data[index]
    return [data[int(i)] for i in index]


def batches(data: Any, size: int) -> list[Any]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def encode_batched(expert: Expert, inputs: Any, tap: str | None, batch_size: int, desc: str,
                   progress: bool = True) -> torch.Tensor:
    """Encode in batches under ``no_grad``; identical texts are encoded once."""
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], str):
        unique = sorted(set(inputs))
        index = {t: i for i, t in enumerate(unique)}
        codes = encode_batched(expert, unique, tap, batch_size, desc, progress) if len(unique) < len(inputs) else None
        if codes is not None:
            return codes[torch.tensor([index[t] for t in inputs])]

    def encode_chunks(chunks: list[Any]) -> torch.Tensor:
        out = []
        with torch.no_grad():
            for chunk in tqdm(chunks, desc=desc, unit="batch", disable=not progress or len(chunks) < 2, leave=False):
                out.append(expert.encode(chunk, tap=tap).detach().float().cpu())
        return torch.cat(out)

    sharded = encode_sharded(inputs, tap, batch_size, expert, encode_chunks)  # under torchrun: this rank's share
    return sharded if sharded is not None else encode_chunks(batches(inputs, batch_size))


def apply_bridges(chain: Sequence[BridgeSpec], data: Any, context: BridgeContext) -> Any:
    for bridge in chain:
        convert: Callable[..., Any] = import_object(bridge.loader)
        data = convert(data, context=context)
    return data


def _flat(z: torch.Tensor) -> torch.Tensor:
    return z.reshape(z.shape[0], -1)


def dataset_pairs(plan: Any, source: Expert, target: Expert, store: FeatureStore, dataset_loader: Callable[[str], dict],
                  dataset_version: str, class_names: tuple[str, ...] | None, split: str = "train",
                  progress: bool = True) -> PairData:
    """Pairs from a dataset (registered, or the user's folder/text file) that both sides can read."""
    bsz = plan.batch_size
    if plan.data_path is not None:
        data, data_fp = _user_data(plan.data_path, target)
    else:
        data = dataset_loader(split)
        data_fp = {"dataset": plan.dataset, "version": dataset_version, "split": split}
        augment = training_augmentations(plan.options, split)
        if augment:
            data, data_fp = augmented(data, augment), {**data_fp, "augment": augment}
    target_start = getattr(plan, "target_start", None)
    target_chain = tuple(getattr(plan, "target_bridges", ()) or ())
    n = len(data[target_start if target_start is not None else plan.target_spec.input_domain])
    reps = plan.pairs_per_item if plan.bridges or target_chain else 1
    index = torch.arange(n).repeat(reps)
    items = n // (1 + len(data_fp.get("augment", ())))  # augmented copies follow the originals
    groups = index % items if reps > 1 or items < n else None
    bridge_split = "train" if split == "train" else "eval"
    if target_start is None:
        tgt_in = data[plan.target_spec.input_domain]
        z = store.get_or_compute(
            {"role": "target", "expert": target.fingerprint(), "data": data_fp},
            lambda: _flat(encode_batched(target, tgt_in, None, bsz, f"encoding with {plan.target}", progress)),
        )[index]
    else:  # the target reads the item through bridges (captions of its label): one encoding per row
        def compute_target() -> torch.Tensor:
            ctx = BridgeContext(class_names=class_names, split=bridge_split,
                                generator=torch.Generator().manual_seed(plan.seed + 1))
            inputs = apply_bridges(target_chain, take(data[target_start], index), ctx)
            return _flat(encode_batched(target, inputs, None, bsz, f"encoding with {plan.target}", progress))

        z = store.get_or_compute(
            {"role": "target", "expert": target.fingerprint(), "data": data_fp, "start": target_start,
             "bridges": [b.id for b in target_chain], "bridge_versions": [b.version for b in target_chain],
             "reps": reps, "seed": plan.seed, "bridge_split": bridge_split}, compute_target)
    src_key = {"role": "source", "expert": source.fingerprint(), "tap": plan.source.tap, "data": data_fp,
               "start": plan.start_domain, "bridges": [b.id for b in plan.bridges],
               "bridge_versions": [b.version for b in plan.bridges], "reps": reps,
               "seed": plan.seed, "bridge_split": bridge_split}
    src_index = index if plan.bridges else torch.arange(n)  # unbridged items are encoded once
    if not plan.bridges:
        src_key["reps"] = 1

    def compute_source() -> torch.Tensor:
        raw = take(data[plan.start_domain], src_index)
        ctx = BridgeContext(class_names=class_names, split=bridge_split,
                            generator=torch.Generator().manual_seed(plan.seed))
        inputs = apply_bridges(plan.bridges, raw, ctx)
        return encode_batched(source, inputs, plan.source.tap, bsz, f"encoding with {plan.source}", progress)

    c = store.get_or_compute(src_key, compute_source)
    if not plan.bridges:
        c = c[index]
    labels = item_labels(data)
    return PairData(c, z, groups, labels[index] if labels is not None else None)


def item_labels(data: dict[str, Any]) -> torch.Tensor | None:
    """The class id of each item, from a dataset's ``label`` domain when it holds integers (else None)."""
    labels = data.get("label")
    if labels is None:
        return None
    try:
        out = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        return None
    return out.long() if out.dim() == 1 and not out.dtype.is_floating_point and out.dtype != torch.bool else None


def prior_pairs(plan: Any, source: Expert, target: Expert, store: FeatureStore, progress: bool = True,
                samples: int | None = None, seed: int | None = None, bridge_split: str = "train") -> PairData:
    """Pairs made from the target side: sample its prior, bridge what it tells into the source's input."""
    n = samples or plan.samples
    seed = plan.seed if seed is None else seed
    bsz = plan.batch_size
    prior_key = {"role": "prior", "expert": target.fingerprint(), "n": n, "seed": seed}
    src_key = {"role": "source", "expert": source.fingerprint(), "tap": plan.source.tap, "prior": prior_key,
               "start": plan.start_domain, "bridges": [b.id for b in plan.bridges],
               "bridge_versions": [b.version for b in plan.bridges], "bridge_split": bridge_split}
    if store.has(stable_hash(prior_key)) and store.has(stable_hash(src_key)):
        return PairData(store.load(stable_hash(src_key)), store.load(stable_hash(prior_key)))

    gen = torch.Generator().manual_seed(seed)
    zs, starts = [], []
    with torch.no_grad():
        for start in tqdm(range(0, n, bsz), desc=f"sampling {plan.target}", unit="batch",
                          disable=not progress or n <= bsz, leave=False):
            ps = target.sample_prior(min(bsz, n - start), generator=gen)
            zs.append(ps.latents.detach().float().cpu())
            if plan.start_domain in ps.extras:
                starts.append(ps.extras[plan.start_domain])
            elif plan.start_domain == plan.target_spec.output_domain:
                starts.append(target.decode(ps.latents))
            else:
                raise ShapeError(f"{plan.target}'s sample_prior did not report '{plan.start_domain}' data "
                                 "although its spec lists it in prior_domains")
    z = _flat(torch.cat(zs))
    raw: Any = torch.cat(starts) if isinstance(starts[0], torch.Tensor) else [x for s in starts for x in s]
    ctx = BridgeContext(class_names=target.class_names, split=bridge_split,
                        generator=torch.Generator().manual_seed(seed + 1))
    inputs = apply_bridges(plan.bridges, raw, ctx)
    c = encode_batched(source, inputs, plan.source.tap, bsz, f"encoding with {plan.source}", progress)
    store.save(stable_hash(prior_key), z, {"key_parts": prior_key})
    store.save(stable_hash(src_key), c, {"key_parts": src_key})
    return PairData(c, z)


def _user_data(path: Path, target: Expert) -> tuple[dict[str, Any], dict[str, Any]]:
    if path.is_dir():
        files = image_files(path)
        shape = target.spec.input_shape
        if shape is None:
            raise ShapeError(f"{target.spec.id} does not declare input_shape, so images cannot be prepared for it")
        return {"image": read_images(files, shape)}, {"folder": str(path), "content": fingerprint_paths(files),
                                                        "shape": list(shape)}
    lines = read_text_lines(path)
    return {"text": lines}, {"file": str(path), "content": fingerprint_paths([path])}
