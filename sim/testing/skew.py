"""Run `python -m MODULE ARGS...` with its wall clock moved by SECONDS: a host whose clock
is wrong, for fault tests (libfaketime's job, without needing libfaketime).

Used as a fleet member's command prefix: `python -m sim.testing.skew 15 python -m urn
aggregator ...`. Only wall time moves (`time.time`, `time.time_ns`); monotonic time is
the machine's, as it is on a host whose clock was set wrong.
"""

from __future__ import annotations

import runpy
import sys
import time

__all__ = ["prefix"]


def prefix(seconds: float) -> list[str]:
    """The command prefix that runs a fleet member `seconds` ahead (negative: behind)."""
    return [sys.executable, "-m", "sim.testing.skew", repr(seconds)]


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "-m":
        raise SystemExit("usage: python -m sim.testing.skew SECONDS PYTHON -m MODULE [ARGS...]")
    seconds = float(argv[0])
    real_time, real_time_ns = time.time, time.time_ns
    shift_ns = round(seconds * 1e9)
    time.time = lambda: real_time() + seconds
    time.time_ns = lambda: real_time_ns() + shift_ns
    module = argv[3]
    sys.argv = [module, *argv[4:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
