"""Checks of values where they enter: numbers from options and registry files, devices, output paths.

Every check returns or raises one sentence that names the value and what would be accepted,
so a bad value is refused before any model is loaded or trained.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InputError

# name -> (integer?, lowest, highest, lowest allowed itself?) for registry [flow] and [training] values
FLOW_RULES: dict[str, tuple[bool, float, float, bool]] = {
    "n_blocks": (True, 1, 1000, True), "hidden": (True, 1, 1 << 16, True), "depth": (True, 1, 64, True),
    "cond_dim": (True, 1, 1 << 16, True), "embed_hidden": (True, 1, 1 << 16, True),
    "clamp": (False, 0, 100, False), "seed": (True, 0, 2**63 - 1, True),
    "condition_projection": (True, 1, 1 << 16, True),
    "ridge": (False, 0, 1e6, True),  # the linear kind's regularisation, relative to the features' scale
}
# name -> the words a registry [flow] value may be (keys whose values are not numbers)
# (n2n_hub.cinn.projection.PROJECTION_KINDS imports torch; a test keeps the two lists equal)
FLOW_CHOICES: dict[str, tuple[str, ...]] = {"condition_projection_kind": ("probe",)}
TRAINING_RULES: dict[str, tuple[bool, float, float, bool]] = {
    "steps": (True, 1, 10**8, True), "batch_size": (True, 1, 10**7, True), "val_every": (True, 1, 10**8, True),
    "max_bad_steps": (True, 1, 10**6, True), "warmup_steps": (True, 0, 10**8, True),
    "patience": (True, 0, 10**6, True), "seed": (True, 0, 2**63 - 1, True), "lr": (False, 0, 10, False),
    "min_lr_ratio": (False, 0, 1, True), "weight_decay": (False, 0, 100, True), "grad_clip": (False, 0, 1e6, True),
    "val_fraction": (False, 0, 0.99, True), "condition_noise": (False, 0, 100, True),
    "target_noise": (False, 0, 100, True),
}


def number_problem(name: str, value: Any, rule: tuple[bool, float, float, bool]) -> str | None:
    """Why ``value`` is not acceptable for ``name`` under ``rule``, or None if it is."""
    integer, lo, hi, lo_ok = rule
    span = f"{'[' if lo_ok else '('}{lo:g}, {hi:g}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} must be a number, got {value!r}"
    if integer and not isinstance(value, int):
        return f"{name} must be a whole number in {span}, got {value!r}"
    if not math.isfinite(value) or value > hi or value < lo or (value == lo and not lo_ok):
        return f"{name} must be a finite {'whole ' if integer else ''}number in {span}, got {value!r}"
    return None


def check_device(device: str) -> str:
    """``cpu``, or a CUDA device that exists here; anything else is one line saying what to use."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"--device {device!r} is not a device; use 'cpu', 'cuda' or 'cuda:N'") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device {device!r} is not supported; use 'cpu', 'cuda' or 'cuda:N'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s)")
    return device


def check_output_path(path: Path, option: str = "-o") -> Path:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name inside it")
    parent = path.parent if str(path.parent) else Path(".")
    for above in [parent, *parent.parents]:
        if above.exists():
            if not above.is_dir():
                raise InputError(f"{option} {path}: {above} is a file, not a folder")
            break
    if not parent.is_dir():
        raise InputError(f"{option} {path}: the folder {parent} does not exist; create it first")
    # Probe by writing: permission bits say nothing for root, read-only mounts or /proc.
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".n2n-hub-probe-"):
            pass
    except OSError as e:
        raise InputError(f"{option} {path}: cannot write in the folder {parent} ({e.strerror}); "
                         "choose another place") from None
    if path.exists():
        try:
            with open(path, "ab"):
                pass
        except OSError as e:
            raise InputError(f"{option} {path} exists and cannot be written ({e.strerror})") from None
    return path


def check_texts(texts: list[str]) -> list[str]:
    """Texts that are valid Unicode (a shell passes undecodable bytes as lone surrogates)."""
    for i, t in enumerate(texts):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"input {i + 1} is not valid UTF-8 text ({t.encode('utf-8', 'replace')!r}); "
                             "pass the prompt as UTF-8") from None
        if not t.strip():
            raise InputError(f"input {i + 1} is empty; give a prompt with words in it")
    return texts
