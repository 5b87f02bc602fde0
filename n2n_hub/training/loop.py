"""The loop: fit a translator to pairs, composed of the jobs in the sibling modules.

Setup (device, processes, bf16, the optimiser) happens here; the rest is one call each:
resume or start (:mod:`.checkpoint`), the data-dependent initialisation (:mod:`.data_init`),
the steps (:mod:`.step`) and their host-sync accounting (:mod:`.ledger`), validation and
early stopping (:mod:`.validation`), and the result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from ..base import distributed
from ..base.allocator import keep_freed_memory
from ..errors import InputError, ShapeError
from .batches import Batches, LoaderBatches, TensorBatches, check_pairs, finite_rows, held_out_split
from .checkpoint import Checkpointer, fingerprint
from ..spec.kinds import fits_closed_form
from .closed_form import fit_closed_form
from .config import Log, TrainConfig, TrainResult, nats_to_bits, objective
from .data_init import prepare
from .events import emit
from .ledger import StepLedger
from .state import RunState
from .step import Stepper, adam
from .validation import Validator


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
    check_pairs(model, source, target, "training data")
    if val is not None:
        check_pairs(model, val[0], val[1], "validation data")
        train_pairs, val_pairs = (source, target), val
    else:
        train_pairs, val_pairs = held_out_split(source, target, config.val_fraction, config.seed, groups)
    train_labels = None
    if labels is not None:
        if labels.shape != (target.shape[0],):
            raise ShapeError(f"got {tuple(labels.shape)} labels for {target.shape[0]} training pairs; give one "
                             "class id per pair")
        # the same held-out split as the pairs: it is drawn from the seed, the row count and the groups
        train_labels = (labels if val is not None
                        else held_out_split(labels, target, config.val_fraction, config.seed, groups)[0][0])
    n_bad = int((~finite_rows(train_pairs[0], train_pairs[1])).sum())
    if n_bad:
        emit(log, "warning", f"{n_bad} training pairs contain NaN/inf; batches holding them will be skipped "
             "(clean the data to use every batch)", logging.WARNING, rows=n_bad)
    batches = TensorBatches(train_pairs[0], train_pairs[1], config.batch_size, config.seed)
    return _run(model, _Data(batches, val_pairs, train_pairs[1].shape[0], train_labels), config, log)


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
        check_pairs(model, val_pairs[0], val_pairs[1], "validation data")
    return _run(model, _Data(LoaderBatches(loader), val_pairs), config, log)


@dataclass
class _Data:
    """What a run trains on: the batches, the held-out pairs, the training rows (None from a loader), their labels."""

    batches: Batches
    val_pairs: tuple[Tensor, Tensor] | None
    n_train: int | None = None
    labels: Tensor | None = None


@dataclass
class _Run:
    """What every part of one run shares: the model on its device, the objective, the optimiser."""

    model: nn.Module
    name: str
    loss: Callable[[Tensor, Tensor], Tensor]
    config: TrainConfig
    log: Log | None
    device: torch.device
    use_bf16: bool
    opt: torch.optim.Optimizer


def _device(config: TrainConfig, log: Log | None) -> tuple[torch.device, bool]:
    """The device this process trains on (joining torchrun's group if launched by it), and whether bf16 is used."""
    device = torch.device(config.device)
    if distributed.world().distributed:  # launched by torchrun: one process per device
        w = distributed.init(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", w.local_rank)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {config.device!r} requested but CUDA is not available; use device='cpu'")
    use_bf16 = config.bf16 and device.type == "cuda"
    if config.bf16 and not use_bf16:
        emit(log, "warning", "bf16 autocast is only used on CUDA; training on CPU in float32 "
             "(CPU bfloat16 matmuls are slower here and lose precision)", logging.WARNING)
    return device, use_bf16


def _run(model: nn.Module, data: _Data, config: TrainConfig, log: Log | None) -> TrainResult:
    """Set the run up on its device, then train under the config's seed with the caller's RNG left untouched."""
    name, loss = objective(model)
    device, use_bf16 = _device(config, log)
    model.to(device)
    model.train()
    if isinstance(data.batches, TensorBatches):
        data.batches.move_to(device)
    if fits_closed_form(model):  # solved from all pairs at once: no optimiser, no steps
        return fit_closed_form(model, name, data.batches, data.val_pairs, data.n_train, device, log)
    if device.type == "cpu":  # every step frees and allocates the same tensors: keep the pages (see allocator)
        keep_freed_memory()
    opt = adam([p for p in model.parameters() if p.requires_grad], config)
    run = _Run(model, name, loss, config, log, device, use_bf16, opt)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        return _loop(run, data)


def _loop(run: _Run, data: _Data) -> TrainResult:
    """Resume or start, initialise from data, take the steps, hand back the best weights."""
    t_start = time.perf_counter()
    model, config, log = run.model, run.config, run.log
    state = RunState()
    checkpointer = None
    if config.checkpoint_path is not None:
        checkpointer = Checkpointer(config.checkpoint_path, model, run.opt,
                                    fingerprint(model, run.name, data.n_train, config), log)
    if checkpointer is None or not checkpointer.resume(state, run.device):
        emit(log, "start", f"training a {getattr(model, 'kind', '?')} translator for {config.steps} steps "
             f"on {run.device} ({run.name} objective)", steps=config.steps)
    if state.step == 0:
        prepare(model, data.batches, data.labels, run.device, log)
    validator = None
    if data.val_pairs is not None:
        validator = Validator(model, data.val_pairs, run.device, config.patience, log)
    ledger = StepLedger(state, config, run.name, log)
    try:
        stepper = Stepper(model, run.loss, run.opt, config, run.device, run.use_bf16, log)
        stopped_early = _steps(stepper, data.batches, state, ledger, validator, checkpointer)
    finally:
        ledger.close()
    return _finish(run, state, ledger.samples_per_s, stopped_early, t_start)


def _steps(stepper: Stepper, batches: Batches, state: RunState, ledger: StepLedger,
           validator: Validator | None, checkpointer: Checkpointer | None) -> bool:
    """Step until the last step or the early stop (True), validating and checkpointing on schedule."""
    config = stepper.config
    stopped_early = False
    while state.step < config.steps:
        t0 = time.perf_counter()
        samples = stepper.take(batches, state.step, ledger)
        state.step += 1
        ledger.tick(samples, time.perf_counter() - t0)
        last = state.step == config.steps
        due_val = state.step % config.val_every == 0 or last
        due_save = state.step % config.checkpoint_every == 0 or last
        if last or (validator is not None and due_val) or (checkpointer is not None and due_save):
            ledger.settle()  # every step is accounted for before it is judged or saved
        if validator is not None and due_val and validator.check(state, last):
            stopped_early = True
            break
        if checkpointer is not None and due_save and stepper.world.is_main:
            checkpointer.save(state)
    ledger.settle()  # after an early stop
    return stopped_early


def _finish(run: _Run, state: RunState, samples_per_s: float, stopped_early: bool, t_start: float) -> TrainResult:
    """Restore the best weights, hand the model back in eval mode, and report."""
    history, name = state.history, run.name
    final_val = history[-1]["val"] if history and history[-1]["step"] == state.step else None
    if state.best_weights is not None:
        run.model.load_state_dict(state.best_weights)
    run.model.eval()
    wall = time.perf_counter() - t_start
    result = TrainResult(objective=name, train_loss=state.train_loss_ema, steps=state.step,
                         samples_per_s=samples_per_s, wall_time_s=wall, stopped_early=stopped_early,
                         skipped_steps=state.skipped, best_step=state.best_step, resumed_from=state.resumed_from,
                         history=history)
    best_val = state.best_val
    if name == "nll":
        result.val_nll, result.best_val_nll = final_val, best_val
        result.val_bits_per_dim = None if final_val is None else nats_to_bits(final_val)
        result.best_val_bits_per_dim = None if best_val is None else nats_to_bits(best_val)
    else:
        result.val_mse, result.best_val_mse = final_val, best_val
    emit(run.log, "done", f"trained {state.step} steps in {wall:.1f} s ({result.samples_per_s:.0f} samples/s); "
         f"best validation {name} {best_val} at step {state.best_step}", result=result.to_dict())
    return result


__all__ = ["train", "train_loader"]
