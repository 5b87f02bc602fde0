"""Built-in expert: the VAE-GAN autoencoder of the Net2Net supplement (Sec. F, Table S2).

Registration is cheap: the model code (timm, the networks) is imported only when the
expert is loaded or the train command runs.
"""

from n2n_hub import CommandSpec, ExpertSpec, Representation, Variant, hookimpl

LATENT = Representation((128,))


def vaegan_spec() -> ExpertSpec:
    return ExpertSpec(
        id="vaegan",
        version="1",
        loader="n2n_vaegan.expert:VAEGANExpert",
        description="VAE-GAN autoencoder g = Λ∘Θ: ResNet encoder → N(μ, σ²) in R^128, BigGAN-style decoder",
        license="MIT",
        input_domain="image",
        output_domain="image",
        representation=LATENT,
        latent=LATENT,
        prior="N(0, I)",
        variants=(
            Variant("animals", "32×32 grayscale animal silhouettes (trained on the animals train split)",
                    source="shipped: n2n_vaegan/weights/animals.safetensors; reproduce with "
                           "'n2n-hub train-expert vaegan --dataset animals --steps 12000 --seed 0 --threads 1'",
                    settings={"image_shape": (1, 32, 32), "dataset": "animals"}),
        ),
        default_variant="animals",
        accepts_paths=True,
        input_shape=(1, 32, 32),
        output_shape=(1, 32, 32),
    )


@hookimpl
def register_experts(register):
    register(vaegan_spec())


@hookimpl
def register_lazy_commands(register):
    # `n2n-hub train-expert vaegan`: its module (and torch) is imported only when it runs
    register(CommandSpec(name="vaegan", loader="n2n_vaegan.commands:train_vaegan_command",
                         help="Train the VAE-GAN autoencoder on a dataset or image folder."))
