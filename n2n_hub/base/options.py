"""Command-option types shared by the CLI and plugins' commands: numbers are finite and in range, or refused by name."""

from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.ParamType):
    """A float in [low, high] (``low`` excluded when ``low_open``): never nan or inf."""

    name = "float"

    def __init__(self, low: float, high: float, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        span = f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}]"
        if not math.isfinite(x) or x > self.high or x < self.low or (self.low_open and x == self.low):
            self.fail(f"{value} is not a finite number in {span}", param, ctx)
        return x
