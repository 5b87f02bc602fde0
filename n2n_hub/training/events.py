"""What a run tells its caller: one dict per event to ``log``, else a line on the package logger."""

from __future__ import annotations

import logging
from typing import Any

from .config import Log

logger = logging.getLogger("n2n_hub.training")  # one logger for the package


def emit(log: Log | None, event: str, message: str, level: int = logging.INFO, **data: Any) -> None:
    """Send ``{"event", "message", **data}`` to ``log``; without one, log ``message`` at ``level``."""
    record = {"event": event, "message": message, **data}
    if log is not None:
        log(record)
    else:
        logger.log(level, message)
