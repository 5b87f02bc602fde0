"""Built-in bridges: class labels → caption text (templates, or prose the way people write)."""

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
    register(BridgeSpec(
        id="label-prose",
        from_domain="label",
        to_domain="text",
        loader="n2n_captions.prose:captions_from_labels",
        cost=1.1,  # chains found automatically keep the plain templates; the registry names this one
        description="captions as people write them: sentences with context, synonyms, hypernyms and short "
                    "descriptions from curated word lists; the label-caption bridge's held-out templates for evaluation",
    ))
    register(BridgeSpec(
        id="label-wordnet",
        from_domain="label",
        to_domain="text",
        loader="n2n_captions.wordnet:captions_from_labels",
        cost=1.2,
        description="captions of the 1000 ImageNet classes written from their WordNet synonym sets and glosses "
                    "(shipped with timm); one lemma per class is held out for evaluation",
    ))
