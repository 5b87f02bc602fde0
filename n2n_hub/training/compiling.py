"""Compiling the training step where it pays: timed eager steps against a recorded compile cost.

``torch.compile`` fuses the flow's element-wise work around the matmuls (on two CPU cores a
step of the default flow runs about a fifth faster), but compiling forward and backward takes
from tens of seconds to minutes, so a short run loses time by it. The step is therefore taken
eagerly for a few steps and timed; the rest of the run is compiled when its expected saving
exceeds the compile cost. That cost, and the speed-up reached, are recorded per model shape
in ``<hub home>/compile/costs.json`` after each compile, and inductor's own cache lives beside
it (``TORCHINDUCTOR_CACHE_DIR``, unless set already), so a second run of the same shapes pays
only for loading the cached kernels, and knows it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..base.atomic import atomic_write_bytes
from ..base.paths import hub_home
from .config import Log
from .events import emit

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
EAGER_STEPS = 4  # steps taken eagerly before deciding; the last two are timed (the first ones warm up)
TIMED_COMPILED = 3  # compiled steps timed after the compile, for the record
# Before a shape has been compiled once on this machine: what two busy CPU cores took for the
# flows we ship (60-220 s), and a conservative share of the speed-up measured on them (bench/RESULTS.md).
PRIOR_COMPILE_S = {"cpu": 120.0, "cuda": 60.0}
PRIOR_SPEEDUP = 1.15


def compile_dir() -> Path:
    """Where compiled kernels and the record of compile costs are kept: ``<hub home>/compile``."""
    return hub_home() / "compile"


def _torch_default(folder: str) -> bool:
    """Whether ``folder`` is the cache torch picks by itself (importing dynamo writes it into the environment)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
        default = default_cache_dir()
    except (ImportError, AttributeError):  # another torch: its default is named like this one
        return Path(folder).name.startswith("torchinductor_")
    return os.path.abspath(folder) == os.path.abspath(default)


def use_compile_cache() -> Path:
    """Point inductor's cache under the hub's home, unless the user chose one in the environment."""
    current = os.environ.get(CACHE_ENV)
    if current is None or _torch_default(current):
        os.environ[CACHE_ENV] = current = str(compile_dir())
    folder = Path(current)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shape_signature(model: nn.Module, batch_rows: int, device: torch.device) -> str:
    """What a compiled step depends on: the module's class and config, the batch rows, dtype, device, torch."""
    config = model.config() if callable(getattr(model, "config", None)) else {}
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    text = json.dumps({"class": type(model).__qualname__, "arch": getattr(model, "arch_version", 1),
                       "config": config, "rows": batch_rows, "dtype": str(dtype), "device": device.type,
                       "torch": torch.__version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class CostRecord:
    """``costs.json``: per shape signature, the last measured compile seconds and speed-up."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, dict[str, float]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, signature: str) -> dict[str, float] | None:
        entry = self.read().get(signature)
        return entry if isinstance(entry, dict) else None

    def put(self, signature: str, compile_s: float, speedup: float) -> None:
        data = self.read()
        data[signature] = {"compile_s": round(compile_s, 2), "speedup": round(speedup, 3)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(data, indent=1, sort_keys=True).encode())
        except OSError:  # a read-only home: the next run estimates again
            pass


def pays(steps_left: int, eager_s: float, speedup: float, compile_s: float) -> bool:
    """Whether ``steps_left`` steps at ``speedup`` save more than ``compile_s`` against ``eager_s`` each."""
    return steps_left * eager_s * (1.0 - 1.0 / max(speedup, 1e-9)) > compile_s


class StepCompiler:
    """Decides once per run whether the step loss is compiled, and swaps it in.

    ``wanted``: True compiles, False never does, None decides from the timed eager steps.
    The caller times each step (:meth:`timed`) and asks for the loss to use (:attr:`loss`).
    """

    def __init__(self, model: nn.Module, loss: Callable[[Tensor, Tensor], Tensor], wanted: bool | None,
                 total_steps: int, device: torch.device, distributed: bool, log: Log | None) -> None:
        self.model, self.loss, self.eager = model, loss, loss
        self.wanted, self.total_steps, self.device, self.log = wanted, total_steps, device, log
        self.decided = wanted is False or distributed
        if distributed and wanted:
            emit(log, "compile", "not compiling the training step: torch.compile is not used under torchrun",
                 logging.WARNING)
        self.compiled = False
        self.taken = 0
        self.eager_times: list[float] = []
        self.compiled_times: list[float] = []
        self.signature: str | None = None

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def timed(self, step: int, batch_rows: int, take: Callable[[], Any]) -> Any:
        """Run ``take()`` (one whole step), timing it while the decision or the record needs it."""
        timing = not self.decided or (self.compiled and len(self.compiled_times) <= TIMED_COMPILED)
        if not timing:
            return take()
        self._sync()
        t = time.perf_counter()
        out = take()
        self._sync()
        elapsed = time.perf_counter() - t
        self.taken += 1
        if self.compiled:
            self.compiled_times.append(elapsed)
            if len(self.compiled_times) == TIMED_COMPILED + 1:
                self._record()
        else:
            if self.taken > EAGER_STEPS - 2:
                self.eager_times.append(elapsed)
            if self.taken >= EAGER_STEPS:
                self._decide(step + 1, batch_rows)
        return out

    def _decide(self, next_step: int, batch_rows: int) -> None:
        self.decided = True
        steps_left = self.total_steps - next_step
        if steps_left <= 0:
            return
        eager_s = statistics.median(self.eager_times)
        self.signature = shape_signature(self.model, batch_rows, self.device)
        record = CostRecord(compile_dir() / "costs.json").get(self.signature)
        if record is not None:
            compile_s, speedup, source = record["compile_s"], record["speedup"], "recorded for these shapes"
        else:
            compile_s, speedup = PRIOR_COMPILE_S.get(self.device.type, 120.0), PRIOR_SPEEDUP
            source = "estimated; first compile of these shapes"
        saving = steps_left * eager_s * (1.0 - 1.0 / max(speedup, 1e-9))
        sums = (f"{steps_left} steps left at {eager_s * 1e3:.0f} ms eager; compiled steps at ≈ {speedup:.2f}× "
                f"eager speed would save ≈ {saving:.0f} s against ≈ {compile_s:.0f} s to compile ({source})")
        if self.wanted is True or (self.wanted is None and pays(steps_left, eager_s, speedup, compile_s)):
            why = "asked for" if self.wanted else "it pays"
            emit(self.log, "compile", f"compiling the training step ({why}): {sums}", compiled=True,
                 compile_s=compile_s, speedup=speedup, eager_step_s=eager_s)
            use_compile_cache()
            self.loss = torch.compile(self.eager)
            self.compiled = True
        else:
            emit(self.log, "compile", f"not compiling the training step (it would not pay; --compile forces "
                 f"it): {sums}", compiled=False, compile_s=compile_s, speedup=speedup, eager_step_s=eager_s)

    def _record(self) -> None:
        first, rest = self.compiled_times[0], statistics.median(self.compiled_times[1:])
        eager_s = statistics.median(self.eager_times)
        compile_s, speedup = max(0.0, first - rest), eager_s / rest if rest > 0 else 1.0
        if self.signature is not None:
            CostRecord(compile_dir() / "costs.json").put(self.signature, compile_s, speedup)
        emit(self.log, "compile", f"compiled in {compile_s:.0f} s; a step now takes {rest * 1e3:.0f} ms "
             f"({speedup:.2f}× eager)", compile_s=compile_s, speedup=speedup)
