"""Hostile input must not break the JSON-lines log: aiohttp's parse errors become one line."""

from __future__ import annotations

import io
import json
import logging
from typing import TYPE_CHECKING

import pytest
from aiohttp.http_exceptions import LineTooLong

from urn.logs import setup_logging

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    names = ("urn", "aiohttp", "asyncio")
    saved = {
        n: (
            logging.getLogger(n).handlers[:],
            logging.getLogger(n).level,
            logging.getLogger(n).propagate,
        )
        for n in names
    }
    stream = io.StringIO()
    setup_logging("info", stream)
    try:
        yield stream
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_a_malformed_request_logs_one_json_line_without_a_traceback(
    captured: io.StringIO,
) -> None:
    try:
        raise LineTooLong("/v1/resolve?name=" + "a" * 9000, "8190")
    except LineTooLong:
        logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1")
    [line] = captured.getvalue().splitlines()
    event = json.loads(line)
    assert event["component"] == "aiohttp.server"
    assert event["error"].startswith("LineTooLong")
    assert len(event["error"]) < 250
    assert "exception" not in event


def test_other_library_errors_keep_their_traceback_inside_the_json(
    captured: io.StringIO,
) -> None:
    try:
        raise RuntimeError("a real bug")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    [line] = captured.getvalue().splitlines()
    assert "RuntimeError: a real bug" in json.loads(line)["exception"]
