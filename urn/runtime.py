"""Process plumbing shared by every role: event loop choice, signals, exit codes, tuning.

Loop selection lives here alone: uvloop when importable, asyncio otherwise, or what
`--loop` says. So does process-wide tuning (collector thresholds, the GIL switch
interval, the fd limit, `gc.freeze`): each role declares a `Tuning`, and its run path
applies it once when the process starts. Never from a service's constructor or start:
those settings belong to the process, and a test or bench that builds a service (or
several) in its own process must not have them changed behind its back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from urn.errors import StartupError
from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
from typing import Any

__all__ = [
    "Tuning",
    "cancel_and_wait",
    "current_fd_limit",
    "raise_fd_limit",
    "run_main",
    "settle_process",
    "tune_process",
]

log = get_logger("runtime")


def _new_loop(choice: str) -> asyncio.AbstractEventLoop:
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise StartupError("--loop uvloop: uvloop is not installed") from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run_main(main: Callable[[asyncio.Event], Awaitable[int]], loop_choice: str = "auto") -> int:
    """Run `main(stop)` to completion; SIGINT and SIGTERM set `stop` for a clean exit.

    A StartupError is printed as one clear line and exits 2.
    """
    loop = _new_loop(loop_choice)
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        return loop.run_until_complete(main(stop))
    except StartupError as exc:
        log.error("startup_failed", error=str(exc))
        print(f"urn: cannot start: {exc}", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait for each to finish unwinding."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft file-descriptor limit to the hard one; return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft, hard


def current_fd_limit() -> tuple[int, int]:
    """The file-descriptor limit (soft, hard) in force, changing nothing."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard


@dataclass(frozen=True, slots=True)
class Tuning:
    """Process-wide settings one role wants; each role says why next to its own value."""

    gc_thresholds: tuple[int, int, int] | None = None  # gc.set_threshold; None: as is
    switch_interval: float | None = None  # sys.setswitchinterval, seconds; None: as is
    raise_fd_limit: bool = False  # soft RLIMIT_NOFILE up to the hard limit
    freeze_after_start: bool = False  # gc.freeze() once started: what exists by then stays


def tune_process(tuning: Tuning) -> tuple[int, int]:
    """Apply `tuning` at process start, before the role builds its service.

    Returns the file-descriptor limit (soft, hard) now in force, for a role that sizes
    itself by it.
    """
    if tuning.gc_thresholds is not None:
        gc.set_threshold(*tuning.gc_thresholds)
    if tuning.switch_interval is not None:
        sys.setswitchinterval(tuning.switch_interval)
    return raise_fd_limit() if tuning.raise_fd_limit else current_fd_limit()


def settle_process(tuning: Tuning) -> None:
    """The part of `tuning` that waits until the role has started (its config loaded)."""
    if tuning.freeze_after_start:
        gc.freeze()
