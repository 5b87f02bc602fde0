"""Built-in expert: a DeepLabV3 segmenter whose layers can be read out as taps (model diagnosis, Sec. E).

Registration is cheap: torch and segmentation-models-pytorch are imported only when the
expert is loaded or the train command runs.
"""

from n2n_hub import CommandSpec, ExpertSpec, Representation, Variant, hookimpl

ANIMALS = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")
CLASS_NAMES: tuple[str, ...] = ("background", *ANIMALS)

# Per-sample tap shapes of the shipped animals model (32×32 grayscale in, 11 classes out).
# A model trained with other settings reports its own shapes once loaded.
TAPS = {
    "early": Representation((64, 16, 16)),   # the ResNet stem (conv 7×7 stride 2, BN, ReLU)
    "middle": Representation((64, 8, 8)),    # the first residual stage
    "last": Representation((11, 4, 4)),      # the logits, before the parameter-free ×8 upsampling
    "labels": Representation((11, 32, 32)),  # one-hot of the predicted label map at full resolution
}
DEFAULT_TAP = "last"


def segmenter_spec() -> ExpertSpec:
    return ExpertSpec(
        id="segmenter",
        version="1",
        loader="n2n_segmenter.expert:SegmenterExpert",
        description="DeepLabV3 (ResNet-18 encoder) per-pixel segmenter; taps early, middle, last (logits), labels",
        license="MIT",
        input_domain="image",
        representation=TAPS[DEFAULT_TAP],
        taps=dict(TAPS),
        variants=(
            Variant("animals", "32×32 animal silhouettes: background or one of 10 animals per pixel "
                               "(trained on the animals train split)",
                    source="shipped: n2n_segmenter/weights/animals.safetensors",
                    settings={"image_shape": (1, 32, 32), "dataset": "animals"}),
        ),
        default_variant="animals",
        accepts_paths=True,
        input_shape=(1, 32, 32),
        class_names=CLASS_NAMES,
    )


@hookimpl
def register_experts(register):
    register(segmenter_spec())


@hookimpl
def register_lazy_commands(register):
    # `n2n-hub train-expert segmenter`: its module (and torch) is imported only when it runs
    register(CommandSpec(name="segmenter", loader="n2n_segmenter.commands:train_segmenter_command",
                         help="Train the DeepLabV3 segmenter on a labelled dataset."))
