"""The RFC 7766 book of DNS/TCP connections: who goes to admit one more, who is overdue."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from resolver.tcplimits import CLOSE_REASONS, Connections, TcpLimits, source_key


@dataclass(eq=False)
class Conn:
    name: str
    last: float = 0.0
    started: float = 0.0


def book(**limits: float) -> Connections[Conn]:
    return Connections(TcpLimits(**limits))  # type: ignore[arg-type]


def test_past_the_total_limit_the_idlest_connection_goes_never_the_new_one() -> None:
    connections = book(max_connections=3, per_source=3)
    old, busy, recent = Conn("old", last=1.0), Conn("busy", last=9.0), Conn("recent", last=5.0)
    for i, conn in enumerate((old, busy, recent)):
        assert connections.admit(conn, f"10.0.0.{i}") == []
    new = Conn("new", last=10.0)
    assert connections.admit(new, "10.0.0.9") == [(old, "connection_limit")]
    assert len(connections) == 3
    assert new in connections
    assert old not in connections


def test_a_dribbler_is_the_idlest_whatever_bytes_it_sends() -> None:
    # Bytes of an unfinished message set `started` once, never `last`: a connection that
    # opened at 1 and has dribbled since is idler than one that answered a query at 2.
    connections = book(max_connections=2, per_source=2)
    dribbler = Conn("dribbler", last=1.0, started=1.5)
    honest = Conn("honest", last=2.0)
    connections.admit(dribbler, "a")
    connections.admit(honest, "b")
    assert connections.admit(Conn("new", last=3.0), "c") == [(dribbler, "connection_limit")]


def test_among_equally_idle_connections_the_first_opened_goes() -> None:
    connections = book(max_connections=3, per_source=3)
    first, second, third = Conn("1", last=4.0), Conn("2", last=4.0), Conn("3", last=4.0)
    for conn in (first, second, third):
        connections.admit(conn, "a")
    connections.forget(first)
    connections.admit(first, "a")  # reopened: now the newest of the three
    assert connections.admit(Conn("new", last=4.0), "b") == [(second, "connection_limit")]


def test_a_source_at_its_limit_replaces_its_own_idlest_connection() -> None:
    connections = book(max_connections=10, per_source=2)
    a1, a2, b1 = Conn("a1", last=1.0), Conn("a2", last=2.0), Conn("b1", last=0.5)
    for conn, source in ((a1, "a"), (a2, "a"), (b1, "b")):
        connections.admit(conn, source)
    a3 = Conn("a3", last=3.0)
    assert connections.admit(a3, "a") == [(a1, "source_limit")]  # b1 is idler, not a's
    assert connections.sources() == {"a": 2, "b": 1}


def test_lowered_limits_shed_down_to_them_on_the_next_admission() -> None:
    connections = book(max_connections=4, per_source=4)
    conns = [Conn(str(i), last=float(i)) for i in range(4)]
    for conn in conns:
        connections.admit(conn, "a")
    connections.limits = TcpLimits(max_connections=2, per_source=2)
    victims = connections.admit(Conn("new", last=9.0), "a")
    assert victims == [
        (conns[0], "source_limit"),
        (conns[1], "source_limit"),
        (conns[2], "source_limit"),
    ]
    assert len(connections) == 2


def test_forget_is_idempotent_and_frees_the_source() -> None:
    connections = book()
    conn = Conn("x")
    connections.admit(conn, "a")
    connections.forget(conn)
    connections.forget(conn)
    assert len(connections) == 0
    assert connections.sources() == {}
    assert list(connections) == []


def test_deadlines_a_message_from_its_first_byte_and_idleness_from_the_last_message() -> None:
    connections = book(idle_timeout=10.0, message_timeout=5.0)
    dribbling = Conn("dribbling", last=100.0, started=101.0)  # 1 byte at 101, more since
    idle = Conn("idle", last=100.0)
    fresh = Conn("fresh", last=108.0)
    quick = Conn("quick", last=108.0, started=108.0)
    for conn in (dribbling, idle, fresh, quick):
        connections.admit(conn, conn.name)
    assert connections.overdue(105.0) == []
    assert connections.overdue(106.5) == [(dribbling, "message_timeout")]
    assert connections.overdue(110.5) == [(dribbling, "message_timeout"), (idle, "idle_timeout")]
    assert set(CLOSE_REASONS) == {
        "source_limit",
        "connection_limit",
        "message_timeout",
        "idle_timeout",
    }


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("/run/dns.sock", "/run/dns.sock"),
    ],
)
def test_a_source_is_an_ipv4_address_or_an_ipv6_64(host: str, key: str) -> None:
    assert source_key(host) == key


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_connections": 0},
        {"per_source": 0},
        {"idle_timeout": 0.0},
        {"message_timeout": -1.0},
        {"write_buffer": 0},
    ],
)
def test_limits_that_cannot_hold_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="TCP"):
        TcpLimits(**kwargs)  # type: ignore[arg-type]


def test_the_sweep_runs_four_times_per_shortest_deadline_within_bounds() -> None:
    assert TcpLimits().sweep_interval == 0.25
    assert TcpLimits(idle_timeout=0.04, message_timeout=5.0).sweep_interval == 0.01


def test_resolver_flags_set_the_limits_and_refuse_impossible_ones() -> None:
    import argparse

    from resolver.main import add_arguments
    from resolver.settings import ResolverSettings
    from urn.errors import StartupError

    def settings(*argv: str) -> ResolverSettings:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return ResolverSettings.from_args(parser.parse_args(["--id", "r", "--config", "c", *argv]))

    assert settings().tcp_limits == TcpLimits()
    limits = settings("--tcp-connections", "200", "--tcp-per-source", "500").tcp_limits
    assert (limits.max_connections, limits.per_source) == (200, 200)  # a source gets all
    with pytest.raises(StartupError, match="--tcp-per-source"):
        settings("--tcp-per-source", "0")
