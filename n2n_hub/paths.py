"""Where n2n-hub keeps its files, and the environment variables that move them."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "N2N_HUB_HOME"
OFFLINE_ENV = "N2N_HUB_OFFLINE"
REGISTRY_ENV = "N2N_HUB_REGISTRY"


def hub_home() -> Path:
    """``$N2N_HUB_HOME``, else ``$XDG_CACHE_HOME/n2n-hub``, else ``~/.cache/n2n-hub``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "n2n-hub"


def translators_dir() -> Path:
    return hub_home() / "translators"


def features_dir() -> Path:
    return hub_home() / "features"


def experts_dir(expert_id: str) -> Path:
    """Per-expert files the hub derives from an expert's weights (e.g. BigGAN's dequantiser)."""
    return hub_home() / "experts" / expert_id


def user_registry_path() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "n2n-hub" / "registry.toml"


def is_offline() -> bool:
    """``N2N_HUB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: never touch the network."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in (OFFLINE_ENV, "HF_HUB_OFFLINE"))
