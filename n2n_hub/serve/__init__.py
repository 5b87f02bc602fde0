"""``n2n-hub serve``: translations over HTTP, with dynamic batching, limits, metrics and a page.

Built on FastAPI + uvicorn. The translator stays a plain object; the server adapts requests
to it (decode -> batch -> predict -> encode), one asyncio queue per pair.
"""

from .settings import Limits, ServeSettings

__all__ = ["Limits", "ServeSettings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
