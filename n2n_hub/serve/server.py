"""Running the app under uvicorn: loopback by default, JSON access logs, graceful shutdown."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from typing import Any

from ..errors import InputError
from .settings import ServeSettings


def api_key_from_env(var: str | None) -> str | None:
    """The key lives in an environment variable, never on the command line (where `ps` shows it)."""
    if not var:
        return None
    key = os.environ.get(var, "")
    if not key:
        raise InputError(f"--api-key-env {var}: the environment variable {var} is not set or empty; "
                         f"export {var}=<a long random key>")
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure_logging(level: str = "info") -> None:
    """One JSON object per request on stderr (``n2n_hub.serve.access``), plain lines for the rest."""
    access = logging.getLogger("n2n_hub.serve.access")
    if not access.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(h)
        access.propagate = False
    access.setLevel(logging.INFO)
    root = logging.getLogger("n2n_hub")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))


def run(hub: Any, settings: ServeSettings, pairs: list[str], host: str, port: int,
        log: Any = print, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish first (up to the request time limit)."""
    import uvicorn

    from .app import create_app

    if not is_loopback(host) and not settings.api_key:
        log(f"warning: serving on {host} without an API key; anyone who can reach it can use it "
            "(set one with --api-key-env VAR)")
    configure_logging(log_level)
    app = create_app(hub, settings, pairs)
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level=log_level,
                            timeout_graceful_shutdown=int(settings.limits.request_timeout_s) + 5,
                            limit_concurrency=settings.limits.max_queue * 4 + 64)
    uvicorn.Server(config).run()
