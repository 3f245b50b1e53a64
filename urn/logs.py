"""Structured logs: one JSON object per line on stderr.

Every event has `ts`, `level`, `component`, `event` and its own fields, so a fleet's
logs can be merged and filtered without parsing prose.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

__all__ = ["EventLogger", "get_logger", "setup_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": record.name,
            "event": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def setup_logging(level: str = "info", stream: Any = None) -> None:
    """Route every urn logger to JSON lines on stderr (or `stream`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger("urn")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class EventLogger:
    """`log.info("table_rejected", reason="bad_mac", sender="c1")` writes one JSON line."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(f"urn.{name}")

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)
