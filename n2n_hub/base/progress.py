"""Progress that stays readable: a live bar on a terminal, occasional plain lines in a log.

``tqdm(...)`` takes tqdm's arguments. When stderr is a terminal it is tqdm itself; when
it is piped into a file it reports one plain line at most every ``N2N_HUB_PROGRESS_EVERY``
seconds (default 30) and a last line when done, instead of thousands of redrawn frames.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterable, Iterator

EVERY_ENV = "N2N_HUB_PROGRESS_EVERY"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(EVERY_ENV, "30")))
    except ValueError:
        return 30.0


class PlainProgress:
    """The part of tqdm's interface n2n-hub uses, written as plain lines to a stream."""

    def __init__(self, iterable: Iterable[Any] | None = None, total: float | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, disable: bool = False, leave: bool = True,
                 stream: Any = None, interval: float | None = None, **_: Any) -> None:
        self.iterable, self.desc, self.unit, self.disable, self.leave = iterable, desc, unit, disable, leave
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.n, self.start = total, initial, initial
        self.stream = stream if stream is not None else sys.stderr
        self.interval = _interval() if interval is None else interval
        self.t0 = self.last = time.monotonic()
        self.postfix = ""
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if not self.disable and now - self.last >= self.interval:
            self.last = now
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.t0
        done = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = (self.n - self.start) / elapsed if elapsed > 0 else 0.0
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {done} {self.unit}{pct}, {elapsed:.0f}s, {rate:.3g} {self.unit}/s{extra}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.disable and self.leave and self.n > self.start:
            self._line()


def tqdm(iterable: Iterable[Any] | None = None, **kwargs: Any) -> Any:
    """tqdm on a terminal, :class:`PlainProgress` otherwise (same arguments)."""
    stream = kwargs.get("file") or sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        from tqdm.auto import tqdm as bar

        return bar(iterable, **kwargs)
    return PlainProgress(iterable, stream=stream, **{k: v for k, v in kwargs.items() if k != "file"})
