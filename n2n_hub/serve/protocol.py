"""The HTTP connection, guarded: slow or idle clients are cut off, and open connections are capped.

uvicorn's h11 protocol closes a kept-alive connection that stays idle (``timeout_keep_alive``)
and bounds the size of a request's headers (``h11_max_incomplete_event_size``), but it waits
for ever for the headers of a new connection, and its ``limit_concurrency`` counts idle
connections too, so a few hundred idle sockets would make it refuse everyone, health checks
included. This subclass adds:

- a **header deadline**: a connection must deliver a request's complete headers within
  ``header_timeout_s`` of opening (or of starting the next request); else it gets 408 and is closed;
- a **cap on open connections**: past ``max_connections`` the connection idle the longest (no
  request in progress: an idle keep-alive, or headers still trickling in) is closed to make room;
  only when every connection is busy with a request is the new one refused.

The body deadline lives in the ASGI middleware (:mod:`.middleware`), where a 408 can be answered.
"""

from __future__ import annotations

import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Limits

TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a cap on open connections (see the module)."""

    header_timeout_s: float = Limits.header_timeout_s
    max_connections: int = Limits.max_connections

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: Any = None
        self._idle_since = time.monotonic()
        self._heard = False  # bytes of the current request have arrived

    @classmethod
    def with_limits(cls, limits: Limits) -> type["GuardedH11Protocol"]:
        """A protocol class for one server's limits (uvicorn builds one instance per connection)."""
        return type("GuardedH11Protocol", (cls,), {"header_timeout_s": limits.header_timeout_s,
                                                   "max_connections": limits.max_connections})

    # -- uvicorn's hooks ---------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_since = time.monotonic()
        self._arm()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._heard = True
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # still waiting for a request's complete headers
            if self._header_timer is None and not self.transport.is_closing():
                self._arm()
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive (idle) timer
        self._idle_since = time.monotonic()
        self._heard = False

    # -- the guards --------------------------------------------------------------------------
    def idle(self) -> bool:
        """No request in progress: a kept-alive connection, or one whose headers are not all here."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self._heard:  # a request started but its headers did not arrive in time
            self.transport.write(TIMED_OUT)
        self.transport.close()

    def _make_room(self) -> None:
        others = [p for p in self.connections
                  if p is not self and isinstance(p, GuardedH11Protocol) and p.idle() and not p.transport.is_closing()]
        if not others:
            self.transport.close()  # every other connection is busy with a request: refuse this one
            return
        min(others, key=lambda p: p._idle_since).transport.close()
