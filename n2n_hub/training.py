"""The trainer: fits a translator (cINN or MLP baseline) on cached pairs (z_Φ, z_Θ).

Only the translator trains; the experts' encodings are given as tensors (or a
DataLoader of ``(z_Φ, z_Θ)`` batches), so no expert forward pass is ever repeated.

What it does, in order: carve a held-out split from the seed (unless one is given),
fit the flow's whitening to the training targets and ActNorm to the first batch, then
run Adam with linear warmup and cosine decay, clip gradients, skip any step whose loss
or gradient is not finite, validate every ``val_every`` steps, stop early when
validation stops improving, and return the best weights. A checkpoint (one safetensors file, scalars as JSON in its header) lets
an interrupted run resume and end with exactly the weights of an uninterrupted one.

Launched by torchrun, the same code trains data-parallel (DistributedDataParallel, gloo on
CPU, NCCL on GPU): every rank holds all pairs, initialises the whitening and ActNorm from
the same global rows, takes its share of each global batch, validates its share of the
held-out rows (the sums are reduced across ranks) and only rank 0 writes checkpoints. A
checkpoint resumes at any world size, since the trajectory is defined by the global batch.

Objectives, per dimension so numbers compare across target sizes:

* ``cinn``: mean NLL of z_Θ given z_Φ in nats/dim (Eq. 4 plus the Gaussian constant);
* ``mlp``: mean squared error per dimension (the deterministic ablation of Sec. E).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from . import distributed
from .atomic import atomic_path
from .cinn.nll import nats_to_bits, standard_normal_nll_per_dim
from .cinn.whitening import Whitening
from .errors import InputError, ShapeError, TrainingError
from .kinds import kind_of, needs_data_init

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "n2n-hub-train-checkpoint"
CHECKPOINT_VERSION = 1

Log = Callable[[dict[str, Any]], None]

# TrainConfig fields that change the training trajectory: a checkpoint only resumes a
# run that agrees on all of them (device, progress and checkpoint cadence may differ).
_TRAJECTORY_FIELDS = ("steps", "batch_size", "lr", "warmup_steps", "min_lr_ratio", "weight_decay",
                      "grad_clip", "val_fraction", "val_every", "patience", "seed", "bf16")


@dataclass
class TrainConfig:
    """Hyperparameters of one training run; values are checked when the config is built.

    Attributes:
        steps: optimizer steps (one batch each).
        batch_size: pairs per step over all processes. Under torchrun each of N processes
            trains on ``batch_size / N`` of them and DDP averages the gradients, so the effective
            batch, the update and hence the learning rate are those of one process: neither
            needs changing with N (it must divide ``batch_size``).
        lr: peak learning rate of Adam, reached after ``warmup_steps``.
        warmup_steps: linear warmup from ``lr / warmup_steps`` to ``lr``.
        min_lr_ratio: cosine decay ends at ``lr * min_lr_ratio`` at the last step.
        weight_decay: decoupled weight decay (AdamW); 0 is plain Adam.
        grad_clip: clip the global gradient norm to this (0 disables clipping).
        val_fraction: share of the data held out for validation when no ``val`` is given.
        val_every: validate every this many steps (and always after the last step).
        patience: validation checks without improvement before stopping early (0: never stop).
        seed: seeds the split, the batch order and any randomness in the model.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        bf16: bfloat16 autocast for the training step on CUDA; ignored (and said so) on CPU,
            where it is slower than float32 for these matmuls. Validation always runs in float32.
        max_bad_steps: consecutive non-finite steps tolerated before raising TrainingError.
        checkpoint_path: if set, a checkpoint is written there every ``checkpoint_every``
            steps, and training resumes from it when it exists.
        checkpoint_every: steps between checkpoints.
        progress: show a tqdm progress bar.
        condition_noise: Gaussian noise added to each training condition, with a standard
            deviation of this times the condition's root-mean-square entry (0: none). It
            spreads the training conditions, so the translator also answers conditions off
            the manifold of its training captions (prompts as people write them).
    """

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    val_fraction: float = 0.1
    val_every: int = 200
    patience: int = 5
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    max_bad_steps: int = 10
    checkpoint_path: Path | None = None
    checkpoint_every: int = 500
    progress: bool = True
    condition_noise: float = 0.0

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InputError(f"invalid training config: {msg}")

        for name in ("steps", "batch_size", "val_every", "checkpoint_every", "max_bad_steps"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                 f"{name} must be an integer >= 1, got {v!r}")
        for name in ("warmup_steps", "patience", "seed"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                 f"{name} must be an integer >= 0, got {v!r}")
        need(isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0,
             f"lr must be a positive number, got {self.lr!r} (1e-4 to 1e-3 is typical)")
        need(0.0 <= self.min_lr_ratio <= 1.0, f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        need(math.isfinite(self.weight_decay) and self.weight_decay >= 0,
             f"weight_decay must be >= 0, got {self.weight_decay!r}")
        need(math.isfinite(self.grad_clip) and self.grad_clip >= 0,
             f"grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip!r}")
        need(math.isfinite(self.condition_noise) and self.condition_noise >= 0,
             f"condition_noise must be >= 0 (0 disables it), got {self.condition_noise!r}")
        need(0.0 <= self.val_fraction < 1.0, f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise InputError(f"invalid training config: device {self.device!r} is not a torch device; "
                             "use 'cpu' or 'cuda'") from None
        need(dev.type in ("cpu", "cuda"), f"device must be 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.checkpoint_path is not None:
            self.checkpoint_path = Path(self.checkpoint_path)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkpoint_path"] = None if self.checkpoint_path is None else str(self.checkpoint_path)
        if not self.condition_noise:  # off: keep the cache keys of translators trained before the option
            del d["condition_noise"]
        return d


@dataclass
class TrainResult:
    """What a run achieved. Validation numbers are per dimension; ``None`` without validation.

    For a cINN ``val_nll``/``best_val_nll`` are NLLs in nats/dim (``*_bits_per_dim`` the
    same in bits); ``reference_nll_per_dim`` = ½·log(2πe) is what N(0, I) data scores
    under N(0, I), so a value below it on standardised targets means the condition
    explains something. For the MLP baseline ``val_mse``/``best_val_mse`` are the
    squared error per dimension. The returned model holds the weights of ``best_step``.
    """

    objective: str
    val_nll: float | None = None
    best_val_nll: float | None = None
    val_bits_per_dim: float | None = None
    best_val_bits_per_dim: float | None = None
    val_mse: float | None = None
    best_val_mse: float | None = None
    reference_nll_per_dim: float = field(default_factory=standard_normal_nll_per_dim)
    train_loss: float | None = None
    steps: int = 0
    samples_per_s: float = 0.0
    wall_time_s: float = 0.0
    stopped_early: bool = False
    skipped_steps: int = 0
    best_step: int | None = None
    resumed_from: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- objectives ---------------------------------------------------------------------------
def objective(model: nn.Module) -> tuple[str, Callable[[Tensor, Tensor], Tensor]]:
    """``(name, f)`` with ``f(z, c)`` the per-sample loss per dimension the model trains on.

    ``name`` is the kind's objective (``nll`` or ``mse``, see :mod:`n2n_hub.kinds`); the
    loss is the module's ``loss(z, c)`` of the translator contract.
    """
    name = kind_of(model).objective
    dim = getattr(model, "dim", None)
    return name, lambda z, c: model.loss(z, c) / dim  # type: ignore[operator]


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of 0-based ``step``: linear warmup, then cosine decay to ``lr·min_lr_ratio``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps - 1)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# -- data ---------------------------------------------------------------------------------
class _TensorBatches:
    """Shuffled batches of in-memory pairs, a pure function of (seed, step).

    Epoch ``e`` uses the permutation drawn from a generator seeded with ``(seed, e)``,
    so resuming at any step needs no saved data-loader state.
    """

    def __init__(self, source: Tensor, target: Tensor, batch_size: int, seed: int) -> None:
        self.source, self.target = source, target
        self.n = target.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.per_epoch = self.n // self.batch_size  # the incomplete last batch is dropped
        self.seed = seed
        self._epoch = -1
        self._perm = torch.empty(0, dtype=torch.long)

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        epoch, j = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * epoch + 1)
            self._perm = torch.randperm(self.n, generator=g).to(self.target.device)
            self._epoch = epoch
        idx = self._perm[j * self.batch_size:(j + 1) * self.batch_size]
        return self.source[idx], self.target[idx]

    def peek_targets(self, rows: int) -> Tensor:
        """Up to ``rows`` training targets (a seeded subset when there are more) for data-dependent init."""
        if self.n <= rows:
            return self.target
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 17)
        return self.target[torch.randperm(self.n, generator=g)[:rows].to(self.target.device)]


class _LoaderBatches:
    """Batches from a DataLoader, re-iterated each epoch; ``batch(step)`` must be called in order.

    Resuming skips (without computing anything) the batches already used, so a loader
    whose order is reproducible (a seeded ``generator`` or no shuffling) resumes exactly.
    """

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader
        self._it: Iterator[Any] | None = None
        self._next = 0
        self._last: tuple[int, tuple[Tensor, Tensor]] | None = None
        self._ahead: list[tuple[Tensor, Tensor]] = []  # pulled by peek_targets, not yet served

    @staticmethod
    def _pair(item: Any) -> tuple[Tensor, Tensor]:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InputError("a training DataLoader must yield (z_source, z_target) pairs of tensors, "
                             f"got {type(item).__name__}")
        return item[0], item[1]

    def _pull(self) -> tuple[Tensor, Tensor]:
        if self._ahead:
            return self._ahead.pop(0)
        for attempt in range(2):
            if self._it is None:
                self._it = iter(self.loader)
            try:
                item = next(self._it)
                break
            except StopIteration:
                self._it = None
                if attempt:
                    raise InputError("the training DataLoader yields no batches") from None
        return self._pair(item)

    def peek_targets(self, rows: int) -> Tensor:
        """Targets of the coming batches, at least ``rows`` unless the first epoch ends sooner.

        The batches stay queued and are served in order, so peeking changes nothing the
        training sees (and a resumed run, which does not peek, sees the same batches).
        """
        got = sum(t.shape[0] for _, t in self._ahead)
        while got < rows:
            if self._it is None:
                if self._ahead:
                    break  # the epoch ended: do not wrap around
                self._it = iter(self.loader)
            try:
                pair = self._pair(next(self._it))
            except StopIteration:
                self._it = None
                if not self._ahead:
                    raise InputError("the training DataLoader yields no batches") from None
                break
            self._ahead.append(pair)
            got += pair[1].shape[0]
        return torch.cat([t for _, t in self._ahead])

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        if self._last is not None and self._last[0] == step:  # ActNorm init and step 0 share a batch
            return self._last[1]
        while self._next < step:  # fast-forward after a resume
            self._pull()
            self._next += 1
        self._next = step + 1
        self._last = (step, self._pull())
        return self._last[1]


def _split(source: Tensor, target: Tensor, fraction: float, seed: int
           ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor] | None]:
    """Deterministic held-out split: the same seed and data size always hold out the same rows."""
    n = target.shape[0]
    if fraction <= 0:
        return (source, target), None
    n_val = max(1, round(fraction * n))
    if n - n_val < 1:
        raise InputError(f"{n} pairs are too few to hold out val_fraction={fraction}; "
                         "give more data, a smaller val_fraction, or an explicit val set")
    g = torch.Generator().manual_seed(seed * 1_000_003 + 17)
    perm = torch.randperm(n, generator=g).to(target.device)
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    return (source[train_idx], target[train_idx]), (source[val_idx], target[val_idx])


# -- helpers ------------------------------------------------------------------------------
def _param_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def noisy_condition(c: Tensor, scale: float) -> Tensor:
    """``c`` plus Gaussian noise whose std is ``scale`` times each row's RMS entry (see ``condition_noise``)."""
    flat = c.reshape(c.shape[0], -1)
    rms = flat.pow(2).mean(dim=1, keepdim=True).sqrt()
    return (flat + torch.randn_like(flat) * rms * scale).reshape(c.shape)


def _to(x: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    if device.type == "cuda" and x.device.type == "cpu" and not x.is_pinned():
        x = x.pin_memory()  # page-locked, so the copy below is asynchronous and overlaps the step
    if x.dtype.is_floating_point:
        return x.to(device=device, dtype=dtype, non_blocking=True)
    return x.to(device=device, non_blocking=True)


def _check_pairs(model: nn.Module, source: Tensor, target: Tensor, what: str) -> None:
    if not isinstance(source, Tensor) or not isinstance(target, Tensor):
        raise ShapeError(f"{what}: source and target must be torch tensors")
    model.condition.check(source, name=f"{what} source")  # type: ignore[union-attr]
    if target.dim() != 2 or target.shape[1] != model.dim:
        raise ShapeError(f"{what} target has shape {tuple(target.shape)}, expected (N, {model.dim})")
    if source.shape[0] != target.shape[0]:
        raise ShapeError(f"{what}: {source.shape[0]} source rows but {target.shape[0]} target rows")
    if target.shape[0] == 0:
        raise ShapeError(f"{what} is empty")


def _finite_rows(c: Tensor, z: Tensor) -> Tensor:
    ok = torch.isfinite(z).all(dim=1)
    if c.dtype.is_floating_point:
        ok &= torch.isfinite(c.reshape(c.shape[0], -1)).all(dim=1)
    return ok


def _whitening_rows(dim: int, batches: _TensorBatches | _LoaderBatches) -> int:
    """Rows to fit a D×D covariance to: in-memory data up to 100 000; from a loader, 16·D (≥ 4096)."""
    return max(100_000, 16 * dim) if isinstance(batches, _TensorBatches) else max(4096, 16 * dim)


def _emit(log: Log | None, event: str, message: str, level: int = logging.INFO, **data: Any) -> None:
    record = {"event": event, "message": message, **data}
    if log is not None:
        log(record)
    else:
        logger.log(level, message)


@torch.no_grad()
def evaluate(model: nn.Module, source: Tensor, target: Tensor, batch_size: int = 1024,
             device: str | torch.device | None = None) -> float:
    """Mean objective per dimension (NLL nats/dim or MSE/dim) over a held-out set, in float32/64.

    The model is evaluated in eval mode; the running sum stays on the device and is read once.
    """
    _, f = objective(model)
    ref = next(model.parameters())
    device = torch.device(device) if device is not None else ref.device
    was = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    try:
        for i in range(0, target.shape[0], batch_size):
            c = _to(source[i:i + batch_size], device, ref.dtype)
            z = _to(target[i:i + batch_size], device, ref.dtype)
            total += f(z, c).double().sum()
    finally:
        model.train(was)
    return float(total) / target.shape[0]


# Steps queued between host reads on CUDA, where the optimizer skips bad steps on the device:
# skip warnings and the progress bar lag by at most this many steps.
_READ_EVERY_CUDA = 32


def _skips_on_device(opt: torch.optim.Optimizer) -> bool:
    """True for a fused Adam, which takes ``found_inf`` and skips a step without a host round trip."""
    return bool(opt.defaults.get("fused"))


def train_step(step_loss: Callable[[Tensor, Tensor], Tensor], opt: torch.optim.Optimizer,
               params: list[nn.Parameter], c: Tensor, z: Tensor, grad_clip: float,
               autocast: Any, w: distributed.World, skips_on_device: bool) -> Tensor:
    """One step without reading anything back to the host; returns ``[loss, grad norm]`` on the device.

    With ``skips_on_device`` the update is applied too, masked on the device: a fused
    Adam given ``found_inf = 1`` leaves weights, moments and its step count untouched, so
    a non-finite step is skipped exactly as if ``opt.step()`` had not been called.
    Otherwise the caller reads the result and decides whether to call ``opt.step()``.
    """
    opt.zero_grad(set_to_none=True)
    with autocast:
        loss = step_loss(z, c).float().mean()
    loss.backward()
    if grad_clip > 0:
        gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:
        gnorm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]))
    stat = torch.stack([loss.detach(), gnorm.detach().float()])
    if w.distributed:  # the ranks' mean loss; the gradient norm is the same on every rank
        stat = distributed.all_reduce_sum(stat / w.size)
    if skips_on_device:
        opt.found_inf = (~torch.isfinite(stat).all()).float()  # type: ignore[attr-defined]
        opt.step()
    return stat


def _rank_share(c: Tensor, z: Tensor, w: distributed.World) -> tuple[Tensor, Tensor]:
    """This rank's rows of the global batch: the effective batch stays ``batch_size`` at any world size."""
    if z.shape[0] % w.size:
        raise InputError(f"a batch of {z.shape[0]} pairs does not split evenly over {w.size} processes; "
                         f"choose a batch size divisible by {w.size}")
    return distributed.rank_slice(c, w), distributed.rank_slice(z, w)


# -- checkpoints --------------------------------------------------------------------------
def _save_checkpoint(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
                     best: dict[str, Tensor] | None, state: dict[str, Any]) -> None:
    """One file: model, optimizer moments and best weights as tensors; scalars as JSON in the header."""
    tensors = {f"model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if best is not None:
        tensors.update({f"best.{k}": v.to("cpu").contiguous() for k, v in best.items()})
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{i}.{k}"] = v.detach().to("cpu").contiguous().reshape(v.shape)
    tensors["rng.cpu"] = torch.get_rng_state()
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"n2n_hub": json.dumps(meta, sort_keys=True)})


def _load_checkpoint(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("n2n_hub")
        tensors = load_file(str(path))
        meta = json.loads(raw) if raw is not None else None
    except (SafetensorError, OSError, ValueError) as e:
        raise TrainingError(f"checkpoint {path} is unreadable ({e}); delete it to start training afresh") from None
    if not meta or meta.get("format") != CHECKPOINT_FORMAT or meta.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path} is not an n2n-hub training checkpoint of version {CHECKPOINT_VERSION}; "
                            "delete it or choose another checkpoint_path")
    return tensors, meta


def _prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


# -- the loop -----------------------------------------------------------------------------
def train(model: nn.Module, source: Tensor, target: Tensor, config: TrainConfig, *,
          val: tuple[Tensor, Tensor] | None = None, log: Log | None = None) -> TrainResult:
    """Fit ``model`` to map ``source`` (z_Φ, N×…) to ``target`` (z_Θ, N×D) in place.

    Without ``val``, a ``config.val_fraction`` share is held out, chosen by the seed.
    ``log`` receives one dict per event (``event``: start, resume, val, skip, early_stop,
    checkpoint, done; ``message``: the sentence to show); without it, events go to the
    ``n2n_hub.training`` logger. Raises TrainingError after ``max_bad_steps``
    consecutive non-finite steps, ShapeError on mismatched data, InputError on bad config.
    """
    _check_pairs(model, source, target, "training data")
    if val is not None:
        _check_pairs(model, val[0], val[1], "validation data")
        train_pairs, val_pairs = (source, target), val
    else:
        train_pairs, val_pairs = _split(source, target, config.val_fraction, config.seed)
    n_bad = int((~_finite_rows(train_pairs[0], train_pairs[1])).sum())
    if n_bad:
        _emit(log, "warning", f"{n_bad} training pairs contain NaN/inf; batches holding them will be skipped "
              "(clean the data to use every batch)", logging.WARNING, rows=n_bad)
    batches = _TensorBatches(train_pairs[0], train_pairs[1], config.batch_size, config.seed)
    return _run(model, batches, val_pairs, config, log, n_train=train_pairs[1].shape[0])


def train_loader(model: nn.Module, loader: Iterable[Any], config: TrainConfig, *,
                 val_loader: Iterable[Any] | None = None, log: Log | None = None) -> TrainResult:
    """Like :func:`train`, for data that does not fit in memory: ``loader`` yields ``(z_Φ, z_Θ)`` batches.

    The loader's own batch size and order are used (``config.batch_size`` and
    ``val_fraction`` are ignored). Validation runs on ``val_loader``; without it there is
    none, so there is no early stopping and the last weights are kept.
    """
    val_pairs: tuple[Tensor, Tensor] | None = None
    if val_loader is not None:
        cs, zs = [], []
        for item in val_loader:
            cs.append(item[0])
            zs.append(item[1])
        if not zs:
            raise InputError("the validation DataLoader yields no batches")
        val_pairs = (torch.cat(cs), torch.cat(zs))
        _check_pairs(model, val_pairs[0], val_pairs[1], "validation data")
    return _run(model, _LoaderBatches(loader), val_pairs, config, log, n_train=None)


def _adam(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam (AdamW when weight_decay > 0), fused into one kernel per step where torch has one.

    The default per-tensor Adam reads and writes every weight, gradient and moment several
    times; at Net2Net size (10⁸ weights, batch 64) that memory traffic took about as long on
    CPU as the matmuls of the step. The fused kernel makes one pass and gives the same update.
    """
    cls = torch.optim.AdamW if config.weight_decay > 0 else torch.optim.Adam
    kwargs: dict[str, Any] = {"lr": config.lr}
    if config.weight_decay > 0:
        kwargs["weight_decay"] = config.weight_decay
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # a device or dtype without a fused kernel
        return cls(params, **kwargs)


def _run(model: nn.Module, batches: _TensorBatches | _LoaderBatches, val_pairs: tuple[Tensor, Tensor] | None,
         config: TrainConfig, log: Log | None, n_train: int | None) -> TrainResult:
    """The shared loop.

    Host synchronisation: the step itself (:func:`train_step`) reads nothing back. A step
    whose loss or gradient is not finite must not reach Adam at all (even a masked update
    would advance its moments and step count); the fused Adam does exactly that on the
    device when given ``found_inf``. On CUDA the numbers ``[loss, grad norm]`` of each step
    are read back in one transfer every 32 steps, and always before validation, a checkpoint
    and the end, so skip warnings, the loss average and the early stop see every step. On
    CPU (where a read costs nothing) and with an optimizer without a fused kernel, they are
    read after each step and the host decides whether to update.
    """
    name, f = objective(model)
    device = torch.device(config.device)
    if distributed.world().distributed:  # launched by torchrun: one process per device
        w = distributed.init(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", w.local_rank)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {config.device!r} requested but CUDA is not available; use device='cpu'")
    use_bf16 = config.bf16 and device.type == "cuda"
    if config.bf16 and not use_bf16:
        _emit(log, "warning", "bf16 autocast is only used on CUDA; training on CPU in float32 "
              "(CPU bfloat16 matmuls are slower here and lose precision)", logging.WARNING)
    model.to(device)
    model.train()
    dtype = _param_dtype(model)
    if isinstance(batches, _TensorBatches) and batches.target.device != device:
        nbytes = batches.source.numel() * batches.source.element_size() + batches.target.numel() * batches.target.element_size()
        if nbytes <= (1 << 30):  # small enough: one copy now beats a copy per step
            batches.source, batches.target = batches.source.to(device), batches.target.to(device)
            batches._epoch = -1

    params = [p for p in model.parameters() if p.requires_grad]
    opt = _adam(params, config)

    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # the caller's RNG stays untouched
        torch.manual_seed(config.seed)
        return _loop(model, name, f, batches, val_pairs, config, log, n_train, device, dtype, use_bf16,
                     opt, params)


def _loop(model: nn.Module, name: str, f: Callable[[Tensor, Tensor], Tensor],
          batches: _TensorBatches | _LoaderBatches, val_pairs: tuple[Tensor, Tensor] | None,
          config: TrainConfig, log: Log | None, n_train: int | None, device: torch.device,
          dtype: torch.dtype, use_bf16: bool, opt: torch.optim.Optimizer, params: list[nn.Parameter]
          ) -> TrainResult:
    t_start = time.perf_counter()
    w = distributed.world()
    step = 0
    best_val: float | None = None
    best_step: int | None = None
    best_state: dict[str, Tensor] | None = None
    checks_without_gain = 0
    skipped = 0
    consecutive_bad = 0
    train_loss_ema: float | None = None
    history: list[dict[str, float]] = []
    resumed_from: int | None = None
    trajectory = {k: getattr(config, k) for k in _TRAJECTORY_FIELDS}
    fingerprint = {"model": getattr(model, "config", lambda: {})(), "objective": name, "n_train": n_train,
                   "config": trajectory}

    ckpt = config.checkpoint_path
    if ckpt is not None and ckpt.exists():
        tensors, meta = _load_checkpoint(ckpt)
        if meta.get("fingerprint") != json.loads(json.dumps(fingerprint)):
            raise TrainingError(f"checkpoint {ckpt} belongs to a different run (model, data size or "
                                "training config differ); delete it or choose another checkpoint_path")
        try:
            model.load_state_dict(_prefixed(tensors, "model."), strict=True)
        except RuntimeError as e:
            raise TrainingError(f"checkpoint {ckpt} does not fit the model ({str(e).splitlines()[0]}); "
                                "delete it to start afresh") from None
        optim_state: dict[int, dict[str, Tensor]] = {}
        for k, v in _prefixed(tensors, "optim.").items():
            i, key = k.split(".", 1)
            optim_state.setdefault(int(i), {})[key] = v
        opt.load_state_dict({"state": optim_state, "param_groups": opt.state_dict()["param_groups"]})
        best_state = {k: v.to(device) for k, v in _prefixed(tensors, "best.").items()} or None
        torch.set_rng_state(tensors["rng.cpu"])
        step = meta["step"]
        best_val, best_step = meta["best_val"], meta["best_step"]
        checks_without_gain, skipped = meta["checks_without_gain"], meta["skipped"]
        consecutive_bad, train_loss_ema = meta["consecutive_bad"], meta["train_loss_ema"]
        history = meta["history"]
        resumed_from = step
        _emit(log, "resume", f"resuming from checkpoint {ckpt} at step {step}", step=step)
    else:
        _emit(log, "start", f"training a {getattr(model, 'kind', '?')} translator for {config.steps} steps "
              f"on {device} ({name} objective)", steps=config.steps)

    def checkpoint(at: int) -> None:
        state = {"step": at, "best_val": best_val, "best_step": best_step,
                 "checks_without_gain": checks_without_gain, "skipped": skipped,
                 "consecutive_bad": consecutive_bad, "train_loss_ema": train_loss_ema,
                 "history": history, "fingerprint": fingerprint}
        _save_checkpoint(ckpt, model, opt, best_state, state)  # type: ignore[arg-type]
        _emit(log, "checkpoint", f"checkpoint written at step {at}", step=at)

    def validate(at: int) -> bool:
        """Evaluate, remember the best weights; True when patience is exhausted."""
        nonlocal best_val, best_step, best_state, checks_without_gain
        assert val_pairs is not None
        value = distributed.sharded_mean(lambda s, t: evaluate(model, s, t, device=device), val_pairs[0], val_pairs[1])
        history.append({"step": at, "val": value})
        improved = math.isfinite(value) and (best_val is None or value < best_val)
        if improved:
            best_val, best_step, checks_without_gain = value, at, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            checks_without_gain += 1
        unit = "nats/dim" if name == "nll" else "per dim"
        _emit(log, "val", f"step {at}: validation {name} {value:.4f} {unit} (best {best_val} at {best_step})",
              step=at, value=value, best=best_val)
        return config.patience > 0 and checks_without_gain >= config.patience

    if step == 0 and needs_data_init(model):
        whitening = next((m for m in model.modules() if isinstance(m, Whitening)), None)
        rows = None
        if whitening is not None:
            rows = _to(batches.peek_targets(_whitening_rows(whitening.dim, batches)), device, dtype)
            rows = rows[torch.isfinite(rows).all(dim=1)]
            if rows.shape[0] < 2:
                raise TrainingError("fewer than 2 finite training targets, so the whitening cannot be "
                                    "fitted: check the data for NaN/inf")
        c0, z0 = batches.batch(0)
        c0, z0 = _to(c0, device, dtype), _to(z0, device, dtype)
        ok = _finite_rows(c0, z0)
        if int(ok.sum()) < 2:
            raise TrainingError("the first batch has fewer than 2 finite pairs, so ActNorm cannot be "
                                "initialised: check the data for NaN/inf")
        if whitening is not None:
            model.initialize(z0[ok], c0[ok], whitening_rows=rows)  # type: ignore[operator]
        else:
            model.initialize(z0[ok], c0[ok])  # type: ignore[operator]

    bar = None
    if config.progress:
        from .progress import tqdm

        bar = tqdm(total=config.steps, initial=step, desc=f"train ({name})", unit="step", dynamic_ncols=True)
    samples, step_time = 0, 0.0
    stopped_early = False
    autocast = (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if use_bf16
                else contextlib.nullcontext())
    step_loss = distributed.data_parallel(model, f, device)  # f itself in one process
    # On CUDA the fused Adam skips bad steps itself and the numbers are read in batches; on
    # CPU a read costs nothing, so the step is decided on the host exactly as before.
    skips_on_device = device.type == "cuda" and _skips_on_device(opt)
    read_every = _READ_EVERY_CUDA if skips_on_device else 1
    pending: list[tuple[int, Tensor]] = []  # (step, [loss, grad norm]) not yet read back

    def settle() -> bool:
        """Read the pending steps' numbers in one transfer and account for them; True if the last was finite."""
        nonlocal consecutive_bad, skipped, train_loss_ema
        if not pending:
            return True
        values = torch.stack([v for _, v in pending]).tolist()  # the only host read of the loop
        ok = True
        for (at, _), (loss_v, gnorm_v) in zip(pending, values):
            ok = math.isfinite(loss_v) and math.isfinite(gnorm_v)
            if ok:
                consecutive_bad = 0
                train_loss_ema = loss_v if train_loss_ema is None else 0.98 * train_loss_ema + 0.02 * loss_v
                continue
            skipped += 1
            consecutive_bad += 1
            _emit(log, "skip", f"step {at}: non-finite {'loss' if not math.isfinite(loss_v) else 'gradient'}"
                  f" (loss {loss_v:.4g}, gradient norm {gnorm_v:.4g}), step skipped without updating the "
                  "weights", logging.WARNING, step=at)
            if consecutive_bad >= config.max_bad_steps:
                pending.clear()
                raise TrainingError(
                    f"{consecutive_bad} consecutive training steps had a non-finite loss or gradient "
                    f"(last at step {at}). Lower the learning rate (lr={config.lr:g}), normalise the "
                    "inputs (zero mean, unit variance per dimension), and check the data for NaN/inf.")
        pending.clear()
        if bar is not None and train_loss_ema is not None and step_time > 0:
            bar.set_postfix({name: f"{train_loss_ema:.4f}", "samples/s": f"{samples / step_time:.0f}"},
                            refresh=False)
        return ok

    try:
        while step < config.steps:
            t0 = time.perf_counter()
            c, z = batches.batch(step)
            if w.distributed:
                c, z = _rank_share(c, z, w)
            c, z = _to(c, device, dtype), _to(z, device, dtype)
            if config.condition_noise > 0 and c.is_floating_point():
                c = noisy_condition(c, config.condition_noise)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, config)
            stat = train_step(step_loss, opt, params, c, z, config.grad_clip, autocast, w, skips_on_device)
            pending.append((step, stat))
            if not skips_on_device:  # the optimizer cannot skip by itself: decide on the host
                if settle():
                    opt.step()
                else:
                    opt.zero_grad(set_to_none=True)
            elif len(pending) >= read_every:
                settle()
            step += 1
            samples += z.shape[0] * w.size
            step_time += time.perf_counter() - t0
            if bar is not None:
                bar.update(1)
            last = step == config.steps
            if last or (val_pairs is not None and step % config.val_every == 0) or (
                    ckpt is not None and step % config.checkpoint_every == 0):
                settle()
            if val_pairs is not None and (step % config.val_every == 0 or last):
                if validate(step) and not last:
                    stopped_early = True
                    _emit(log, "early_stop", f"no validation gain for {config.patience} checks: stopping at "
                          f"step {step}, restoring the weights of step {best_step}", step=step)
                    break
            if ckpt is not None and w.is_main and (step % config.checkpoint_every == 0 or last):
                checkpoint(step)
        settle()  # after an early stop
    finally:
        if bar is not None:
            bar.close()

    final_val = history[-1]["val"] if history and history[-1]["step"] == step else None
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    wall = time.perf_counter() - t_start
    result = TrainResult(objective=name, train_loss=train_loss_ema, steps=step,
                         samples_per_s=samples / step_time if step_time > 0 else 0.0, wall_time_s=wall,
                         stopped_early=stopped_early, skipped_steps=skipped, best_step=best_step,
                         resumed_from=resumed_from, history=history)
    if name == "nll":
        result.val_nll, result.best_val_nll = final_val, best_val
        result.val_bits_per_dim = None if final_val is None else nats_to_bits(final_val)
        result.best_val_bits_per_dim = None if best_val is None else nats_to_bits(best_val)
    else:
        result.val_mse, result.best_val_mse = final_val, best_val
    _emit(log, "done", f"trained {step} steps in {wall:.1f} s ({result.samples_per_s:.0f} samples/s); "
          f"best validation {name} {best_val} at step {best_step}", result=result.to_dict())
    return result


__all__ = ["TrainConfig", "TrainResult", "evaluate", "lr_at", "objective", "train", "train_loader"]
