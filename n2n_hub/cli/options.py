"""Options several commands share, declared once, and the objects that group a command's many options.

A command that takes a group (``@training_options``) receives one object (``training:
Training``) instead of nine parameters; what the options say and how they are checked lives
here, so ``pair`` and ``translate`` cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import click

from ..base.options import FiniteFloat
from ..hub import Hub

F = TypeVar("F", bound=Callable[..., Any])

MAX_SAMPLES = 1024  # -n: more samples per input than a grid can usefully show
MAX_SEED = 2**63 - 1
MAX_ROUTE_SAMPLES = 10_000_000  # pairs drawn along a route to distil it
MAX_ROUTE_SEED = 2**62 - 1  # a draw's blocks and splits add to its seed

KIND_HELP = ("cinn (default), the deterministic mlp baseline, linear (ridge least squares in closed form), or "
             "another registered kind.")


def _apply(f: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):  # the first listed is the first shown by --help
        f = option(f)
    return f


def json_option(help: str = "Print JSON.") -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def device_option() -> Callable[[F], F]:
    return click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")


def threads_option(help: str = "CPU threads for torch (default: torch's: OMP_NUM_THREADS, else one per core).") -> Callable[[F], F]:
    return click.option("--threads", type=click.IntRange(min=1, max=1024), default=None, help=help)


def no_train_option(help: str = "Fail instead of training when nothing is cached.") -> Callable[[F], F]:
    return click.option("--no-train", is_flag=True, help=help)


def translator_option(help: str = KIND_HELP) -> Callable[[F], F]:
    return click.option("--translator", "translator", default=None, help=help)


def seed_option(default: int | None = 0, help: str | None = None) -> Callable[[F], F]:
    return click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=default,
                        show_default=default is not None, help=help)


def steps_option(help: str) -> Callable[[F], F]:
    return click.option("--steps", type=click.IntRange(min=1, max=10**8), help=help)


def option_group(name: str, cls: type, options: list[Callable[[F], F]]) -> Callable[[F], F]:
    """Declare ``options`` together and hand the command one ``cls`` built from them, as ``name``.

    The fields of the dataclass ``cls`` are the options' parameter names.
    """
    names = [f.name for f in dataclasses.fields(cls)]

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def command(*args: Any, **kwargs: Any) -> Any:
            kwargs[name] = cls(**{k: kwargs.pop(k) for k in names})
            return f(*args, **kwargs)

        return _apply(command, options)  # type: ignore[arg-type]
    return decorate


# -- how a pair's translator is found or trained: `pair` and `translate` ----------------------------
@dataclass(frozen=True)
class Training:
    """``--data --translator --steps --batch-size --lr --train-seed --device --compile/--no-compile --force --no-train``."""

    data: Path | None
    translator: str | None
    steps: int | None
    batch_size: int | None
    lr: float | None
    train_seed: int | None
    device: str
    compile: bool | None
    force: bool
    no_train: bool

    def settings(self) -> dict[str, Any]:
        """The training settings given (steps, batch size, lr, seed): they enter the translator's key."""
        given = {"steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "seed": self.train_seed}
        return {k: v for k, v in given.items() if v is not None}

    def pair_options(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`Hub.pair` (the pair itself, data and kind aside)."""
        chosen = {"compile": self.compile} if self.compile is not None else {}  # keyless: never in the key
        return {"force": self.force, "train_if_missing": not self.no_train, **self.settings(), **chosen}


training_options = option_group("training", Training, [
    click.option("--data", type=click.Path(exists=True, path_type=Path),
                 help="Folder of images or .txt file (one text per line) both experts can read."),
    translator_option(),
    steps_option("Training steps (default: the pair's recipe)."),
    click.option("--batch-size", type=click.IntRange(min=1, max=10**7), help="Training batch size."),
    click.option("--lr", type=FiniteFloat(0, 10, low_open=True), help="Peak learning rate."),
    click.option("--train-seed", type=click.IntRange(min=0, max=MAX_SEED), help="Seed of the training run."),
    device_option(),
    click.option("--compile/--no-compile", "compile", default=None,
                 help="torch.compile the training step, or never (default: when the run is long enough to repay "
                      "the compile time; compiled kernels are cached under the hub's home)."),
    click.option("--force", is_flag=True, help="Retrain even if a cached translator exists."),
    no_train_option(),
])


@dataclass(frozen=True)
class FlowSize:
    """``--size --blocks --hidden``: how large the flow is (default: the registry's, else chosen for the device)."""

    size: str | None
    n_blocks: int | None
    hidden: int | None

    def flow_options(self) -> dict[str, int]:
        """The flow options given (they enter the cache key)."""
        return {k: v for k, v in (("n_blocks", self.n_blocks), ("hidden", self.hidden)) if v is not None}


size_options = option_group("flow", FlowSize, [
    click.option("--size", type=click.Choice(Hub.SIZES), default=None,
                 help="Flow size preset: small (minutes on a CPU), medium, paper (Table S3, for a GPU)."),
    click.option("--blocks", "n_blocks", type=click.IntRange(min=1, max=512), default=None,
                 help="Number of INN blocks."),
    click.option("--hidden", type=click.IntRange(min=1, max=65536), default=None,
                 help="Width of the coupling subnets."),
])


# -- what held-out evaluation measures: `evaluate` and `diagnose` -----------------------------------
@dataclass(frozen=True)
class HeldOut:
    """``--samples --per-condition --features --seed``."""

    samples: int | None
    per_condition: int
    features: str | None
    seed: int


def held_out_options(features_help: str) -> Callable[[F], F]:
    return option_group("held_out", HeldOut, [
        click.option("--samples", type=click.IntRange(min=2, max=10**6), default=None,
                     help="Held-out conditions to evaluate (default: the whole test split)."),
        click.option("--per-condition", type=click.IntRange(min=2, max=256), default=8, show_default=True,
                     help="Samples per condition for the diversity metrics."),
        click.option("--features", help=features_help),
        seed_option(),
    ])
