"""The loop: data-dependent initialisation, Adam with warmup and cosine decay, validation, early stopping."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from ..base import distributed
from ..cinn.nll import nats_to_bits
from ..cinn.whitening import Whitening
from ..errors import InputError, ShapeError, TrainingError
from ..spec.kinds import fits_closed_form, needs_condition_fit, needs_data_init

from . import checkpoint as checkpoints
from .batches import (_check_pairs, _finite_rows, _LoaderBatches, _param_dtype, _rank_share, _split, _TensorBatches,
                      _to, _whitening_rows, noisy_condition)
from .config import _TRAJECTORY_FIELDS, Log, TrainConfig, TrainResult, lr_at, objective

logger = logging.getLogger("n2n_hub.training")  # one logger for the package, as before the split


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


def train(model: nn.Module, source: Tensor, target: Tensor, config: TrainConfig, *,
          val: tuple[Tensor, Tensor] | None = None, log: Log | None = None,
          groups: Tensor | None = None, labels: Tensor | None = None) -> TrainResult:
    """Fit ``model`` to map ``source`` (z_Φ, N×…) to ``target`` (z_Θ, N×D) in place.

    Without ``val``, a ``config.val_fraction`` share is held out, chosen by the seed: of
    the rows, or with ``groups`` (an item id per row) of whole items.
    ``labels`` (N,) are the class ids of the pairs' items, when the recipe knows them: a
    module with a condition projection is fitted to those of the training rows before step 0.
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
        train_pairs, val_pairs = _split(source, target, config.val_fraction, config.seed, groups)
    train_labels = None
    if labels is not None:
        if labels.shape != (target.shape[0],):
            raise ShapeError(f"got {tuple(labels.shape)} labels for {target.shape[0]} training pairs; give one "
                             "class id per pair")
        # the same held-out split as the pairs: _split draws it from the seed, the row count and the groups
        train_labels = (labels if val is not None
                        else _split(labels, target, config.val_fraction, config.seed, groups)[0][0])
    n_bad = int((~_finite_rows(train_pairs[0], train_pairs[1])).sum())
    if n_bad:
        _emit(log, "warning", f"{n_bad} training pairs contain NaN/inf; batches holding them will be skipped "
              "(clean the data to use every batch)", logging.WARNING, rows=n_bad)
    batches = _TensorBatches(train_pairs[0], train_pairs[1], config.batch_size, config.seed)
    return _run(model, batches, val_pairs, config, log, n_train=train_pairs[1].shape[0], labels=train_labels)


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
         config: TrainConfig, log: Log | None, n_train: int | None, labels: Tensor | None = None) -> TrainResult:
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

    if fits_closed_form(model):
        return _fit_closed_form(model, name, batches, val_pairs, config, log, n_train, device, dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _adam(params, config)

    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):  # the caller's RNG stays untouched
        torch.manual_seed(config.seed)
        return _loop(model, name, f, batches, val_pairs, config, log, n_train, device, dtype, use_bf16,
                     opt, params, labels)


def _fit_closed_form(model: nn.Module, name: str, batches: _TensorBatches | _LoaderBatches,
                     val_pairs: tuple[Tensor, Tensor] | None, config: TrainConfig, log: Log | None,
                     n_train: int | None, device: torch.device, dtype: torch.dtype) -> TrainResult:
    """A kind solved in closed form: every training pair once, then one validation; no gradient steps.

    Rows with NaN/inf are left out of the fit (the trainer has already warned about them).
    Under torchrun every process fits on the pairs it holds (all of them for in-memory data).
    """
    t_start = time.perf_counter()
    _emit(log, "start", f"fitting a {getattr(model, 'kind', '?')} translator in closed form "
          f"({n_train if n_train is not None else 'all'} training pairs, {name} objective)", steps=0)

    def finite_pairs() -> Iterable[tuple[Tensor, Tensor]]:
        for c, z in batches.each_once():
            c, z = _to(c, device, dtype), _to(z, device, dtype)
            ok = _finite_rows(c, z)
            yield (c, z) if bool(ok.all()) else (c[ok], z[ok])

    rows = model.fit_closed_form(finite_pairs())  # type: ignore[operator]
    model.eval()
    history: list[dict[str, float]] = []
    best = None
    if val_pairs is not None:
        best = evaluate(model, val_pairs[0], val_pairs[1], device=device)
        history.append({"step": 0, "val": best})
    wall = time.perf_counter() - t_start
    result = TrainResult(objective=name, steps=0, wall_time_s=wall, best_step=0 if best is not None else None,
                         history=history)
    if name == "nll":
        result.val_nll = result.best_val_nll = best
        result.val_bits_per_dim = result.best_val_bits_per_dim = None if best is None else nats_to_bits(best)
    else:
        result.val_mse = result.best_val_mse = best
    _emit(log, "done", f"fitted in closed form on {rows} pairs in {wall:.1f} s; validation {name} {best}",
          result=result.to_dict())
    return result


def _loop(model: nn.Module, name: str, f: Callable[[Tensor, Tensor], Tensor],
          batches: _TensorBatches | _LoaderBatches, val_pairs: tuple[Tensor, Tensor] | None,
          config: TrainConfig, log: Log | None, n_train: int | None, device: torch.device,
          dtype: torch.dtype, use_bf16: bool, opt: torch.optim.Optimizer, params: list[nn.Parameter],
          labels: Tensor | None = None) -> TrainResult:
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
        tensors, meta = checkpoints.load_checkpoint(ckpt)
        if meta.get("fingerprint") != json.loads(json.dumps(fingerprint)):
            raise TrainingError(f"checkpoint {ckpt} belongs to a different run (model, data size or "
                                "training config differ); delete it or choose another checkpoint_path")
        try:
            model.load_state_dict(checkpoints.prefixed(tensors, "model."), strict=True)
        except RuntimeError as e:
            raise TrainingError(f"checkpoint {ckpt} does not fit the model ({str(e).splitlines()[0]}); "
                                "delete it to start afresh") from None
        optim_state: dict[int, dict[str, Tensor]] = {}
        for k, v in checkpoints.prefixed(tensors, "optim.").items():
            i, key = k.split(".", 1)
            optim_state.setdefault(int(i), {})[key] = v
        opt.load_state_dict({"state": optim_state, "param_groups": opt.state_dict()["param_groups"]})
        best_state = {k: v.to(device) for k, v in checkpoints.prefixed(tensors, "best.").items()} or None
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
        checkpoints.save_checkpoint(ckpt, model, opt, best_state, state)  # type: ignore[arg-type]
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

    if step == 0 and needs_condition_fit(model):
        if labels is None or not isinstance(batches, _TensorBatches):
            raise TrainingError("this translator reads its condition through a projection fitted to class labels "
                                "(condition_projection), but the training pairs come without labels: use a "
                                "dataset recipe whose items have a 'label' domain, or drop condition_projection")
        model.fit_condition(batches.source, labels)  # type: ignore[operator]
        _emit(log, "fit", "condition projection fitted to the labels of "
              f"{labels.shape[0]} training pairs", rows=int(labels.shape[0]))
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
        from ..base.progress import tqdm

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
            if config.target_noise > 0:
                z = z + torch.randn_like(z) * config.target_noise
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
