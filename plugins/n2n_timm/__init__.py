"""Built-in expert ``timm``: any model of the timm zoo, read out layer by layer (model diagnosis, Sec. E).

An address names the model and the layer: ``timm@resnet18`` (timm's default weights of
ResNet-18, read at its pooled features), ``timm:layer3@resnet50.a1_in1k`` (the third
stage of those weights), ``timm:pooled@/path/to/folder`` (a model saved in timm's
Hugging Face layout, ``config.json`` + ``model.safetensors``), ``timm@org/name`` (such a
folder on the Hugging Face hub), ``timm@resnet10t.animals`` (a model trained here by
``n2n-hub train-expert timm``). The taps are the model's own stages (timm's
``feature_info``), ``pooled`` (the features before the classifier) and ``logits``.

Registration is metadata only: torch and timm are imported when a model is named (its
spec is then worked out on torch's meta device, without weights) or loaded.
"""

from __future__ import annotations

from typing import Callable

from n2n_hub import ExpertSpec, Representation, Variant, hookimpl

DEFAULT_VARIANT = "resnet18"
DEFAULT_TAP = "pooled"

# resnet18's taps at its 224×224 input: what the spec says before a model is named. A named
# model reports its own (``n2n-hub experts show timm@NAME``); a test keeps these in step with timm.
DEFAULT_TAPS = {
    "act1": Representation((64, 112, 112)),
    "layer1": Representation((64, 56, 56)),
    "layer2": Representation((128, 28, 28)),
    "layer3": Representation((256, 14, 14)),
    "layer4": Representation((512, 7, 7)),
    "pooled": Representation((512,)),
    "logits": Representation((1000,)),
}


def timm_spec() -> ExpertSpec:
    """The ``timm`` expert's spec; shapes are ResNet-18's until an address names another model."""
    return ExpertSpec(
        id="timm",
        version="1",
        loader="n2n_timm.expert:TimmExpert",
        description="any timm image model (timm@NAME[.TAG], a folder, or trained here); taps: its stages, "
                    "pooled, logits",
        license="each model's own (see `n2n-hub experts show timm@NAME`)",
        input_domain="image",
        representation=DEFAULT_TAPS[DEFAULT_TAP],
        taps=dict(DEFAULT_TAPS),
        variants=(Variant(DEFAULT_VARIANT, "ResNet-18 with timm's default ImageNet weights (resnet18.a1_in1k)",
                          source="hf-hub:timm/resnet18.a1_in1k"),),
        default_variant=DEFAULT_VARIANT,
        accepts_paths=True,
        accepts_hub_ids=True,
        input_shape=(3, 224, 224),
        variant_spec="n2n_timm.variants:spec_for",
        find_variants="n2n_timm.names:search",
    )


@hookimpl
def register_experts(register: Callable[[ExpertSpec], None]) -> None:
    register(timm_spec())


@hookimpl
def register_commands(cli) -> None:  # type: ignore[no-untyped-def]
    from .commands import register

    register(cli)
