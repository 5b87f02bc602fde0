"""The pairs a server holds: loaded at start-up or on first use, never trained unless allowed."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import CacheError, InputError, N2NError
from ..spec.expert import ExpertAddress
from ..catalog.planning import lookup_spec, resolve_variant
from ..translators.translator import Translator
from .requests import Rejected

log = logging.getLogger("n2n_hub.serve")

# The pair that works with nothing but PyPI packages (README, "Set-up").
OFFLINE_DEFAULT = ("bert", "vaegan@animals")


def canonical(hub: Any, address: str) -> str:
    """``bert`` -> ``bert@all-MiniLM-L6-v2``: the form pairs are keyed by (raises for unknown experts)."""
    addr = ExpertAddress.parse(address)
    spec = lookup_spec(hub.catalog, addr)
    return str(resolve_variant(spec, addr))


def pair_key(source: str, target: str) -> str:
    return f"{source}->{target}"


@dataclass
class PairSlot:
    """One pair: ``loading`` -> ``ready`` (with its translator) or ``failed`` (with the reason)."""

    source: str
    target: str
    name: str | None = None
    state: str = "loading"
    error: str | None = None
    translator: Translator | None = None
    startup: bool = False
    batcher: Any = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def key(self) -> str:
        return pair_key(self.source, self.target)

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


class PairPool:
    """Finds the slot for a request and loads pairs in background threads."""

    def __init__(self, hub: Any, allow_train: bool, on_ready: Callable[[PairSlot], None]) -> None:
        self.hub = hub
        self.allow_train = allow_train
        self.on_ready = on_ready
        self.slots: dict[str, PairSlot] = {}
        self._lock = threading.Lock()
        self._hub_lock = threading.Lock()  # the Hub's expert cache is not thread-safe
        self._resolved: dict[tuple[str | None, str | None, str | None], tuple[str, str, str | None]] = {}

    def resolved(self, source: str | None, target: str | None, name: str | None) -> tuple[str, str, str | None] | None:
        """What :meth:`resolve` answered before for these fields (a dict look-up), else None."""
        return self._resolved.get((source, target, name))

    def resolve(self, source: str | None, target: str | None, name: str | None) -> tuple[str, str, str | None]:
        """Canonical (source, target, registry name) from a request; errors say what to send.

        Answers are remembered: the catalogue and the registry do not change while a server
        runs, and every request names its pair. Errors are not remembered (there are few kinds
        of good request but any number of bad ones).
        """
        key = (source, target, name)
        hit = self._resolved.get(key)
        if hit is None:
            hit = self._resolve(source, target, name)
            if len(self._resolved) < 1024:  # bounded: callers choose the spellings
                self._resolved[key] = hit
        return hit

    def _resolve(self, source: str | None, target: str | None, name: str | None) -> tuple[str, str, str | None]:
        if name:
            entry = self.hub.registry.entries.get(name)
            if entry is None:
                for slot in self.slots.values():
                    if slot.name == name or slot.key == name:
                        return slot.source, slot.target, slot.name
                known = sorted(self.hub.registry.entries)
                raise Rejected(404, f"unknown pair {name!r}; known pairs: {', '.join(known) or 'none'} "
                                    "(or send 'source' and 'target')")
            source, target = str(entry.source), str(entry.target)
        if not source or not target:
            raise InputError("say which pair: send 'source' and 'target' (expert addresses) or 'pair' (a registry name)")
        src, tgt = canonical(self.hub, source), canonical(self.hub, target)
        if name is None:
            entry = self.hub.registry.find(ExpertAddress.parse(src), ExpertAddress.parse(tgt))
            name = entry.name if entry is not None else None
        return src, tgt, name

    def add_ready(self, translator: Translator, name: str | None = None) -> PairSlot:
        """Serve a translator the caller has already loaded."""
        slot = PairSlot(str(translator.source_address), str(translator.target_address), name=name, state="ready",
                        translator=translator, startup=True)
        slot.done.set()
        with self._lock:
            self.slots[slot.key] = slot
        self.on_ready(slot)
        return slot

    def ensure(self, source: str, target: str, name: str | None = None, startup: bool = False,
               pair_options: dict[str, Any] | None = None, background: bool = True) -> PairSlot:
        """The slot for a pair, starting its load if it has none yet."""
        key = pair_key(source, target)
        with self._lock:
            slot = self.slots.get(key)
            if slot is not None:
                return slot
            slot = PairSlot(source, target, name=name, startup=startup)
            self.slots[key] = slot
        if background:
            threading.Thread(target=self._load, args=(slot, pair_options or {}), daemon=True,
                             name=f"n2n-load-{key}").start()
        else:
            self._load(slot, pair_options or {})
        return slot

    def _load(self, slot: PairSlot, options: dict[str, Any]) -> None:
        try:
            with self._hub_lock:
                log.info("loading pair %s", slot.key)
                t = self.hub.pair(slot.source, slot.target, train_if_missing=self.allow_train, **options)
                t.module.eval()
            slot.translator = t
            self.on_ready(slot)
            slot.state = "ready"
            log.info("pair %s ready (%s)", slot.key, t.path)
        except CacheError as e:
            slot.state, slot.error = "failed", f"{e} (or start the server with --allow-train)"
        except N2NError as e:
            slot.state, slot.error = "failed", str(e)
        except Exception as e:  # noqa: BLE001 - a pair that cannot load must not take the server down
            log.exception("pair %s failed to load", slot.key)
            slot.state, slot.error = "failed", f"{type(e).__name__}: {e}"
        finally:
            if slot.state == "failed":
                log.warning("pair %s not served: %s", slot.key, slot.error)
            slot.done.set()

    def startup_pairs(self, requested: list[str]) -> list[tuple[str, str, str | None]]:
        """What ``serve`` loads: the pairs named, else the registry's cached pairs and the offline default."""
        if requested:
            out = []
            for item in requested:
                if "," in item:
                    src, tgt = item.split(",", 1)
                    out.append(self.resolve(src.strip(), tgt.strip(), None))
                else:
                    out.append(self.resolve(None, None, item))
            return out
        cached_labels = {e.pair for e in self.hub.cache.entries()}
        out, seen = [], set()
        candidates = [(str(e.source), str(e.target)) for e in self.hub.pairs()]
        for i, (src, tgt) in enumerate([OFFLINE_DEFAULT, *candidates]):
            try:
                s, t, name = self.resolve(src, tgt, None)
            except N2NError:
                continue  # its plugin is not installed
            from ..translators.store import safe_label

            if pair_key(s, t) in seen or (i > 0 and safe_label(f"{s}--{t}") not in cached_labels):
                continue
            seen.add(pair_key(s, t))
            out.append((s, t, name))
        return out
