"""Config sources and the whole-document reload loop.

Owns: fetching the document (file path or http(s) URL), validating it, resolving its
keys, and handing the whole result to the service every `config_interval`, changed or
not. A bad pass keeps the last good config, logs one structured error and counts
`urn_config_loads_total{result="error"}`; the next good pass heals.
Never: applies part of a document, or changes capacity under a running process.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import aiohttp

from urn.config import Document, parse_text
from urn.errors import ConfigError, ConfigFetchError, StartupError
from urn.keys import ALL_TIERS, Keys, load_keys
from urn.logs import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Mapping

    from urn.clock import Clock
    from urn.metrics import CommonMetrics
    from urn.wire import TableKind

__all__ = ["ConfigLoader", "Loaded", "read_source"]

T = TypeVar("T")

MAX_CONFIG_BYTES = 16 * 1024 * 1024
FETCH_TIMEOUT = 5.0
log = get_logger("config")


@dataclass(frozen=True, slots=True)
class Loaded:
    """One good config pass: the document and the keys it names (the tiers this process
    needs: `keys.for_kind(kind)`)."""

    document: Document
    keys: Keys


async def read_source(location: str, timeout: float = FETCH_TIMEOUT) -> bytes:
    """The raw bytes at a file path or http(s) URL."""
    if location.startswith(("http://", "https://")):
        try:
            client_timeout = aiohttp.ClientTimeout(total=timeout)
            async with (
                aiohttp.ClientSession(timeout=client_timeout) as session,
                session.get(location) as response,
            ):
                if response.status != 200:
                    raise ConfigFetchError(location, f"HTTP {response.status}")
                declared = response.content_length
                if declared is not None and declared > MAX_CONFIG_BYTES:
                    raise ConfigFetchError(location, f"larger than {MAX_CONFIG_BYTES} bytes")
                body = await _read_to_end(response.content, location)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConfigFetchError(location, type(exc).__name__ + f" {exc}".rstrip()) from None
    else:
        try:
            body = await asyncio.to_thread(Path(location).read_bytes)
        except OSError as exc:
            raise ConfigFetchError(location, exc.strerror or str(exc)) from None
    if len(body) > MAX_CONFIG_BYTES:
        raise ConfigFetchError(location, f"larger than {MAX_CONFIG_BYTES} bytes")
    return body


async def _read_to_end(stream: aiohttp.StreamReader, location: str) -> bytes:
    """Every byte of the body up to the cap: one `read(n)` returns only what has arrived,
    and a document cut short can still parse (a YAML list ending early is valid YAML)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(65536):
        size += len(chunk)
        if size > MAX_CONFIG_BYTES:
            raise ConfigFetchError(location, f"larger than {MAX_CONFIG_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class ConfigLoader:
    """Keeps the last good config and re-applies the whole document every interval.

    The first good pass builds the service (`load_first(build)`); every later pass hands
    the service the whole document (`run(service.apply)`). A build or apply that raises
    ConfigError rejects the pass like a bad document.
    """

    def __init__(
        self,
        location: str,
        clock: Clock,
        metrics: CommonMetrics,
        environ: Mapping[str, str] | None = None,
        first_pass: float | None = None,
        *,
        needs: Collection[TableKind] = ALL_TIERS,
    ) -> None:
        """`first_pass`: the share of an interval after `run` starts at which the first
        pass comes, in (0, 1]; random by default (see `run`). `needs`: the table kinds
        whose keys this process signs or verifies with (urn.keys.load_keys); only their
        key sources are read, so a checker never needs the table key."""
        if first_pass is not None and not 0.0 < first_pass <= 1.0:
            raise ValueError(f"first_pass {first_pass} is outside (0, 1]")
        self.first_pass = 1.0 - random.random() if first_pass is None else first_pass
        self.location = location
        self.clock = clock
        self._metrics = metrics
        self._environ = environ
        self._needs = frozenset(needs)
        self._current: Loaded | None = None
        self._last_raw = b""  # the bytes `_current.document` was validated from
        self.last_error: str | None = None

    @property
    def current(self) -> Loaded:
        if self._current is None:
            raise RuntimeError("no config loaded yet: call load_first()")
        return self._current

    async def load_first(self, build: Callable[[Loaded], Awaitable[T] | T]) -> T:
        """`build(first good config)`, or StartupError saying why there is none."""
        built: list[T] = []

        async def keep(loaded: Loaded) -> None:
            made = build(loaded)
            built.append(await made if inspect.isawaitable(made) else made)

        if not await self.poll_once(keep):
            raise StartupError(f"no usable config at {self.location}: {self.last_error}")
        return built[0]

    async def poll_once(self, apply: Callable[[Loaded], Awaitable[None] | None]) -> bool:
        """One whole pass: fetch, validate, resolve keys, apply. False if it kept the old."""
        try:
            raw = await read_source(self.location)
            document = await self._parse(raw)
            if self._current is not None and document.capacity != self._current.document.capacity:
                raise ConfigError(
                    "capacity",
                    document.capacity,
                    f"differs from the running {self._current.document.capacity}: capacity is"
                    " fixed for a running fleet; restart every process to change it",
                )
            loaded = Loaded(document, load_keys(document, self._environ, self._needs))
            applied = apply(loaded)
            if applied is not None:
                await applied  # a service that builds its new state off the event loop
        except ConfigError as exc:
            self.last_error = str(exc)
            self._metrics.config_loads.labels("error").inc()
            log.error(
                "config_rejected",
                source=self.location,
                field=exc.field_path,
                error=str(exc),
                kept="last good" if self._current is not None else "none",
            )
            return False
        self._current = loaded
        self._last_raw = raw
        self.last_error = None
        self._metrics.config_loads.labels("ok").inc()
        self._metrics.config_last_ok.set(self.clock.time())
        self._metrics.config_in_force(loaded.document.digest)
        return True

    async def _parse(self, raw: bytes) -> Document:
        """The validated document of `raw`; identical bytes reuse the last validation.

        Every pass still reads the source, resolves the keys and applies the whole
        document. What is skipped is re-validating bytes already validated: at 10,000
        checks that costs hundreds of ms of CPU, and even in a thread it holds the GIL
        long enough to stall queries every pass.
        """
        if self._current is not None and raw == self._last_raw:
            return self._current.document
        # A 10,000-check YAML document takes seconds to parse: keep the loop serving.
        # Levers' expiries are judged against this process's wall clock, now: identical
        # bytes are not judged again, and an expiry only ever comes nearer.
        return await asyncio.to_thread(parse_text, raw, self.location, self.clock.time())

    async def run(self, apply: Callable[[Loaded], Awaitable[None] | None]) -> None:
        """Poll forever on absolute deadlines; the interval follows the current document.

        The first pass comes `first_pass` of the way into the first interval (random by
        default): processes started together would otherwise all re-apply their config
        in the same instant, every interval, and each one's CPU burst would land on the
        others' latency at once.
        """
        interval = self.current.document.intervals.config
        deadline = self.clock.monotonic() - (1.0 - self.first_pass) * interval
        while True:
            deadline += self.current.document.intervals.config
            await self.clock.sleep_until(deadline)
            await self.poll_once(apply)
            now = self.clock.monotonic()
            if now > deadline + self.current.document.intervals.config:
                deadline = now  # a stall (suspended VM, slow URL) must not cause a burst
