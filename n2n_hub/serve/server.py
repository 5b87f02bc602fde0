"""Running the app under uvicorn: loopback by default, JSON access logs, graceful shutdown."""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
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


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or one line saying why not (before any pair is loaded)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InputError(f"cannot listen on {host}: {e.strerror}; give --host an address of this machine "
                         "(127.0.0.1 by default)") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is already in use; pick another with --port "
                             "(or stop what listens there)") from None
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000,
                   log_level: str = "info", http: str = "auto") -> Any:
    """How uvicorn runs the app: the guarded protocol (header deadline and size, connection cap;
    ``http``: ``auto``, ``httptools`` or ``h11``), the idle limit of ``settings.limits``, and a
    graceful shutdown that lets requests finish.

    uvicorn's ``limit_concurrency`` stays off: it counts idle connections, so a crowd of idle
    sockets would make it refuse health checks; the protocol's cap closes idle ones instead.
    """
    import uvicorn

    from .protocol import guarded_protocol

    limits = settings.limits
    return uvicorn.Config(app, host=host, port=port, access_log=False, log_level=log_level,
                          http=guarded_protocol(limits, http),
                          timeout_keep_alive=limits.idle_timeout_s,  # type: ignore[arg-type]
                          h11_max_incomplete_event_size=limits.max_header_bytes,
                          timeout_graceful_shutdown=int(limits.request_timeout_s) + 5)


def run(hub: Any, settings: ServeSettings, pairs: list[str], host: str, port: int,
        log: Any = print, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish first (up to the request time limit).

    The port is taken and the start-up pairs are planned before anything loads, so a port in use
    or an unknown pair is one line and nothing else.
    """
    import uvicorn

    from .app import create_app

    if not is_loopback(host) and not settings.api_key:
        log(f"warning: serving on {host} without an API key; anyone who can reach it can use it "
            "(set one with --api-key-env VAR)")
    sock = listen(host, port)
    try:
        app = create_app(hub, settings, pairs)
        configure_logging(log_level)
        uvicorn.Server(uvicorn_config(app, settings, host, port, log_level)).run(sockets=[sock])
    finally:
        sock.close()
