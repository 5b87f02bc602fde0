"""What an operator can tune: batching, limits, access."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """Bounds on one request, and on the connections that carry them; a request past one gets a 4xx naming it."""

    max_n: int = 64                      # samples per input
    max_inputs: int = 16                 # texts, images or latent rows per request
    max_samples: int = 256               # inputs x n per request
    max_text_chars: int = 1000           # characters per text
    max_image_bytes: int = 4_000_000     # bytes per uploaded image
    max_image_pixels: int = 4096 * 4096  # width x height per uploaded image
    max_body_bytes: int = 20_000_000     # a whole request body
    max_json_latents: int = 65536        # numbers returned as JSON arrays (else ask for safetensors)
    request_timeout_s: float = 60.0      # time from arrival to answer
    max_queue: int = 256                 # requests waiting per pair; beyond it: 429
    max_pairs: int = 32                  # pairs a server holds at once (start-up pairs do not count); beyond: 503
    # Connections (:mod:`n2n_hub.serve.protocol`): a slow or idle client is cut off, so it
    # cannot hold the server's sockets, and health checks keep an answer within these times.
    header_timeout_s: float = 10.0       # from a connection's start (or its last answer) to a request's full headers
    body_timeout_s: float = 30.0         # from a request's headers to the end of its body (else 408)
    idle_timeout_s: float = 5.0          # a kept-alive connection with no new request is closed
    max_header_bytes: int = 16384        # request line + headers
    max_connections: int = 512           # open connections; past it the longest-idle one is closed


@dataclass(frozen=True)
class ServeSettings:
    """How the server batches and who may call it."""

    max_batch: int = 16                  # requests merged into one encode + one translator call
    max_delay_ms: float = 5.0            # how long a batch waits for company once the worker is free
    allow_train: bool = False            # may a request for an uncached pair train it?
    lazy: bool = False                   # load pairs on first use instead of at start-up
    merge_encode: bool = True            # one source encode per batch (False: one per request, see engine)
    api_key: str | None = None           # when set, every route but /healthz and /readyz needs it
    # Expert addresses requests may name besides the served pairs' and the registry's (see
    # serve.access): shell-style patterns where '*' stays within one path segment, e.g. 'bert@*'.
    allow_addresses: tuple[str, ...] = ()
    retry_failed_s: float = 5.0          # a pair that failed to load is tried again after this (doubling, max 60 s)
    limits: Limits = field(default_factory=Limits)
