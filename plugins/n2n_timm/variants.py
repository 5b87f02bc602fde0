"""The spec of one timm model (the ``variant_spec`` hook): its taps, shapes, input size, licence and paper.

Worked out from the model's config on torch's meta device, so ``n2n-hub experts show
timm@NAME`` and pair planning know every shape before any weights are fetched or loaded.
"""

from __future__ import annotations

from dataclasses import replace

from n2n_hub import ExpertAddress, ExpertSpec, Variant
from n2n_hub.kit import UnknownExpertError, hub_home

from . import DEFAULT_TAP
from .model import Preprocess, layout, tap_problem
from .source import ModelSource, resolve

ORIGINS = {"folder": "a model folder", "experts dir": "a model folder in the hub's experts dir",
           "hugging face": "a Hugging Face repo", "timm": "timm's pretrained weights"}


def where_from(source: ModelSource) -> str:
    if source.folder is not None:
        return str(source.folder)
    return f"hf-hub:{source.hf_repo}" if source.hf_repo else "timm (no pretrained weights: random initialisation)"


def describe(source: ModelSource) -> str:
    """One line: the model, where its weights come from, what it was trained on, its paper."""
    parts = [f"timm {source.architecture} ({ORIGINS.get(source.origin, source.origin)}: {source.label})"]
    info = source.info
    if "dataset" in info:
        acc = info.get("test_accuracy")
        parts.append(f"trained here on {info['dataset']}" + (f", test accuracy {acc:.3f}" if isinstance(acc, float)
                                                             else ""))
    if source.paper:
        parts.append(f"paper: {source.paper}")
    return "; ".join(parts)


def spec_for(spec: ExpertSpec, address: ExpertAddress) -> ExpertSpec:
    """``spec`` narrowed to the model ``address.variant`` names; a tap it lacks is explained."""
    variant = address.variant or spec.default_variant or ""
    source = resolve(variant, hub_home())
    lay = layout(source)
    if address.tap is not None and address.tap not in lay.taps:
        raise UnknownExpertError(tap_problem(source, lay, address.tap))
    prep = Preprocess.of(source)
    return replace(
        spec,
        description=describe(source),
        license=source.license or "not stated in the model's config",
        representation=lay.taps[DEFAULT_TAP],
        taps=dict(lay.taps),
        variants=(Variant(variant, f"input {prep.describe()}", source=where_from(source)),),
        default_variant=variant,
        input_shape=source.input_size,
        class_names=source.label_names,
    )
