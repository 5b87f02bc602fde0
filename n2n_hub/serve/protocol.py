"""The HTTP connection, guarded: slow or idle clients are cut off, and open connections are capped.

uvicorn closes a kept-alive connection that stays idle (``timeout_keep_alive``), but it waits
for ever for the headers of a new connection, and its ``limit_concurrency`` counts idle
connections too, so a few hundred idle sockets would make it refuse everyone, health checks
included. The guard, on either of uvicorn's HTTP/1.1 protocols (httptools when installed, else h11), adds:

- a **header deadline**: a connection must deliver a request's complete headers within
  ``header_timeout_s`` of opening (or of starting the next request); else it gets 408 and is closed;
- a **header size limit**: headers past ``max_header_bytes`` get 431 and the connection is closed;
- a **cap on open connections**: past ``max_connections`` the connection idle the longest (no
  request in progress: an idle keep-alive, or headers still trickling in) is closed to make room;
  only when every connection is busy with a request is the new one refused.

The body deadline lives in the ASGI middleware (:mod:`.middleware`), where a 408 can be answered.
"""

from __future__ import annotations

import time
from typing import Any

from .settings import Limits

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class Guard:
    """The guard, mixed into a uvicorn protocol class; subclasses say when headers are awaited."""

    header_timeout_s: float = Limits.header_timeout_s
    max_connections: int = Limits.max_connections
    max_header_bytes: int = Limits.max_header_bytes
    # uvicorn's protocol attributes the guard uses
    connections: set[Any]
    transport: Any
    loop: Any
    cycle: Any

    def _guard_init(self) -> None:
        self._header_timer: Any = None
        self._idle_since = time.monotonic()
        self._head_bytes = 0  # bytes received while a request's headers are awaited

    def awaiting_headers(self) -> bool:
        raise NotImplementedError

    def idle(self) -> bool:
        """No request in progress: a kept-alive connection, or one whose headers are not all here."""
        return self.awaiting_headers() and (self.cycle is None or self.cycle.response_complete)

    # -- uvicorn's hooks ---------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._idle_since = time.monotonic()
        self._arm()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        waiting = self.awaiting_headers()
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            return
        if not self.awaiting_headers():
            self._disarm()
            self._head_bytes = 0
            return
        self._head_bytes = self._head_bytes + len(data) if waiting else len(data)
        if self._head_bytes > self.max_header_bytes:
            self._disarm()
            self.transport.write(TOO_LARGE)
            self.transport.close()
        elif self._header_timer is None:
            self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]  # arms uvicorn's keep-alive (idle) timer
        self._idle_since = time.monotonic()
        self._head_bytes = 0

    # -- the guards --------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self.awaiting_headers():
            return
        if self._head_bytes:  # a request started but its headers did not arrive in time
            self.transport.write(TIMED_OUT)
        self.transport.close()

    def _make_room(self) -> None:
        others = [p for p in self.connections
                  if p is not self and isinstance(p, Guard) and p.idle() and not p.transport.is_closing()]
        if not others:
            self.transport.close()  # every other connection is busy with a request: refuse this one
            return
        min(others, key=lambda p: p._idle_since).transport.close()


def _h11() -> type:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(Guard, H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard_init()

        def awaiting_headers(self) -> bool:
            return self.conn.their_state is h11.IDLE  # type: ignore[no-any-return]

    return GuardedH11Protocol


def _httptools() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(Guard, HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._guard_init()
            self._reading_headers = False

        def awaiting_headers(self) -> bool:
            if self._reading_headers:
                return True
            return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

        def on_message_begin(self) -> None:
            self._reading_headers = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._reading_headers = False
            super().on_headers_complete()

    return GuardedHttpToolsProtocol


def guarded_protocol(limits: Limits, http: str = "auto") -> type:
    """The protocol class for one server's limits: httptools (``auto``, when installed) or h11."""
    import importlib.util

    make = _h11
    if http == "httptools" or (http == "auto" and importlib.util.find_spec("httptools") is not None):
        make = _httptools
    return type(make().__name__, (make(),), {"header_timeout_s": limits.header_timeout_s,
                                             "max_connections": limits.max_connections,
                                             "max_header_bytes": limits.max_header_bytes})
