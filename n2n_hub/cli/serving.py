"""``serve``: the HTTP face, started from the command line."""

from __future__ import annotations

from dataclasses import dataclass

import click

from ..base.options import FiniteFloat
from .hubs import set_threads, working_hub
from .options import MAX_SAMPLES, device_option, option_group, threads_option


@dataclass(frozen=True)
class RequestLimits:
    """``--max-n --max-inputs --max-queue --request-timeout``: what one request may ask for."""

    max_n: int
    max_inputs: int
    max_queue: int
    request_timeout: float


limit_options = option_group("limits", RequestLimits, [
    click.option("--max-n", type=click.IntRange(min=1, max=MAX_SAMPLES), default=64, show_default=True,
                 help="Samples per input."),
    click.option("--max-inputs", type=click.IntRange(min=1, max=4096), default=16, show_default=True,
                 help="Inputs per request."),
    click.option("--max-queue", type=click.IntRange(min=1, max=1_000_000), default=256, show_default=True,
                 help="Requests waiting per pair before 429."),
    click.option("--request-timeout", type=FiniteFloat(0, 86_400, low_open=True), default=60.0, show_default=True,
                 help="Seconds a request may take."),
])


@click.command(name="serve")
@click.argument("pairs", nargs=-1)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback unless told).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8000, show_default=True)
@device_option()
@click.option("--max-batch", type=click.IntRange(min=1, max=4096), default=16, show_default=True,
              help="Requests merged into one encode and one translator call (1: no batching).")
@click.option("--max-delay-ms", type=FiniteFloat(0, 10_000), default=5.0, show_default=True,
              help="How long a request waits for others to batch with.")
@click.option("--api-key-env", metavar="VAR", help="Require the key held in environment variable VAR.")
@click.option("--allow-train", is_flag=True, help="Train a pair's translator when it is not cached.")
@click.option("--lazy", is_flag=True, help="Load pairs on first request (503 + Retry-After until ready).")
@limit_options
@click.option("--encode-apart", is_flag=True,
              help="Encode each request's inputs in a call of its own: seeded latents keep their bits in any "
                   "batch even for sources that pad a batch (BERT), at some throughput.")
@click.option("--allow-address", "allow_addresses", multiple=True, metavar="PATTERN",
              help="Also let requests name expert addresses matching PATTERN ('*' stays within one path "
                   "segment, e.g. 'bert@*'); by default only the served pairs' and the registry's addresses.")
@threads_option("CPU threads for torch (default: torch's: OMP_NUM_THREADS, else one per core). Replicas answer a seeded "
                "request with the same bytes when they run the same number of threads.")
def serve_cmd(pairs: tuple[str, ...], host: str, port: int, device: str, max_batch: int, max_delay_ms: float,
              api_key_env: str | None, allow_train: bool, lazy: bool, limits: RequestLimits, encode_apart: bool,
              allow_addresses: tuple[str, ...], threads: int | None) -> None:
    """Serve translations over HTTP: JSON API, web page at /, metrics, dynamic batching.

    PAIRS are registry names (`n2n-hub pairs`) or SRC,TGT; default: the registry pairs
    whose translators are cached, plus the offline default bert,vaegan@animals.

    \b
    Example:
      n2n-hub serve bert-vaegan-animals --port 8000
      curl -s localhost:8000/v1/translate -d '{"pair": "bert-vaegan-animals", "texts": ["a zebra"], "n": 4, "format": "png"}' -o zebra.png
    """
    from dataclasses import replace

    from ..serve import Limits, ServeSettings
    from ..serve.server import api_key_from_env, run

    set_threads(threads)
    key = api_key_from_env(api_key_env)
    request_limits = replace(Limits(), max_n=limits.max_n, max_inputs=limits.max_inputs, max_queue=limits.max_queue,
                             request_timeout_s=limits.request_timeout)
    settings = ServeSettings(max_batch=max_batch, max_delay_ms=max_delay_ms, allow_train=allow_train, lazy=lazy,
                             api_key=key, limits=request_limits, merge_encode=not encode_apart,
                             allow_addresses=tuple(allow_addresses))
    run(working_hub(device=device, quiet=True), settings, list(pairs), host, port,
        log=lambda m: click.echo(m, err=True))


COMMANDS = [serve_cmd]
