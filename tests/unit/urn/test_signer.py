"""TableSigner: sequence = max(last + 1, seed of now), and each kind signs with its tier."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from sim.testing import document_dict
from urn.config import parse_text
from urn.errors import BadMac, Replayed, Skewed
from urn.keys import Keyring, Keys
from urn.signer import TableSigner, seed_sequence
from urn.source import Loaded
from urn.wire import SequenceGuard, TableKind, decode

if TYPE_CHECKING:
    from urn.clock import FakeClock

PUSH = b"push-key-0123456789abcdef"
TABLE = b"table-key-0123456789abcdef"
CAPACITY = 8
SKEW = 10.0


def loaded(*, table_key: bool = True) -> Loaded:
    extra = {"table_key": {"env": "URN_TABLE_KEY"}} if table_key else {}
    document = parse_text(json.dumps(document_dict(capacity=CAPACITY, skew=SKEW, **extra)))
    push = Keyring(PUSH, (PUSH,))
    table = Keyring(TABLE, (TABLE,)) if table_key else push
    return Loaded(document, Keys(push=push, table=table, table_defaulted=not table_key))


def test_each_kind_signs_with_its_own_tier(fake_clock: FakeClock) -> None:
    config = loaded()
    checker = TableSigner(TableKind.CHECKER, "chk-a1", fake_clock, az="a")
    aggregator = TableSigner(TableKind.AGGREGATE, "agg-1", fake_clock)
    decode(checker.sign(config, bytes(2 * CAPACITY)), [PUSH], CAPACITY, TableKind.CHECKER)
    decode(aggregator.sign(config, bytes(CAPACITY)), [TABLE], CAPACITY, TableKind.AGGREGATE)
    with pytest.raises(BadMac):
        decode(aggregator.sign(config, bytes(CAPACITY)), [PUSH], CAPACITY, TableKind.AGGREGATE)


async def test_sequence_follows_the_wall_clock_forward_and_counts_on_when_it_steps_back(
    fake_clock: FakeClock,
) -> None:
    signer = TableSigner(TableKind.CHECKER, "chk-a1", fake_clock)
    config = loaded()
    table = bytes(2 * CAPACITY)

    def sequence() -> int:
        signer.sign(config, table)
        return signer.sequence

    first = sequence()
    assert first == seed_sequence(fake_clock.time()) + 1
    await fake_clock.advance(1.0)
    assert sequence() == seed_sequence(fake_clock.time())  # moves on with the clock
    fake_clock.step_wall(3600.0)
    forward = sequence()
    assert forward == seed_sequence(fake_clock.time())  # a step forward: straight there
    fake_clock.step_wall(-7200.0)
    assert [sequence() for _ in range(3)] == [forward + 1, forward + 2, forward + 3]


async def test_a_host_that_boots_with_an_early_clock_is_accepted_once_its_clock_is_corrected(
    fake_clock: FakeClock,
) -> None:
    """A sender restarted on a host whose clock is an hour early, then corrected by NTP.

    Its early tables are refused as skewed; once corrected, its very next table is newer
    than everything the receiver remembers from its previous life, and is accepted.
    """
    config = loaded()
    table = bytes(2 * CAPACITY)
    receiver = SequenceGuard(max_skew=SKEW)
    wall_offset = fake_clock.time() - fake_clock.monotonic()  # the receiver's, never stepped
    accepted = []

    def push(signer: TableSigner) -> None:
        envelope = decode(signer.sign(config, table), [PUSH], CAPACITY, TableKind.CHECKER)
        receiver.check(envelope, now=fake_clock.monotonic() + wall_offset)
        receiver.commit(envelope, heard_at=fake_clock.monotonic())
        accepted.append(envelope)

    before = TableSigner(TableKind.CHECKER, "chk-a1", fake_clock)
    for _ in range(5):
        push(before)
        await fake_clock.advance(1.0)
    # The host reboots within seconds, its clock an hour early (the receiver's is right).
    fake_clock.step_wall(-3600.0)
    after = TableSigner(TableKind.CHECKER, "chk-a1", fake_clock)
    with pytest.raises(Skewed):
        push(after)
    await fake_clock.advance(1.0)
    fake_clock.step_wall(3600.0)  # NTP corrects it
    push(after)
    assert receiver.last_sequence("chk-a1") == after.sequence > before.sequence
    with pytest.raises(Replayed):  # and the guard still guards
        receiver.check(accepted[-2], now=fake_clock.time())
