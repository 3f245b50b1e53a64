"""N-of-M over the window, driven by a manual clock: the behaviours an operator relies on.

Pure: no event loop, no ports. FakeClock only supplies `now`; nothing sleeps.
"""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.tick import Plan, TickCore
from aggregator.window import Entry, Window
from urn.config import parse_document
from urn.table import Reason, Status, aggregated_byte
from urn.testing import FakeClock, document_dict

CAPACITY = 16
OK, DOWN = int(Reason.HEALTHY), int(Reason.REFUSED)
UNHEALTHY = aggregated_byte(Status.UNHEALTHY, Reason.REFUSED)


def make_plan(**top: object) -> Plan:
    checks = [
        {"slot": 0, "type": "tcp", "host": "127.0.0.1", "port": 1, "failures": 3, "of_last": 5},
        {"slot": 1, "type": "tcp", "host": "127.0.0.1", "port": 2, "failures": 1, "of_last": 1},
        {"slot": 2, "type": "tcp", "host": "127.0.0.1", "port": 3},  # fleet defaults
    ]
    return Plan.from_document(
        parse_document(document_dict(checks, capacity=CAPACITY, staleness=5.0, **top))
    )


class Fleet:
    """Checkers pushing tables into a window; ticks read it at the clock's `now`."""

    def __init__(self, plan: Plan, depth: int = 3, staleness: float = 5.0) -> None:
        self.clock = FakeClock()
        self.window = Window(depth)
        self.core = TickCore(CAPACITY)
        self.plan = plan
        self.staleness = staleness
        self.sequence: dict[str, int] = {}

    def push(self, sender: str, **slots: int) -> None:
        table = np.zeros(CAPACITY, dtype=np.uint8)
        for name, value in slots.items():
            table[int(name.removeprefix("s"))] = value
        sequence = self.sequence.get(sender, 0) + 1
        self.sequence[sender] = sequence
        now = self.clock.monotonic()
        self.window.add(Entry(sender, "a", sequence, self.clock.time(), now, table))

    async def round(self, **by_sender: dict[str, int]) -> np.ndarray:
        """Each named checker pushes once (0.1 s apart), then one tick."""
        for sender, slots in by_sender.items():
            self.push(sender, **slots)
            await self.clock.advance(0.1)
        return self.tick()

    def tick(self) -> np.ndarray:
        now = self.clock.monotonic()
        self.window.prune(now, self.staleness)
        return self.core.run(self.window, now, self.staleness, self.plan)

    @property
    def fresh(self) -> list[str]:
        return self.window.fresh_senders(self.clock.monotonic(), self.staleness)


async def test_a_flaky_single_checker_does_not_flip_a_slot() -> None:
    fleet = Fleet(make_plan())
    for _ in range(10):
        table = await fleet.round(c1={"s0": DOWN}, c2={"s0": OK}, c3={"s0": OK})
        # of the 5 newest observations at most 2 come from c1: fewer than N = 3
        assert table[0] == Status.HEALTHY
        await fleet.clock.advance(0.7)


async def test_n_failures_flip_it_and_it_recovers() -> None:
    fleet = Fleet(make_plan())
    for _ in range(3):
        assert (await fleet.round(c1={"s0": OK}, c2={"s0": OK}, c3={"s0": OK}))[0] == 1
    table = await fleet.round(c1={"s0": DOWN}, c2={"s0": DOWN})
    assert table[0] == Status.HEALTHY  # 2 failures among the 5 newest
    table = await fleet.round(c3={"s0": DOWN})
    assert table[0] == UNHEALTHY  # 3 of the 5 newest
    table = await fleet.round(c1={"s0": OK}, c2={"s0": OK})
    assert table[0] == UNHEALTHY  # newest: ok ok down down down
    table = await fleet.round(c3={"s0": OK})
    assert table[0] == Status.HEALTHY  # ok ok ok down down: recovered


async def test_stale_checkers_are_excluded() -> None:
    fleet = Fleet(make_plan(), staleness=5.0)
    await fleet.round(c1={"s1": DOWN})
    assert fleet.tick()[1] == UNHEALTHY
    # c1 goes quiet; c2 keeps pushing healthy. Once c1's table is stale, only c2 counts,
    # even though c1's failure was pushed after c2's first table.
    fleet.push("c2", s1=OK)
    await fleet.clock.advance(4.0)
    fleet.push("c2", s1=OK)
    assert fleet.tick()[1] == Status.HEALTHY  # newest is c2's
    assert fleet.fresh == ["c1", "c2"]
    await fleet.clock.advance(1.5)
    assert fleet.fresh == ["c2"]
    assert fleet.window.senders == ["c1", "c2"]
    fleet.tick()
    assert fleet.window.senders == ["c2"]  # pruned


async def test_checkers_dying_shrink_the_pool() -> None:
    fleet = Fleet(make_plan())
    for _ in range(2):
        await fleet.round(c1={"s0": DOWN}, c2={"s0": DOWN}, c3={"s0": OK})
    assert fleet.tick()[0] == UNHEALTHY
    # c1 and c2 die; after staleness only c3's last 3 tables are left to decide.
    for _ in range(60):
        await fleet.round(c3={"s0": OK})
    assert fleet.fresh == ["c3"]
    entries = fleet.window.fresh(fleet.clock.monotonic(), fleet.staleness)
    assert [e.sender for e in entries] == ["c3"] * 3  # depth 3: the last three only
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
    # defaults: failures 3 of_last 10 (config parser); override to 2 of 2
    fleet = Fleet(make_plan(defaults={"failures": 2, "of_last": 2}))
    table = await fleet.round(c1={"s2": DOWN})
    assert table[2] == Status.HEALTHY
    table = await fleet.round(c1={"s2": DOWN})
    assert table[2] == UNHEALTHY


def test_window_keeps_depth_tables_and_resizes() -> None:
    window = Window(depth=2)
    for seq in range(1, 5):
        window.add(Entry("c1", "a", seq, 0.0, float(seq), np.zeros(4, np.uint8)))
    assert [e.sequence for e in window.history("c1")] == [3, 4]
    window.resize(1)
    assert [e.sequence for e in window.history("c1")] == [4]
    window.add(Entry("c1", "a", 5, 0.0, 5.0, np.zeros(4, np.uint8)))
    assert [e.sequence for e in window.history("c1")] == [5]
    with pytest.raises(ValueError, match="at least 1"):
        Window(0)
    with pytest.raises(ValueError, match="at least 1"):
        window.resize(0)


def test_fresh_order_is_newest_first_with_a_stable_tie_break() -> None:
    window = Window()
    empty = np.zeros(4, np.uint8)
    window.add(Entry("b", "a", 1, 0.0, 10.0, empty))
    window.add(Entry("a", "a", 1, 0.0, 10.0, empty))
    window.add(Entry("c", "a", 1, 0.0, 11.0, empty))
    window.add(Entry("a", "a", 2, 0.0, 9.0, empty))  # only its receive time matters
    fresh = window.fresh(11.0, 5.0)
    order = [(e.sender, e.sequence) for e in fresh]
    assert [e.age(11.0) for e in fresh] == [0.0, 1.0, 1.0, 2.0]
    assert order == [("c", 1), ("a", 1), ("b", 1), ("a", 2)]
    assert window.fresh(20.0, 5.0) == []
