"""Everything a plugin needs, in one public module: plugins import only ``n2n_hub`` and ``n2n_hub.kit``.

The built-in plugins under ``plugins/`` use nothing else (a test checks it), so what they
can do, a third-party plugin can do too. What is here:

- the error hierarchy (raise these: the CLI prints their message as one line);
- weights files: :class:`WeightsFormat` (safetensors + JSON config) and :class:`ModelWeights`
  (the same, bound to a config and model class); :func:`read_tensors` (a third-party weights file,
  safetensors or plain tensors, never code);
- atomic writes and hashing: :func:`atomic_path`, :func:`atomic_write_bytes`, :func:`sha256_file`;
- where files go and whether the network may be used: :func:`experts_dir`, :func:`hub_home`,
  :func:`using_home`, :func:`is_offline`, and :func:`hf_cache_dir` (where Hugging Face files go);
- input validators: :func:`check_images`, :func:`check_batch`, :func:`as_text_batch`,
  :func:`import_object`;
- dataset access: :func:`dataset_spec`, :func:`load_dataset` (the datasets of the hub whose work
  is running, under its home; else the installed plugins' under ``$N2N_HUB_HOME``);
- recipes: :class:`PairData` (what a recipe returns) and :class:`RecipeContext` (what it is given);
- command options: :class:`FiniteFloat` and :data:`MAX_SEED`, as the built-in commands take them.

Importing this module does not import torch; the weights-file classes load it on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from .base.atomic import atomic_path, atomic_write_bytes, sha256_file
from .spec.components import DatasetSpec
from .errors import (CacheError, IncompatiblePairError, InputError, IntegrityError, MissingWeightsError, N2NError,
                     OfflineError, PluginError, RegistryError, ShapeError, TrainingError, TranslatorFileError,
                     UnknownExpertError)
from .spec.expert import as_text_batch, check_batch, check_images, import_object
from .base.paths import experts_dir, hub_home, is_offline, using_home
from .base.options import FiniteFloat
from .base.progress import tqdm

MAX_SEED = 2**63 - 1  # what torch.Generator.manual_seed accepts

if TYPE_CHECKING:
    from .base.weights_file import ModelWeights, WeightsFormat, read_tensors
    from .data.recipes import PairData, RecipeContext

__all__ = [
    # errors
    "N2NError", "CacheError", "IncompatiblePairError", "InputError", "IntegrityError", "MissingWeightsError",
    "OfflineError", "PluginError", "RegistryError", "ShapeError", "TrainingError", "TranslatorFileError",
    "UnknownExpertError",
    # files
    "WeightsFormat", "ModelWeights", "read_tensors", "atomic_path", "atomic_write_bytes", "sha256_file",
    "experts_dir", "hub_home", "is_offline", "using_home", "hf_cache_dir",
    # inputs
    "check_images", "check_batch", "as_text_batch", "import_object",
    # datasets and recipes
    "dataset_spec", "load_dataset", "PairData", "RecipeContext",
    # progress: a bar on a terminal, occasional plain lines in a log
    "tqdm",
    # command options: finite floats and bounded seeds, as the built-in commands take them
    "FiniteFloat", "MAX_SEED",
]


def __getattr__(name: str) -> Any:
    # The weights-file classes need torch; load it only when a plugin reaches for them.
    if name in ("WeightsFormat", "ModelWeights", "read_tensors"):
        from .base import weights_file

        return getattr(weights_file, name)
    if name in ("PairData", "RecipeContext"):  # what a register_recipes loader takes and returns
        from .data import recipes

        return getattr(recipes, name)
    raise AttributeError(f"module 'n2n_hub.kit' has no attribute {name!r}")


def hf_cache_dir() -> str | None:
    """``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else None (huggingface_hub's default), read now.

    huggingface_hub reads these variables once, at import; pass this as ``cache_dir=`` so a
    variable set later (by a test, a notebook or a server's settings) is still obeyed.
    """
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def dataset_spec(name: str, needs: Sequence[str] = (), labelled: bool = False) -> DatasetSpec:
    """The registered dataset ``name``; it must hold the ``needs`` domains (and class names if ``labelled``).

    Registered with the hub whose work is running (``Hub(host=...)``), else with the installed plugins.
    """
    from .catalog.host import active_host

    datasets = active_host().collect().datasets
    if name not in datasets:
        raise InputError(f"no dataset {name!r}; registered datasets: {', '.join(sorted(datasets)) or 'none'} "
                         "(`n2n-hub plugins` shows plugins that failed to load)")
    spec = datasets[name]
    missing = [d for d in needs if d not in spec.domains]
    if missing:
        raise InputError(f"dataset {name!r} has no {' or '.join(missing)} data (it has {', '.join(spec.domains)})")
    if labelled and not spec.class_names:
        raise InputError(f"dataset {name!r} has no class names; use a dataset with labelled classes")
    return spec


def load_dataset(name: str, split: str = "train", needs: Sequence[str] = ()) -> dict[str, Any]:
    """``{domain: data}`` of a registered dataset's ``split`` (``train`` or ``test``).

    Called from plugin code the hub runs (an expert it loads, a recipe, a dataset loader), this
    is the hub's dataset, loaded under the hub's home (``Hub(home=...)``), as
    ``Hub.load_dataset`` loads it; elsewhere (a ``train-expert`` command) the installed
    plugins' dataset, under ``$N2N_HUB_HOME``.
    """
    if split not in ("train", "test"):
        raise InputError(f"dataset split must be 'train' or 'test', got {split!r}")
    return import_object(dataset_spec(name, needs).loader)(split)  # type: ignore[no-any-return]
