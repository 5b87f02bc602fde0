"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

disable_created_metrics()  # the *_created series only add noise to scrapes

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("n2n_requests", "HTTP requests by route and status", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("n2n_request_seconds", "Time from request to answer", ["route"],
                                 buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("n2n_batch_size", "Requests merged into one translator call", ["pair"],
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.batches = Counter("n2n_batches", "Translator calls (batches) run", ["pair"], registry=self.registry)
        self.queue_depth = Gauge("n2n_queue_depth", "Requests waiting for a batch", ["pair"], registry=self.registry)
        self.in_flight = Gauge("n2n_in_flight", "Requests being answered", registry=self.registry)
        self.samples = Counter("n2n_samples", "Samples translated", ["pair"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
