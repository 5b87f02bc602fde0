"""Where n2n-hub keeps its files, and the environment variables that move them."""

from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Iterator

HOME_ENV = "N2N_HUB_HOME"
OFFLINE_ENV = "N2N_HUB_OFFLINE"
REGISTRY_ENV = "N2N_HUB_REGISTRY"


_home_override: contextvars.ContextVar[Path | None] = contextvars.ContextVar("n2n_hub_home", default=None)


@contextlib.contextmanager
def using_home(home: str | os.PathLike[str] | None) -> Iterator[None]:
    """Within this block :func:`hub_home` is ``home``: how ``Hub(home=...)`` reaches the experts it loads."""
    token = _home_override.set(Path(home).expanduser() if home is not None else None)
    try:
        yield
    finally:
        _home_override.reset(token)


def hub_home() -> Path:
    """The home of the hub being used, else ``$N2N_HUB_HOME``, else ``$XDG_CACHE_HOME/n2n-hub``, else ``~/.cache/n2n-hub``."""
    override = _home_override.get()
    if override is not None:
        return override
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "n2n-hub"


def translators_dir() -> Path:
    return hub_home() / "translators"


def features_dir() -> Path:
    return hub_home() / "features"


def experts_dir(expert_id: str, home: str | os.PathLike[str] | None = None) -> Path:
    """Per-expert files (trained weights, derived files such as BigGAN's dequantiser) under ``home``.

    ``home`` defaults to :func:`hub_home`; an expert passes its own ``self.home`` (the home of
    the hub that loaded it) so its files follow ``Hub(home=...)``.
    """
    return Path(home if home is not None else hub_home()).expanduser() / "experts" / expert_id


def user_registry_path() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "n2n-hub" / "registry.toml"


def is_offline() -> bool:
    """``N2N_HUB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``: never touch the network."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in (OFFLINE_ENV, "HF_HUB_OFFLINE"))
