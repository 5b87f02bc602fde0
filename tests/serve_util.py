"""Helpers for the serve tests: a hub over the toy plugin and a real uvicorn server on a free port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

# The toy pair of toy_util.py, trained briefly: these tests need a translator, not a good one.
TOY_REGISTRY = """
[pairs.toy-shapes]
source = "toytext"
target = "toygen"
recipe = "dataset"
dataset = "toyshapes"
source_from = "label"
bridges = ["label-caption"]

[pairs.toy-shapes.flow]
n_blocks = 2
hidden = 16

[pairs.toy-shapes.training]
steps = 30
batch_size = 64
val_every = 15
"""


def toy_hub(home: Path, registry_file: Path) -> Any:
    """A Hub that sees only the toy plugin and the caption bridge, with its own cache and registry."""
    from toy_util import make_toy_host

    from n2n_hub.hub import Hub
    from n2n_hub.catalog.registry import Registry

    registry_file.write_text(TOY_REGISTRY)
    return Hub(home=home, host=make_toy_host(), registry=Registry.load([registry_file]), progress=False,
               log=lambda m: None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app: Any, ready: bool = True, http: str = "auto") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on 127.0.0.1, configured as ``n2n-hub serve`` runs it; yields its base URL."""
    import httpx
    import uvicorn

    from n2n_hub.serve.server import uvicorn_config

    port = free_port()
    server = uvicorn.Server(uvicorn_config(app, app.state.n2n.settings, "127.0.0.1", port, log_level="warning",
                                                  http=http))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        while ready and httpx.get(url + "/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not get ready")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
