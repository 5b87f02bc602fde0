"""The names of timm's models, without importing timm's model code on every command.

Importing timm registers all 1,300-odd architectures (seconds of imports); listing and
searching experts must stay instant. So the names are computed once per timm version and
kept in the hub home (``experts/timm/names-timm-<version>.json``); the models trained
here are the folders beside it. Nothing here imports torch unless that file is missing.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from n2n_hub import ExpertSpec, Variant
from n2n_hub.kit import PluginError, atomic_write_bytes, experts_dir

CONFIG = "config.json"


def timm_version() -> str:
    try:
        return version("timm")
    except PackageNotFoundError:
        raise PluginError("the timm expert needs the timm package: pip install timm") from None


def cache_file(home: Path | None = None) -> Path:
    return experts_dir("timm", home) / f"names-timm-{timm_version()}.json"


def _compute() -> dict[str, Any]:
    import timm
    from timm.models import get_pretrained_cfg

    pretrained: dict[str, dict[str, str | None]] = {}
    for name in timm.list_models(pretrained=True):
        cfg = get_pretrained_cfg(name)
        pretrained[name] = {"hf_hub_id": getattr(cfg, "hf_hub_id", None) or None,
                            "license": getattr(cfg, "license", None) or None}
    return {"timm": timm_version(), "architectures": list(timm.list_models()), "pretrained": pretrained}


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and {"architectures", "pretrained"} <= set(data):
            return data
    except (OSError, ValueError):
        pass
    data = _compute()
    try:
        atomic_write_bytes(path, json.dumps(data, sort_keys=True).encode())
    except OSError:
        pass  # a read-only home: compute again next time
    return data


def names(home: Path | None = None) -> dict[str, Any]:
    """``{"architectures": [...], "pretrained": {name.tag: {"hf_hub_id", "license"}}}``."""
    return _load(cache_file(home))


def trained_here(home: Path | None = None) -> list[Path]:
    """Model folders under the hub's experts dir (trained here, or dropped there for offline use)."""
    root = experts_dir("timm", home)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / CONFIG).is_file())


def _summary(folder: Path) -> str:
    try:
        info = json.loads((folder / CONFIG).read_text(encoding="utf-8")).get("n2n_hub", {})
    except (OSError, ValueError, AttributeError):
        info = {}
    if not isinstance(info, dict) or "dataset" not in info:
        return "a model folder in the hub's experts dir"
    acc = info.get("test_accuracy")
    return f"trained here on {info['dataset']}" + (f" (test accuracy {acc:.3f})" if isinstance(acc, float) else "")


def search(spec: ExpertSpec, query: str) -> list[Variant]:
    """Models whose name matches ``query`` (substring, or a wildcard such as ``resnet*``)."""
    q = query.lower()
    pattern = q if any(ch in q for ch in "*?[") else f"*{q}*"
    found = [Variant(p.name, _summary(p), source=str(p)) for p in trained_here() if fnmatch.fnmatch(p.name.lower(), pattern)]
    data = names()
    defaults = {}
    for name in data["pretrained"]:
        defaults.setdefault(name.split(".", 1)[0], name)  # timm lists an architecture's default tag first
    rows = []
    for arch in data["architectures"]:
        if fnmatch.fnmatch(arch.lower(), pattern):
            what = (f"architecture; its default weights are {defaults[arch]}" if arch in defaults else
                    "architecture without pretrained weights in timm: train it with `n2n-hub train-expert timm`")
            rows.append(Variant(arch, what, source="timm"))
    for name, meta in data["pretrained"].items():
        if fnmatch.fnmatch(name.lower(), pattern):
            lic = f" ({meta['license']})" if meta.get("license") else ""
            rows.append(Variant(name, f"pretrained weights{lic}",
                                source=f"hf-hub:{meta['hf_hub_id']}" if meta.get("hf_hub_id") else "timm (URL)"))
    return found + sorted(rows, key=lambda v: v.name)


def suggestions(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Close matches for a misspelt model name (architecture or architecture.tag)."""
    lowered = {c.lower(): c for c in candidates}
    return [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]
