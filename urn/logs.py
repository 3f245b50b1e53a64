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


class _ClientFaultFilter(logging.Filter):
    """aiohttp logs every malformed request with a traceback; a client's fault needs one line.

    Without this, each hostile request (a 10 kB URL, bad chunk framing) printed a
    multi-line plain-text traceback into a JSON-lines log: unparseable, and amplified.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and type(exc).__module__ == "aiohttp.http_exceptions":
            message = str(getattr(exc, "message", "") or exc).strip().splitlines()
            record.exc_info = None
            record.fields = {"error": f"{type(exc).__name__}: {' '.join(message)[:200]}"}
        return True


def setup_logging(level: str = "info", stream: Any = None) -> None:
    """Route every urn logger to JSON lines on stderr (or `stream`), aiohttp's warnings too."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter())
    handler.addFilter(_ClientFaultFilter())
    root = logging.getLogger("urn")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for name in ("aiohttp", "asyncio"):
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.setLevel(logging.WARNING)
        library.propagate = False


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
