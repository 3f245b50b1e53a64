"""Push authentication over real HTTP: forged pushes refused and counted, keys rotated live.

Rotation without downtime, as an operator does it through the config document:
  1. everyone signs and accepts K1;
  2. the document says push_key K2, previous_push_keys [K1]: receivers accept both, and
     senders that already re-read the document sign with K2 while others still use K1;
  3. the document drops K1: K1 tables are refused (401, reason bad_mac) and counted.
At no step is a table from an up-to-date sender refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry

from sim.testing import TEST_PUSH_KEY, document_dict, signed_table
from urn.clock import SystemClock
from urn.metrics import AggregatorMetrics
from urn.source import ConfigLoader, Loaded
from urn.wire import MAC_BYTES, TableKind

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import ReceiverServer

K1 = b"rotation-key-one-0123456789abcdef"
K2 = b"rotation-key-two-0123456789abcdef"
K3 = b"rotation-key-three-0123456789abcd"
CHECKER = TableKind.CHECKER  # the tier checker tables are pushed under


def test_tables_signed_by_the_new_or_the_previous_key_are_both_accepted(
    make_receiver: Callable[..., ReceiverServer],
) -> None:
    server = make_receiver(keys=(K2, K1))
    assert server.post(server.table(1, key=K2, sender="new"))[0] == 200
    assert server.post(server.table(1, key=K1, sender="old"))[0] == 200
    assert server.accepted("new") == server.accepted("old") == 1


def test_after_the_previous_key_is_dropped_its_tables_are_refused_and_counted(
    make_receiver: Callable[..., ReceiverServer],
) -> None:
    server = make_receiver(keys=(K2, K1))
    assert server.post(server.table(1, key=K1))[0] == 200
    server.accept_keys((K2,))
    before = server.state()
    status, reply = server.post(server.table(2, key=K1))
    assert (status, reply["error"]) == (401, "bad_mac")
    assert server.rejected("bad_mac") == 1
    assert server.state() == before
    assert server.post(server.table(2, key=K2))[0] == 200


def _forgeries(server: ReceiverServer) -> dict[str, bytes]:
    good = server.table(7)
    signed_part = good[: -MAC_BYTES - 2]
    mac_prefix = good[-MAC_BYTES - 2 : -MAC_BYTES]
    flipped = bytearray(good)
    flipped[150] ^= 0x01  # a slot byte: the MAC no longer covers what is sent
    return {
        "zero MAC": signed_part + mac_prefix + b"\0" * MAC_BYTES,
        "MAC of an unknown key": server.table(7, key=K3),
        "MAC without any key": signed_part + mac_prefix + hashlib.sha256(signed_part).digest(),
        "MAC with an empty key": signed_part + mac_prefix + hmac.digest(b"", signed_part, "sha256"),
        "slot flipped after signing": bytes(flipped),
        "MAC over the head only": signed_part
        + mac_prefix
        + hmac.digest(TEST_PUSH_KEY, signed_part[:119], "sha256"),
    }


@pytest.mark.parametrize(
    "forgery",
    [
        "zero MAC",
        "MAC of an unknown key",
        "MAC without any key",
        "MAC with an empty key",
        "slot flipped after signing",
        "MAC over the head only",
    ],
)
def test_forged_pushes_are_refused_with_401_counted_and_change_nothing(
    receiver: ReceiverServer, forgery: str
) -> None:
    assert receiver.post(receiver.table(1))[0] == 200
    before = receiver.state()
    status, reply = receiver.post(_forgeries(receiver)[forgery])
    assert (status, reply["error"]) == (401, "bad_mac")
    assert receiver.rejected("bad_mac") == 1
    assert receiver.state() == before
    # Forged senders never become metric labels: only authenticated names do.
    assert (
        receiver.registry.get_sample_value(
            "urn_tables_received_total", {"sender": "unknown", "result": "bad_mac"}
        )
        == 1
    )


def _write(path: Path, **top: Any) -> None:
    path.write_text(json.dumps(document_dict(**top)))


async def test_rotation_through_the_config_document_without_downtime(
    tmp_path: Path, make_receiver: Callable[..., ReceiverServer]
) -> None:
    environ = {"KEY_ONE": K1.decode(), "KEY_TWO": K2.decode()}
    config = tmp_path / "urn.json"
    _write(config, push_key={"env": "KEY_ONE"})

    def loader() -> ConfigLoader:
        return ConfigLoader(
            str(config), SystemClock(), AggregatorMetrics(CollectorRegistry()), environ
        )

    def keep(_: Loaded) -> None:
        """Nothing to build or apply: the test reads each loader's keys."""

    receiving = loader()
    early_sender = loader()  # re-reads its config late
    late_sender = loader()  # re-reads its config early
    for node in (receiving, early_sender, late_sender):
        await node.load_first(keep)
    server = make_receiver(keys=receiving.current.keys.for_kind(CHECKER).accepted)

    def push(node: ConfigLoader, sender: str, sequence: int) -> int:
        body = signed_table(
            bytes([1]) * server.capacity,
            sender=sender,
            sequence=sequence,
            key=node.current.keys.for_kind(CHECKER).signing,
        )
        return server.post(body)[0]

    assert push(early_sender, "early", 1) == push(late_sender, "late", 1) == 200

    # Step 2: new signing key, old one still accepted. The receiver applies first.
    _write(config, push_key={"env": "KEY_TWO"}, previous_push_keys=[{"env": "KEY_ONE"}])
    assert await receiving.poll_once(keep)
    server.accept_keys(receiving.current.keys.for_kind(CHECKER).accepted)
    assert push(early_sender, "early", 2) == 200  # still signs with K1
    assert await early_sender.poll_once(keep)
    assert early_sender.current.keys.for_kind(CHECKER).signing == K2
    assert push(early_sender, "early", 3) == push(late_sender, "late", 2) == 200
    assert await late_sender.poll_once(keep)
    assert push(early_sender, "early", 4) == push(late_sender, "late", 3) == 200

    # Step 3: the old key is gone everywhere; a straggler signing with K1 is refused.
    _write(config, push_key={"env": "KEY_TWO"})
    assert await receiving.poll_once(keep)
    server.accept_keys(receiving.current.keys.for_kind(CHECKER).accepted)
    assert server.keys == (K2,)
    assert push(early_sender, "early", 5) == 200
    straggler = signed_table(bytes([1]) * server.capacity, sender="late", sequence=9, key=K1)
    assert server.post(straggler)[0] == 401
    assert server.rejected("bad_mac") == 1
    assert server.receiver.guard.last_sequence("late") == 3
