"""Process plumbing shared by every role: event loop choice, signals, exit codes.

Loop selection lives here alone: uvloop when importable, asyncio otherwise, or what
`--loop` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import sys
from typing import TYPE_CHECKING

from urn.errors import StartupError
from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable
from typing import Any

__all__ = ["cancel_and_wait", "raise_fd_limit", "run_main"]

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
