"""The pairs a server holds: planned once, loaded at start-up or on first use, never trained unless allowed.

A request names its pair by registry name or by ``source``/``target`` addresses, which must be
on the operator's allow-list (:mod:`.access`) before anything is looked up. The first request
with a spelling plans the pair once (:meth:`Hub.plan`) and hands the plan to :meth:`Hub.pair`;
later requests with that spelling find their slot by a dict look-up and plan nothing. A pair
that failed to load is tried again on a later request (or readiness check) after a back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import PairPlan
from ..errors import CacheError, InputError, N2NError
from .. import Translator
from .access import AddressPolicy

log = logging.getLogger("n2n_hub.serve")

# The pair that works with nothing but PyPI packages (README, "Set-up").
OFFLINE_DEFAULT = ("bert", "vaegan@animals")
REMEMBERED_SPELLINGS = 1024  # request spellings kept with their plan (callers choose the spellings)
MAX_RETRY_S = 60.0


class UnknownPairError(InputError):
    """A request (or ``serve``) names a pair the registry does not know."""


class AddressNotAllowed(InputError):
    """A request names an expert address the operator did not allow."""


class TooManyPairs(InputError):
    """A new pair would take the server past ``max_pairs``."""


def pair_key(source: str, target: str) -> str:
    return f"{source}->{target}"


@dataclass
class PairSlot:
    """One pair: ``loading`` -> ``ready`` (with its translator) or ``failed`` (with the reason, retried later)."""

    source: str
    target: str
    name: str | None = None
    plan: PairPlan | None = None
    state: str = "loading"
    error: str | None = None
    translator: Translator | None = None
    startup: bool = False
    batcher: Any = None
    checks: Any = None             # the latent ranges of its experts (serve.checks.PairChecks)
    failures: int = 0              # loads that failed in a row
    failed_at: float = 0.0         # monotonic time of the last failure
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def key(self) -> str:
        return pair_key(self.source, self.target)

    def retry_in(self, base_s: float) -> float:
        """Seconds until a failed load may be tried again (0: now)."""
        wait = min(base_s * 2 ** max(0, self.failures - 1), MAX_RETRY_S)
        return max(0.0, self.failed_at + wait - time.monotonic())

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"pair": self.key, "name": self.name, "source": self.source, "target": self.target,
                             "state": self.state}
        if self.error:
            d["error"] = self.error
        t = self.translator
        if t is not None:
            d.update({"kind": t.kind, "temperature": t.temperature, "key": t.metadata.get("key"),
                      "source_domain": t.source.spec.input_domain, "target_domain": t.target.spec.output_domain,
                      "source_shape": list(t.source.spec.input_shape or []) or None,
                      "latent_shape": list(t.latent_shape)})
        return d


Spelling = tuple[str | None, str | None, str | None]


class PairPool:
    """Finds the slot for a request and loads pairs in background threads."""

    def __init__(self, hub: Any, allow_train: bool, on_ready: Callable[[PairSlot], None],
                 policy: AddressPolicy | None = None, max_pairs: int = 32, retry_s: float = 5.0) -> None:
        self.hub = hub
        self.allow_train = allow_train
        self.on_ready = on_ready
        self.policy = policy or AddressPolicy()
        self.max_pairs = max_pairs
        self.retry_s = retry_s
        self.slots: dict[str, PairSlot] = {}
        self._lock = threading.Lock()
        self._hub_lock = threading.Lock()  # the Hub's expert cache is not thread-safe
        self._spellings: dict[Spelling, tuple[PairPlan, str | None]] = {}
        self.startup_keys: set[str] = set()

    # -- from a request to a plan ------------------------------------------------------------
    def plan(self, source: str | None, target: str | None, name: str | None) -> tuple[PairPlan, str | None]:
        """The plan of the pair named by registry ``name`` or by addresses; errors say what to send."""
        if name:
            entry = self.hub.registry.entries.get(name)
            if entry is None:
                raise UnknownPairError(f"unknown pair {name!r}; known pairs: "
                                       f"{', '.join(sorted(self.hub.registry.entries)) or 'none'} "
                                       "(or give 'source' and 'target' addresses)")
            source, target = str(entry.source), str(entry.target)
        if not source or not target:
            raise InputError("say which pair: send 'source' and 'target' (expert addresses) or 'pair' (a registry name)")
        plan = self.hub.plan(source, target)
        self.policy.add(str(plan.source))  # the resolved spellings of allowed addresses
        self.policy.add(str(plan.target))
        return plan, name or (plan.entry.name if plan.entry is not None else None)

    def check_allowed(self, source: str | None, target: str | None) -> None:
        """Refuse an address the operator did not allow, before anything is looked up on disk or online."""
        for what, address in (("source", source), ("target", target)):
            if address is None or self.policy.allows(address):
                continue
            self.hub.expert_spec(address)  # an unknown expert id is named as such (a catalogue look-up)
            raise AddressNotAllowed(f"{what} {address!r} is not an address this server serves; it serves "
                                    f"{self.policy.listing()} (its operator can allow more with "
                                    "`n2n-hub serve --allow-address PATTERN`)")

    def known(self, source: str | None, target: str | None, name: str | None) -> tuple[PairSlot, str] | None:
        """The slot of a request spelled so before and its state (a dict look-up), else None.

        The state is the one seen now: a request that starts its pair's load (or a retry) sees
        ``loading`` even if the load fails at once in its thread.
        """
        planned = self._spellings.get((source, target, name))
        if planned is None:
            return None
        slot = self.slots.get(pair_key(str(planned[0].source), str(planned[0].target)))
        if slot is None:
            return self.ensure(*planned), "loading"
        return slot, self._retried(slot)

    def slot_for(self, source: str | None, target: str | None, name: str | None) -> tuple[PairSlot, str]:
        """The slot of the pair a request names and its state, planning it only if no request spelled it so before."""
        found = self.known(source, target, name)
        if found is not None:
            return found
        if name and not source and not target:  # a translator served without a plan of ours
            slot = next((s for s in self.slots.values() if name in (s.name, s.key)), None)
            if slot is not None:
                return slot, self._retried(slot)
        if not name:
            self.check_allowed(source, target)
        plan, registry_name = self.plan(source, target, name)
        slot = self.slots.get(pair_key(str(plan.source), str(plan.target)))
        if slot is None:
            slot = self.ensure(plan, name=registry_name)
            seen = "loading"
        else:
            seen = self._retried(slot)
        self.remember((source, target, name), plan, registry_name)
        return slot, seen

    def remember(self, spelling: Spelling, plan: PairPlan, name: str | None) -> None:
        """Answer ``spelling`` with ``plan`` from now on (bounded: callers choose the spellings)."""
        if len(self._spellings) < REMEMBERED_SPELLINGS or spelling in self._spellings:
            self._spellings[spelling] = (plan, name)

    def reserve(self, plan: PairPlan, name: str | None) -> None:
        """A start-up pair: known by its name and addresses from the start, counted by readiness."""
        self.startup_keys.add(pair_key(str(plan.source), str(plan.target)))
        self.policy.add(str(plan.source))
        self.policy.add(str(plan.target))
        if name:
            self.remember((None, None, name), plan, name)
        self.remember((str(plan.source), str(plan.target), None), plan, name)

    # -- slots ---------------------------------------------------------------------------------
    def add_ready(self, translator: Translator, name: str | None = None) -> PairSlot:
        """Serve a translator the caller has already loaded."""
        slot = PairSlot(str(translator.source_address), str(translator.target_address), name=name,
                        plan=translator.plan, state="ready", translator=translator, startup=True)
        slot.done.set()
        self.policy.add(slot.source)
        self.policy.add(slot.target)
        with self._lock:
            self.slots[slot.key] = slot
        self.on_ready(slot)
        return slot

    def ensure(self, plan: PairPlan, name: str | None = None, startup: bool = False) -> PairSlot:
        """The slot for a planned pair, starting its load if it has none yet."""
        key = pair_key(str(plan.source), str(plan.target))
        startup = startup or key in self.startup_keys
        with self._lock:
            slot = self.slots.get(key)
            if slot is not None:
                return slot
            if not startup and sum(not s.startup for s in self.slots.values()) >= self.max_pairs:
                raise TooManyPairs(f"this server holds {self.max_pairs} pairs besides its start-up pairs, its "
                                   "limit; ask for a pair it serves (GET /v1/pairs)")
            slot = PairSlot(str(plan.source), str(plan.target), name=name, plan=plan, startup=startup)
            self.slots[key] = slot
        self._start(slot)
        return slot

    def _start(self, slot: PairSlot) -> None:
        threading.Thread(target=self._load, args=(slot,), daemon=True, name=f"n2n-load-{slot.key}").start()

    def _retried(self, slot: PairSlot) -> str:
        """The slot's state, after starting a new load of a failed slot whose back-off has passed."""
        with self._lock:
            if slot.state != "failed" or slot.plan is None or slot.retry_in(self.retry_s) > 0:
                return slot.state
            slot.state = "loading"
            slot.done.clear()
        log.info("trying pair %s again (%d failed loads)", slot.key, slot.failures)
        self._start(slot)
        return "loading"

    def retry_due(self) -> None:
        """Start new loads of the failed start-up pairs whose back-off has passed (readiness checks call this)."""
        for slot in list(self.slots.values()):
            if slot.startup:
                self._retried(slot)

    def _load(self, slot: PairSlot) -> None:
        assert slot.plan is not None
        error = None
        try:
            with self._hub_lock:
                log.info("loading pair %s", slot.key)
                t = self.hub.pair(slot.plan, train_if_missing=self.allow_train)
                t.module.eval()
            slot.translator = t
            self.on_ready(slot)
            slot.state, slot.error, slot.failures = "ready", None, 0
            log.info("pair %s ready (%s)", slot.key, t.path)
        except CacheError as e:
            error = f"{e} (or start the server with --allow-train)"
        except N2NError as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001 - a pair that cannot load must not take the server down
            log.exception("pair %s failed to load", slot.key)
            error = f"{type(e).__name__}: {e}"
        finally:
            if error is not None:
                slot.failures += 1
                slot.failed_at = time.monotonic()
                slot.state, slot.error = "failed", error
                log.warning("pair %s not served: %s", slot.key, slot.error)
            slot.done.set()

    def startup_plans(self, requested: list[str]) -> list[tuple[PairPlan, str | None]]:
        """What ``serve`` loads: the pairs named, else the registry's cached pairs (the offline default
        too when it is cached or may be trained)."""
        if requested:
            out = []
            for item in requested:
                if "," in item:
                    src, tgt = item.split(",", 1)
                    out.append(self.plan(src.strip(), tgt.strip(), None))
                else:
                    out.append(self.plan(None, None, item))
            return out
        cached = {(e.summary.get("source"), e.summary.get("target")) for e in self.hub.cache.entries()}
        out, seen = [], set()
        candidates = [(str(e.source), str(e.target)) for e in self.hub.pairs()]
        for i, (src, tgt) in enumerate([OFFLINE_DEFAULT, *candidates]):
            try:
                plan, name = self.plan(src, tgt, None)
            except N2NError:
                continue  # its plugin is not installed, or its recipe cannot run here
            pair = (str(plan.source), str(plan.target))
            if pair in seen or (pair not in cached and not (i == 0 and self.allow_train)):
                continue
            seen.add(pair)
            out.append((plan, name))
        return out
