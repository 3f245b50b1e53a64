"""Watching a running fleet from outside, as an operator would.

`scrape` reads a process's /metrics into {sample name + labels: value}; `DnsWatcher`
asks the resolver every name over UDP DNS at a steady rate and records, per name,
which answers came back when. Not a load generator: a few hundred queries a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import dns.message
import dns.rcode
import dns.rdatatype
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Sequence


__all__ = ["DnsWatcher", "JsonWatcher", "Observation", "metric", "scrape"]

Samples = dict[str, float]


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    """All samples of a /metrics page, keyed `name{label="v",...}` (labels sorted)."""
    async with session.get(url) as response:
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def metric(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        if all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


@dataclass
class Observation:
    at: float  # monotonic
    answers: frozenset[str]
    rcode: int
    latency: float


async def _paced(stop: asyncio.Event, rate: float) -> AsyncIterator[int]:
    """0, 1, 2, ... at `rate` per second until `stop` is set.

    Behind schedule, the next comes at once (after one pass of the loop, so answers
    already in are read) and the schedule restarts from now rather than bursting.
    """
    period = 1.0 / rate
    deadline = time.monotonic()
    i = 0
    while not stop.is_set():
        yield i
        i += 1
        deadline += period
        delay = deadline - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        else:
            deadline = time.monotonic()
            await asyncio.sleep(0)


@dataclass
class DnsWatcher:
    """Queries every name in turn over UDP at `rate` per second; keeps every answer."""

    server: tuple[str, int]
    names: Sequence[str]
    rate: float = 200.0
    timeout: float = 0.5
    history: dict[str, list[Observation]] = field(default_factory=dict)
    lost: int = 0
    _wires: dict[int, tuple[str, float]] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        queries = {name: dns.message.make_query(name, dns.rdatatype.A) for name in self.names}
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(self._on_answer), remote_addr=self.server
        )
        try:
            order = list(self.names)
            random.shuffle(order)
            async for i in _paced(stop, self.rate):
                name = order[i % len(order)]
                query = queries[name]
                query.id = random.getrandbits(16)
                self._expire()
                self._wires[query.id] = (name, time.monotonic())
                transport.sendto(query.to_wire())
        finally:
            transport.close()

    def _expire(self) -> None:
        now = time.monotonic()
        for qid, (_, sent) in list(self._wires.items()):
            if now - sent > self.timeout:
                del self._wires[qid]
                self.lost += 1

    def _on_answer(self, data: bytes) -> None:
        try:
            message = dns.message.from_wire(data)
        except Exception:
            self.lost += 1
            return
        pending = self._wires.pop(message.id, None)
        if pending is None:
            return
        name, sent = pending
        now = time.monotonic()
        answers = frozenset(rdata.to_text() for rrset in message.answer for rdata in rrset)
        self.history.setdefault(name, []).append(
            Observation(now, answers, message.rcode(), now - sent)
        )

    def latest(self, name: str) -> Observation | None:
        seen = self.history.get(name)
        return seen[-1] if seen else None

    def observations(self, since: float = 0.0) -> Iterable[tuple[str, Observation]]:
        for name, seen in self.history.items():
            for observation in seen:
                if observation.at >= since:
                    yield name, observation


@dataclass
class JsonWatcher:
    """Asks `GET /v1/resolve` for every name in turn at `rate` per second."""

    base_url: str
    names: Sequence[str]
    rate: float = 50.0
    timeout: float = 1.0
    history: dict[str, list[Observation]] = field(default_factory=dict)
    lost: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        client_timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            async for i in _paced(stop, self.rate):
                name = self.names[i % len(self.names)]
                sent = time.monotonic()
                try:
                    async with session.get(
                        f"{self.base_url}/v1/resolve", params={"name": name, "type": "A"}
                    ) as response:
                        body = await response.json()
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    self.lost += 1
                else:
                    now = time.monotonic()
                    answers = frozenset(str(a["data"]) for a in body.get("Answer", []))
                    self.history.setdefault(name, []).append(
                        Observation(now, answers, int(body.get("Status", -1)), now - sent)
                    )


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_answer: Callable[[bytes], None]) -> None:
        self._on_answer = on_answer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_answer(data)


def rcode_text(code: int) -> str:
    return dns.rcode.to_text(dns.rcode.Rcode(code))


_ = dns.flags
