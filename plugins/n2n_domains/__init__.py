"""Built-in expert: a set indicator (Sec. D). Its "encoding" of domain k is k itself.

A translator conditioned on it learns p(z_Θ | domain) from unpaired sets; keeping an
input's residual and swapping the domain translates between any two of them.
Each variant is one list of domain names; the ``domains`` recipe says which items of
which dataset make up each domain.
"""

from n2n_hub import ExpertSpec, Representation, Variant, hookimpl

ANIMALS: tuple[str, ...] = (
    "bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra",
)


def domain_spec() -> ExpertSpec:
    return ExpertSpec(
        id="domain",
        version="1",
        loader="n2n_domains.expert:DomainExpert",
        description="set indicator: domain names -> ids 0..K-1, the condition of unpaired translation",
        license="MIT",
        input_domain="label",
        representation=Representation((), "int64", len(ANIMALS)),
        variants=(Variant("animals", "the ten animal classes of animal-shape-mnist, one domain each",
                          source="built-in", settings={"names": ANIMALS}),),
        default_variant="animals",
        class_names=ANIMALS,
    )


@hookimpl
def register_experts(register):
    register(domain_spec())
