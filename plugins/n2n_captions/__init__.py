"""Built-in bridge: class labels → caption text from prompt templates."""

from n2n_hub import BridgeSpec, hookimpl


@hookimpl
def register_bridges(register):
    register(BridgeSpec(
        id="label-caption",
        from_domain="label",
        to_domain="text",
        loader="n2n_captions.templates:captions_from_labels",
        description="'a photo of a {class}' and other templates; some templates are held out for evaluation",
    ))
