"""A tiny third-party plugin: a text expert, a generator with a prior, and a dataset.

Registration imports nothing heavy; the experts live in ``n2n_toy.experts``.
"""

from n2n_hub import DatasetSpec, ExpertSpec, Representation, Variant, hookimpl

CLASSES = ("circle", "square", "triangle")


@hookimpl
def register_experts(register):
    register(ExpertSpec(
        id="toytext", version="1", loader="n2n_toy.experts:ToyText", description="bag-of-characters text encoder",
        license="MIT", input_domain="text", representation=Representation((8,)),
        variants=(Variant("base"),), default_variant="base",
    ))
    register(ExpertSpec(
        id="toygen", version="1", loader="n2n_toy.experts:ToyGenerator", description="linear 4x4 image generator",
        license="MIT", input_domain="image", output_domain="image", representation=Representation((4,)),
        latent=Representation((4,)), prior="N(0, I)", prior_domains=("label",),
        variants=(Variant("base"),), default_variant="base", input_shape=(1, 4, 4), output_shape=(1, 4, 4),
        class_names=CLASSES,
    ))
    register(ExpertSpec(
        id="toypix", version="1", loader="n2n_toy.experts:ToyPixels", description="encode-only: an image's pixels",
        license="MIT", input_domain="image", representation=Representation((16,)),
        variants=(Variant("base"),), default_variant="base", input_shape=(1, 4, 4),
    ))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(id="toyshapes", version="1", loader="n2n_toy.experts:load_shapes",
                         domains=("image", "label"), image_shape=(1, 4, 4), class_names=CLASSES,
                         classifier="n2n_toy.experts:classify_shapes",
                         description="random 4x4 images whose mean depends on the label"))
