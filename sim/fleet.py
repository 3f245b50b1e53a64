"""A local fleet of real urn processes: start, watch, kill, stop, never leave orphans.

Each component runs as its own OS process (`python -m urn ROLE ...`), its JSON logs in
a file under the run directory. Children die with their parent even on kill -9 of the
parent (PR_SET_PDEATHSIG on Linux), and `stop_all` sends SIGTERM, waits, then SIGKILLs
whatever is left, so a demo or benchmark never leaves processes behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import aiohttp

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Fleet", "Member"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Member:
    """One running component."""

    name: str
    argv: list[str]
    health_url: str | None
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: IO[bytes]
    started_at: float = field(default_factory=time.monotonic)
    prefix: tuple[str, ...] = ()  # a command the process runs under (e.g. unshare)

    @property
    def args(self) -> list[str]:
        """The `urn` arguments it was started with."""
        return self.argv[len(self.prefix) + 3 :]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far, from /proc (Linux)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_bytes(self) -> int:
        try:
            pages = int(Path(f"/proc/{self.pid}/statm").read_text().split()[1])
        except OSError:
            return 0
        return pages * os.sysconf("SC_PAGE_SIZE")


class Fleet:
    """Starts and stops urn processes; use as `async with Fleet(run_dir) as fleet:`."""

    def __init__(self, run_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        # The aggregated tier's key (config `table_key`), unless the caller brings one:
        # a fleet of its own, so its checkers' push key never signs a resolver's table.
        self.env.setdefault("URN_TABLE_KEY", secrets.token_hex(32))
        self.members: dict[str, Member] = {}

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()

    async def start(
        self,
        name: str,
        args: Sequence[str],
        health_url: str | None = None,
        env: Mapping[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> Member:
        """Start `[PREFIX...] urn ARGS...` as member `name`; does not wait for readiness."""
        if name in self.members and self.members[name].alive:
            raise RuntimeError(f"{name} is already running")
        log_path = self.run_dir / f"{name}.log"
        log_file = log_path.open("ab")
        argv = [*prefix, sys.executable, "-m", "urn", *args]
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env={**self.env, **(env or {})},
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        member = Member(name, argv, health_url, process, log_path, log_file, prefix=tuple(prefix))
        self.members[name] = member
        return member

    async def wait_healthy(self, names: Sequence[str] | None = None, timeout: float = 20.0) -> None:
        """Wait until each member's /healthz answers (any status: it is up and serving)."""
        deadline = time.monotonic() + timeout
        pending = [self.members[n] for n in (names or list(self.members))]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
            while pending:
                for member in list(pending):
                    if not member.alive:
                        raise RuntimeError(
                            f"{member.name} exited with {member.process.returncode}; "
                            f"log {member.log_path}:\n{self.tail(member.name)}"
                        )
                    if member.health_url is None:
                        pending.remove(member)
                        continue
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                        async with session.get(member.health_url) as response:
                            await response.read()
                            pending.remove(member)
                if pending and time.monotonic() > deadline:
                    names_left = ", ".join(m.name for m in pending)
                    raise TimeoutError(f"not serving after {timeout:g}s: {names_left}")
                if pending:
                    await asyncio.sleep(0.05)

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            text = self.members[name].log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        member = self.members[name]
        if member.alive:
            with contextlib.suppress(ProcessLookupError):
                member.process.send_signal(signum)

    async def wait_exit(self, name: str, timeout: float = 10.0) -> int:
        member = self.members[name]
        code = await asyncio.wait_for(member.process.wait(), timeout)
        member.log_file.close()
        return code

    async def restart(self, name: str) -> Member:
        member = self.members[name]
        if member.alive:
            self.kill(name)
            await self.wait_exit(name)
        return await self.start(name, member.args, member.health_url, prefix=member.prefix)

    async def stop_all(self, grace: float = 5.0) -> dict[str, int | None]:
        """SIGTERM everyone, wait up to `grace`, SIGKILL the rest; return exit codes."""
        for member in self.members.values():
            if member.alive:
                with contextlib.suppress(ProcessLookupError):
                    member.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for member in self.members.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(member.process.wait(), remaining)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    member.process.kill()
                await member.process.wait()
            member.log_file.close()
        return {name: m.process.returncode for name, m in self.members.items()}
