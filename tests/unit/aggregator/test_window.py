"""Per-checker N-of-M over the window, driven by a manual clock: what an operator relies on.

Pure: no event loop, no ports. FakeClock only supplies `now`; nothing sleeps. The fleet
below simulates checkers the way checker/service.py builds its tables: each probe
shifts its outcome into the slot's history byte (bit 0 newest) and sets `last`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aggregator.tick import Plan, TickCore
from aggregator.window import Entry, Window
from sim.testing import FakeClock, document_dict
from urn.config import parse_document
from urn.table import Reason, Status, aggregated_byte

CAPACITY = 16
OK, DOWN = int(Reason.HEALTHY), int(Reason.REFUSED)
UNHEALTHY = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)


def make_plan(**top: Any) -> Plan:
    checks = [
        {"slot": 0, "type": "tcp", "host": "127.0.0.1", "port": 1, "failures": 3, "of_last": 5},
        {"slot": 1, "type": "tcp", "host": "127.0.0.1", "port": 2, "failures": 1, "of_last": 1},
        {"slot": 2, "type": "tcp", "host": "127.0.0.1", "port": 3},  # fleet defaults
    ]
    return Plan.from_document(
        parse_document(document_dict(checks, capacity=CAPACITY, staleness=5.0, **top))
    )


class Fleet:
    """Checkers probing and pushing tables into a window; ticks read it at `now`."""

    def __init__(self, plan: Plan, depth: int = 3, staleness: float = 5.0) -> None:
        self.clock = FakeClock()
        self.window = Window(depth)
        self.core = TickCore(CAPACITY)
        self.plan = plan
        self.staleness = staleness
        self.sequence: dict[str, int] = {}
        self.last: dict[str, np.ndarray] = {}
        self.history: dict[str, np.ndarray] = {}
        self.az: dict[str, str] = {}

    def push(self, sender: str, az: str = "a", **slots: int) -> None:
        """`sender` finishes one probe of each named slot, then pushes its whole table."""
        last = self.last.setdefault(sender, np.zeros(CAPACITY, np.uint8))
        history = self.history.setdefault(sender, np.zeros(CAPACITY, np.uint8))
        for name, value in slots.items():
            slot = int(name.removeprefix("s"))
            last[slot] = value
            history[slot] = ((int(history[slot]) << 1) | (value >= 2)) & 0xFF
        sequence = self.sequence.get(sender, 0) + 1
        self.sequence[sender] = sequence
        now = self.clock.monotonic()
        # the pushed planes are copies: the checker goes on writing its own
        self.window.add(
            Entry(sender, az, sequence, self.clock.time(), now, last.copy(), history.copy())
        )

    async def round(self, **by_sender: dict[str, int]) -> np.ndarray:
        """Each named checker probes and pushes once (0.1 s apart), then one tick."""
        for sender, slots in by_sender.items():
            self.push(sender, **slots)
            await self.clock.advance(0.1)
        return self.tick()

    def tick(self) -> np.ndarray:
        now = self.clock.monotonic()
        self.window.prune(now, self.staleness)
        return self.core.run(self.window, now, self.staleness, self.plan).table

    @property
    def fresh(self) -> list[str]:
        return self.window.fresh_senders(self.clock.monotonic(), self.staleness)


async def test_a_single_checker_seeing_failures_does_not_flip_a_slot() -> None:
    fleet = Fleet(make_plan())
    for _ in range(10):
        table = await fleet.round(c1={"s0": DOWN}, c2={"s0": OK}, c3={"s0": OK})
        # c1 judges it unhealthy (soon 3 of its 5 last probes), c2 and c3 do not: 1 of 3
        assert table[0] == Status.HEALTHY
        await fleet.clock.advance(0.7)


async def test_a_flaky_checker_stays_below_n() -> None:
    fleet = Fleet(make_plan())
    for i in range(12):
        # every checker fails every third probe: never 3 of the last 5
        value = DOWN if i % 3 == 2 else OK
        table = await fleet.round(c1={"s0": value}, c2={"s0": value}, c3={"s0": value})
        assert table[0] == Status.HEALTHY
    assert int(fleet.history["c1"][0]) & 0b11111 == 0b01001  # bit 0 newest


async def test_n_failures_flip_it_and_it_recovers() -> None:
    fleet = Fleet(make_plan())
    everyone = ("c1", "c2", "c3")

    async def probe(value: int) -> int:
        return int((await fleet.round(**{c: {"s0": value} for c in everyone}))[0])

    for _ in range(3):
        assert await probe(OK) == Status.HEALTHY
    assert await probe(DOWN) == Status.HEALTHY
    assert await probe(DOWN) == Status.HEALTHY  # 2 of each checker's last 5
    assert await probe(DOWN) == UNHEALTHY  # 3 of the last 5, at every checker
    # still 3 of the last 5; the newest probes are fine, so no failure to name: ERROR
    recovering = aggregated_byte(Status.UNHEALTHY, Reason.ERROR)
    assert await probe(OK) == recovering  # newest: ok down down down ok
    assert await probe(OK) == recovering  # ok ok down down down
    assert await probe(OK) == Status.HEALTHY  # ok ok ok down down: recovered


async def test_only_each_checkers_newest_table_counts() -> None:
    fleet = Fleet(make_plan())
    # c1's history says fail, fail, ok on slot 1 (1 of 1): its older tables said down
    fleet.push("c1", s1=DOWN)
    await fleet.clock.advance(0.1)
    fleet.push("c1", s1=DOWN)
    await fleet.clock.advance(0.1)
    assert fleet.tick()[1] == UNHEALTHY
    fleet.push("c1", s1=OK)
    await fleet.clock.advance(0.1)
    assert len(fleet.window.history("c1")) == 3
    assert fleet.tick()[1] == Status.HEALTHY


async def test_stale_checkers_are_excluded() -> None:
    fleet = Fleet(make_plan(quorum={"unhealthy_at": 0.5}), staleness=5.0)
    await fleet.round(c1={"s1": DOWN}, c2={"s1": OK})
    assert fleet.tick()[1] == UNHEALTHY  # 1 of 2, at least half
    # c1 goes quiet; c2 keeps pushing healthy. Once c1's table is stale, only c2 counts.
    await fleet.clock.advance(4.0)
    fleet.push("c2", s1=OK)
    assert fleet.tick()[1] == UNHEALTHY  # c1's table is 4.2 s old: still fresh
    assert fleet.fresh == ["c1", "c2"]
    await fleet.clock.advance(1.0)
    assert fleet.fresh == ["c2"]
    assert fleet.window.senders == ["c1", "c2"]
    assert fleet.tick()[1] == Status.HEALTHY
    assert fleet.window.senders == ["c2"]  # pruned


async def test_checkers_dying_shrink_the_pool() -> None:
    fleet = Fleet(make_plan())
    for _ in range(3):
        await fleet.round(c1={"s0": DOWN}, c2={"s0": DOWN}, c3={"s0": OK})
    assert fleet.tick()[0] == UNHEALTHY  # 2 of 3 checkers
    # c1 and c2 die; after staleness only c3's newest table is left to decide.
    for _ in range(60):
        await fleet.round(c3={"s0": OK})
    assert fleet.fresh == ["c3"]
    now = fleet.clock.monotonic()
    assert [e.sender for e in fleet.window.history("c3")] == ["c3"] * 3
    assert fleet.window.senders == ["c3"]
    newest = fleet.window.newest_fresh(now, fleet.staleness)
    assert [(e.sender, e.sequence) for e in newest] == [("c3", 63)]
    assert fleet.tick()[0] == Status.HEALTHY
    # and when the last checker dies too, nothing is known
    await fleet.clock.advance(10)
    assert fleet.fresh == []
    assert fleet.tick()[0] == Status.UNKNOWN


async def test_unknown_without_observations() -> None:
    fleet = Fleet(make_plan())
    assert fleet.tick()[:3].tolist() == [0, 0, 0]  # no tables at all
    table = await fleet.round(c1={"s0": OK}, c2={"s0": OK})
    assert table[:3].tolist() == [Status.HEALTHY, Status.UNKNOWN, Status.UNKNOWN]
    # a value in an unconfigured slot is ignored
    table = await fleet.round(c1={"s9": DOWN})
    assert table[9] == Status.UNKNOWN


async def test_fleet_defaults_apply() -> None:
    # the parser's defaults: 1 failure of the last 1
    fleet = Fleet(make_plan())
    assert (await fleet.round(c1={"s2": DOWN}))[2] == UNHEALTHY
    assert (await fleet.round(c1={"s2": OK}))[2] == Status.HEALTHY
    # overridden to 2 of 2
    fleet = Fleet(make_plan(defaults={"failures": 2, "of_last": 2}))
    assert (await fleet.round(c1={"s2": DOWN}))[2] == Status.HEALTHY
    assert (await fleet.round(c1={"s2": DOWN}))[2] == UNHEALTHY
    # and a fleet quorum: at least two verdicts
    fleet = Fleet(make_plan(quorum={"min_checkers": 2}))
    assert (await fleet.round(c1={"s2": DOWN}))[2] == Status.UNKNOWN
    assert (await fleet.round(c1={"s2": DOWN}, c2={"s2": DOWN}))[2] == UNHEALTHY


def entry(sender: str, sequence: int, received_at: float) -> Entry:
    empty = np.zeros(4, np.uint8)
    return Entry(sender, "a", sequence, 0.0, received_at, empty, empty)


def test_window_keeps_depth_tables_and_resizes() -> None:
    window = Window(depth=2)
    for seq in range(1, 5):
        window.add(entry("c1", seq, float(seq)))
    assert [e.sequence for e in window.history("c1")] == [3, 4]
    window.resize(1)
    assert [e.sequence for e in window.history("c1")] == [4]
    window.add(entry("c1", 5, 5.0))
    assert [e.sequence for e in window.history("c1")] == [5]
    with pytest.raises(ValueError, match="at least 1"):
        Window(0)
    with pytest.raises(ValueError, match="at least 1"):
        window.resize(0)


def test_newest_fresh_is_one_table_per_fresh_checker_by_name() -> None:
    window = Window()
    window.add(entry("b", 1, 10.0))
    window.add(entry("b", 2, 12.0))
    window.add(entry("a", 1, 11.0))
    window.add(entry("c", 1, 5.0))  # stale at 11.5 with staleness 5
    newest = window.newest_fresh(11.5, 5.0)
    assert [(e.sender, e.sequence) for e in newest] == [("a", 1), ("b", 2)]
    assert window.fresh_senders(11.5, 5.0) == ["a", "b"]
    assert window.newest_fresh(30.0, 5.0) == []
