"""Built-in dataset: animal silhouettes (animal-shape-mnist), 10 classes of 32×32 grayscale images."""

from n2n_hub import DatasetSpec, hookimpl

CLASS_NAMES: tuple[str, ...] = (
    "bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra",
)


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        id="animals",
        version="1",
        loader="n2n_animals.data:load",
        domains=("image", "label"),
        description="10000 animal silhouettes from animal-shape-mnist, padded to 32×32; "
                    "stratified split with 100 test images per class",
        license="MIT (animal-shape-mnist)",
        image_shape=(1, 32, 32),
        class_names=CLASS_NAMES,
        classifier="n2n_animals.classifier:classify",
    ))
