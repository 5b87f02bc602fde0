"""What one server holds: the hub, its pairs and their batchers, metrics; the routes reach it as
``request.app.state.n2n``."""

from __future__ import annotations

import time
from typing import Any, Callable

from .. import Translator
from .access import AddressPolicy
from .batching import Batcher
from .checks import PairChecks
from .engine import run_jobs
from .metrics import Metrics
from .pairs import PairPool, PairSlot
from .settings import ServeSettings


class ServerState:
    """Everything one app holds. The start-up pairs are planned here, so a wrong name fails
    before the server binds its port."""

    def __init__(self, hub: Any, settings: ServeSettings, pairs: list[str], translators: list[Translator]) -> None:
        self.hub = hub
        self.settings = settings
        self.metrics = Metrics()
        registry = [a for e in hub.pairs() for a in (str(e.source), str(e.target))]
        self.pool = PairPool(hub, settings.allow_train, on_ready=self._on_ready,
                             policy=AddressPolicy(registry, settings.allow_addresses),
                             max_pairs=settings.limits.max_pairs, retry_s=settings.retry_failed_s)
        self.preloaded = translators
        self.started = time.time()
        self.calls: dict[str, int] = {"encode": 0, "translate": 0, "transfer": 0, "decode": 0}
        self._catalogue: dict[str, Any] = {}
        self.startup = self.pool.startup_plans(pairs)
        for plan, name in self.startup:
            self.pool.reserve(plan, name)

    def catalogue(self, what: str, make: Callable[[], Any]) -> Any:
        """A listing that cannot change while the server runs (experts, registry pairs), made once."""
        if what not in self._catalogue:
            self._catalogue[what] = make()
        return self._catalogue[what]

    def _on_ready(self, slot: PairSlot) -> None:
        """A loaded pair gets its latent ranges and its batch queue (in the thread that loaded it)."""
        t = slot.translator
        assert t is not None
        key = slot.key
        checks = slot.checks = PairChecks.of(t)

        def run(jobs: list[Any]) -> list[Any]:
            return run_jobs(t, jobs, on_call=self._count, merge_encode=self.settings.merge_encode, checks=checks)

        def on_batch(size: int) -> None:
            self.metrics.batch_size.labels(key).observe(size)
            self.metrics.batches.labels(key).inc()

        slot.batcher = Batcher(run, self.settings.max_batch, self.settings.max_delay_ms / 1000,
                               self.settings.limits.max_queue, name=key, on_batch=on_batch)

    def _count(self, what: str) -> None:
        self.calls[what] = self.calls.get(what, 0) + 1

    def start(self) -> None:
        """Serve the preloaded translators and start loading the start-up pairs (in the background)."""
        for t in self.preloaded:
            self.pool.add_ready(t)
        if self.settings.lazy:
            return
        for plan, name in self.startup:
            self.pool.ensure(plan, name=name, startup=True)

    def ready(self) -> tuple[bool, list[dict[str, Any]]]:
        """Whether a load balancer may send traffic, and every slot's facts.

        Ready: no start-up pair is still loading (``--lazy``: they load on first use) or has
        failed, and something can be served. A failed start-up pair is tried again here once its
        back-off has passed, so a restored translator file makes the server ready again.
        """
        self.pool.retry_due()
        slots = list(self.pool.slots.values())
        startup = [s for s in slots if s.startup]
        loading = not self.settings.lazy and any(s.state == "loading" for s in startup)
        failed = any(s.state == "failed" for s in startup)
        serving = any(s.state == "ready" for s in slots) or (self.settings.lazy and not failed)
        return not loading and not failed and serving, [s.to_dict() for s in slots]

    def update_gauges(self) -> None:
        for slot in self.pool.slots.values():
            if slot.batcher is not None:
                self.metrics.queue_depth.labels(slot.key).set(slot.batcher.depth)

    async def close(self) -> None:
        for slot in list(self.pool.slots.values()):
            if slot.batcher is not None:
                await slot.batcher.close()
