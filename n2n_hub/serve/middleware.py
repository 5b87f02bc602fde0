"""The API key, request ids, metrics, access logs and the body deadline as one plain ASGI middleware.

Starlette's ``BaseHTTPMiddleware`` runs every request in an extra task with its own body
stream; under load that is a measurable share of a request. This wraps ``send`` instead:
the status and headers are seen as they go out, and nothing else is copied.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

from .metrics import Metrics
from .requests import over

access_log = logging.getLogger("n2n_hub.serve.access")
log = logging.getLogger("n2n_hub.serve")

OPEN_PATHS = ("/healthz", "/readyz")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KEY_MESSAGE = "missing or wrong API key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"


def key_ok(headers: dict[str, str], key: str) -> bool:
    """The key from ``X-API-Key``, ``Authorization: Bearer`` or a browser's basic-auth password."""
    given = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    if given is None and auth.lower().startswith("basic "):  # browsers: any user name, the key as password
        try:
            given = base64.b64decode(auth[6:].strip()).decode().split(":", 1)[-1]
        except (ValueError, UnicodeDecodeError):
            given = None
    return given is not None and hmac.compare_digest(given.encode(), key.encode())


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": raw})


class GuardAndLog:
    """Refuses calls without the API key (but health), tags responses with ``X-Request-ID``,
    counts them by route template and status, and writes one JSON access-log line each."""

    def __init__(self, app: ASGIApp, metrics: Metrics, api_key: str | None, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.metrics = metrics
        self.api_key = api_key
        self.body_timeout_s = body_timeout_s

    def _timed(self, receive: Receive) -> Receive:
        """``receive`` that refuses (408, then the connection closes) a body still incomplete
        ``body_timeout_s`` after the request's headers; once the body is in, it is plain ``receive``."""
        deadline = time.monotonic() + self.body_timeout_s
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                late = over("body_timeout_s", f"the request body did not arrive within the limit of "
                                              f"{self.body_timeout_s:g} s", status=408)
                late.headers = {"Connection": "close"}
                raise late from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return timed_receive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        rid = headers.get("x-request-id") or uuid.uuid4().hex[:16]
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        path = scope.get("path", "")
        sent: dict[str, Any] = {"status": 500, "pair": None, "length": None, "started": False}

        async def tagged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["started"] = True
                sent["status"] = message["status"]
                out = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"]
                for k, v in out:
                    name = k.lower()
                    if name == b"x-n2n-pair":
                        sent["pair"] = v.decode("latin-1")
                    elif name == b"content-length":
                        sent["length"] = v.decode("latin-1")
                message = {**message, "headers": [*out, rid_header]}
            await send(message)

        authorised = not self.api_key or key_ok(headers, self.api_key)
        scope.setdefault("state", {})["n2n_authorised"] = authorised  # health routes say more to key holders
        self.metrics.in_flight.inc()
        try:
            if not authorised and path not in OPEN_PATHS:
                await _send_json(tagged_send, 401, {"error": KEY_MESSAGE},
                                 [(b"www-authenticate", b'Basic realm="n2n-hub"')])
            else:
                try:
                    await self.app(scope, self._timed(receive), tagged_send)
                except Exception as e:  # noqa: BLE001 - the server never dies on a request
                    log.exception("unhandled error on %s", path)
                    if sent["started"]:
                        raise  # the answer is half sent: only dropping the connection is left
                    await _send_json(tagged_send, 500, {"error": f"internal error: {type(e).__name__}: {e}"}, [])
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or ("static" if path.startswith("/static/") else "unmatched")
            self.metrics.requests.labels(template, str(sent["status"])).inc()
            self.metrics.latency.labels(template).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(json.dumps({
                    "ts": round(time.time(), 3), "request_id": rid, "client": client[0] if client else None,
                    "method": scope.get("method"), "path": path, "status": sent["status"],
                    "ms": round(elapsed * 1000, 2), "pair": sent["pair"], "length": sent["length"],
                }))
