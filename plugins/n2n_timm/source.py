"""Where a ``timm@VARIANT`` model comes from, and what its config says, before any weights load.

A variant is, in this order:

1. an absolute path (the hub resolves ``./x`` and ``~/x``): a folder in timm's Hugging Face
   layout, ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``);
2. the name of such a folder under the hub's experts dir (``$N2N_HUB_HOME/experts/timm/``):
   a model trained here (``resnet10t.animals``) or pretrained files put there for offline use;
3. ``org/name``: a repository in that layout on the Hugging Face hub;
4. a timm model name, ``arch`` or ``arch.tag`` (``resnet50.a1_in1k``): timm's pretrained
   weights, fetched from the Hugging Face hub into its cache (never when offline).

Every way ends in the same kind of folder, read by :mod:`n2n_timm.weights`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from n2n_hub.kit import InputError, MissingWeightsError, UnknownExpertError, experts_dir

from .names import CONFIG, suggestions, trained_here

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class ModelSource:
    """A model's identity and configuration; its weights are fetched only when it is loaded.

    ``folder`` holds config.json and the weights when they are already here; ``hf_repo`` is
    where they come from otherwise.
    """

    variant: str
    label: str                          # what messages call it, e.g. "resnet18.a1_in1k"
    origin: str                         # "folder", "experts dir", "hugging face" or "timm"
    architecture: str
    pretrained_cfg: dict[str, Any]
    model_args: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None
    hf_repo: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # what train-expert recorded ("n2n_hub" in config.json)

    @property
    def input_size(self) -> tuple[int, int, int]:
        c, h, w = self.pretrained_cfg.get("input_size") or (3, 224, 224)
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return int(self.pretrained_cfg.get("num_classes", 1000) or 0)

    @property
    def license(self) -> str:
        return str(self.pretrained_cfg.get("license") or "")

    @property
    def paper(self) -> str:
        cfg = self.pretrained_cfg
        ids = cfg.get("paper_ids") or ""
        ids = ", ".join(ids) if isinstance(ids, (list, tuple)) else str(ids)
        return "; ".join(str(p) for p in (cfg.get("paper_name"), ids) if p)

    @property
    def label_names(self) -> tuple[str, ...] | None:
        names = self.pretrained_cfg.get("label_names")
        return tuple(str(n) for n in names) if names else None


def resolve(variant: str, home: Path | None = None) -> ModelSource:
    """The source a variant names (see the module docstring); no weights are read or fetched."""
    if variant.startswith(("/", "~", ".")):
        folder = Path(variant).expanduser().resolve()
        if not folder.is_dir():
            raise MissingWeightsError(f"timm@{variant}: no such folder; give a folder holding {CONFIG} and "
                                      "model.safetensors (timm's Hugging Face layout)")
        return from_folder(folder, variant, "folder")
    local = experts_dir("timm", home) / variant
    if "/" not in variant and (local / CONFIG).is_file():
        return from_folder(local, variant, "experts dir")
    if "/" in variant:
        if not _HUB_ID.match(variant):
            raise UnknownExpertError(f"timm@{variant}: a Hugging Face repo id looks like 'org/name'")
        return from_hub(variant)
    return from_timm(variant, home)


# -- config.json ----------------------------------------------------------------------------------
def read_config(path: Path) -> tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(architecture, pretrained_cfg, model_args, n2n_info)`` of a timm ``config.json``.

    Reads both layouts timm writes: the current one (``architecture``, ``num_classes``,
    ``pretrained_cfg``, ``model_args``) and the older single dict.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path} is not a readable timm config.json ({type(e).__name__}: {e})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("architecture"), str):
        raise InputError(f"{path} is not a timm config.json: it names no 'architecture'")
    if isinstance(raw.get("pretrained_cfg"), dict):
        cfg = dict(raw["pretrained_cfg"])
    else:  # the older layout: one dict
        cfg = {k: v for k, v in raw.items() if k not in ("architecture", "num_features", "n2n_hub")}
        if "labels" in cfg:
            cfg["label_names"] = cfg.pop("labels")
    for key in ("num_classes", "label_names"):
        if key in raw:
            cfg[key] = raw[key]
    args = raw.get("model_args") or {}
    if not isinstance(args, dict):
        raise InputError(f"{path}: model_args must be a JSON object")
    size = list(cfg.get("input_size") or (3, 224, 224))
    if args.get("in_chans") is not None:
        size[0] = int(args["in_chans"])
    if args.get("img_size") is not None and cfg.get("fixed_input_size", False):
        img = args["img_size"]
        size[1:] = [img, img] if isinstance(img, int) else list(img)
    cfg["input_size"] = tuple(int(s) for s in size)
    info = raw.get("n2n_hub") if isinstance(raw.get("n2n_hub"), dict) else {}
    return raw["architecture"], cfg, dict(args), info


def from_folder(folder: Path, variant: str, origin: str) -> ModelSource:
    config = folder / CONFIG
    if not config.is_file():
        raise MissingWeightsError(f"{folder} holds no {CONFIG}: timm@FOLDER needs timm's Hugging Face layout, "
                                  f"{CONFIG} + model.safetensors (timm's save_for_hf writes it)")
    arch, cfg, args, info = read_config(config)
    _check_architecture(arch, f"{config} names architecture {arch!r}, which this timm does not know")
    return ModelSource(variant, f"{variant} ({folder})" if origin == "experts dir" else str(folder), origin, arch,
                       cfg, args, folder=folder, info=info)


def from_hub(repo: str) -> ModelSource:
    """A Hugging Face repo in timm's layout; its config.json comes from the cache (downloaded unless offline)."""
    from .weights import hub_file

    config = hub_file(repo, CONFIG, f"timm@{repo}")
    arch, cfg, args, info = read_config(config)
    _check_architecture(arch, f"{repo}'s {CONFIG} names architecture {arch!r}, which this timm does not know")
    return ModelSource(repo, repo, "hugging face", arch, cfg, args, hf_repo=repo, info=info)


# -- timm's own names -----------------------------------------------------------------------------
def _check_architecture(arch: str, problem: str) -> None:
    import timm

    if not timm.is_model(arch):
        raise UnknownExpertError(f"{problem}; update timm (pip install -U timm) or fix the config")


def from_timm(variant: str, home: Path | None = None) -> ModelSource:
    """timm's registered model ``arch[.tag]``; weights from the Hugging Face repo its config names."""
    import timm
    from timm.models import get_arch_pretrained_cfgs

    arch, _, tag = variant.partition(".")
    if not timm.is_model(arch):
        close = suggestions(variant, timm.list_models() + timm.list_models(pretrained=True)
                            + [p.name for p in trained_here(home)])
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownExpertError(f"timm has no model {arch!r}.{hint} `n2n-hub experts -q NAME` searches "
                                 "timm's models")
    tagged = {name.partition(".")[2]: cfg for name, cfg in get_arch_pretrained_cfgs(arch).items()}
    tagged.pop("", None)
    if tag and tag not in tagged:
        known = ", ".join(f"{arch}.{t}" for t in tagged) or "none"
        raise UnknownExpertError(f"timm has no weights {variant!r} (and the hub's experts dir has no model of that "
                                 f"name); {arch}'s pretrained weights: {known}. Train one with `n2n-hub train-expert "
                                 f"timm --model {arch} --dataset DATASET`")
    if not tag and tagged:
        tag = next(iter(tagged))  # timm lists an architecture's default weights first
    name = f"{arch}.{tag}" if tag else arch
    local = experts_dir("timm", home) / name
    if name != variant and (local / CONFIG).is_file():
        return from_folder(local, variant, "experts dir")
    if tag:
        cfg = tagged[tag].to_dict()
        hf = cfg.get("hf_hub_id") or None
        return ModelSource(variant, name, "timm", arch, cfg, hf_repo=hf)
    model_cfg = timm.models.get_pretrained_cfg(arch)
    cfg = model_cfg.to_dict() if model_cfg is not None else {}
    return ModelSource(variant, name, "timm", arch, cfg)
