"""ResolverSettings: everything the resolver process is told outside the config document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolver.tcplimits import TcpLimits
from urn.role import address_flag, role_fields, validated

if TYPE_CHECKING:
    import argparse
    from typing import Self

__all__ = [
    "DEFAULT_DNS",
    "DEFAULT_DNS_PORT",
    "DEFAULT_DOT_PORT",
    "DEFAULT_LISTEN",
    "DEFAULT_PORT",
    "ResolverSettings",
]

DEFAULT_PORT = 7201
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
DEFAULT_DNS_PORT = 5353
DEFAULT_DNS = f"127.0.0.1:{DEFAULT_DNS_PORT}"
DEFAULT_DOT_PORT = 853
NO_DNS = ("none", "off", "")  # `--dns` values that mean no classic DNS listeners


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    id: str
    config: str  # file path or http(s) URL of the document
    listen_host: str = "127.0.0.1"  # HTTP: DoH, JSON, tables in, /healthz, /metrics
    listen_port: int = DEFAULT_PORT
    dns_host: str | None = "127.0.0.1"  # None: no classic DNS listeners
    dns_port: int = DEFAULT_DNS_PORT  # UDP and TCP share it; 0 picks a free one
    dot_host: str | None = None  # DNS over TLS (RFC 7858); None: not served
    dot_port: int = DEFAULT_DOT_PORT  # 0 picks a free one
    tcp_idle_timeout: float = 10.0  # RFC 7766: close idle DNS/TCP connections
    max_tcp_connections: int = 1024  # all sources; past it the idlest is closed
    tcp_per_source: int = 64  # one IPv4 address or IPv6 /64; past it its idlest is closed
    tcp_message_timeout: float = 5.0  # first byte of a DNS/TCP message to its last
    latency_sample: int = 16  # time one query in this many (a power of two)
    refresh_interval: float = 0.5  # re-judge table age and flush query tallies

    def __post_init__(self) -> None:
        if self.latency_sample < 1 or self.latency_sample & (self.latency_sample - 1):
            raise ValueError(f"latency_sample {self.latency_sample} must be a power of two")
        if len(self.id.encode()) > 32 or not self.id:
            raise ValueError(f"--id {self.id!r} must be 1-32 bytes")
        for flag, value in (
            ("--tcp-connections", self.max_tcp_connections),
            ("--tcp-per-source", self.tcp_per_source),
        ):
            if value < 1:
                raise ValueError(f"{flag} {value} must be at least 1")
        self.tcp_limits  # noqa: B018 -- raises ValueError on limits that cannot hold

    @property
    def tcp_limits(self) -> TcpLimits:
        """The RFC 7766 bounds of the DNS/TCP listener (and, later, DNS over TLS)."""
        return TcpLimits(
            max_connections=self.max_tcp_connections,
            per_source=min(self.tcp_per_source, self.max_tcp_connections),
            idle_timeout=self.tcp_idle_timeout,
            message_timeout=self.tcp_message_timeout,
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        """Validated settings from `urn resolver` flags (`--dns none`: no DNS listeners;
        `--dot HOST:PORT`: DNS over TLS there);
        StartupError naming the bad flag."""
        shared = role_fields(args, DEFAULT_PORT)
        dns_host: str | None = None
        dns_port = DEFAULT_DNS_PORT
        if args.dns.strip().lower() not in NO_DNS:
            dns_host, dns_port = address_flag("--dns", args.dns, DEFAULT_DNS_PORT)
        dot_host: str | None = None
        dot_port = DEFAULT_DOT_PORT
        if getattr(args, "dot", None):
            dot_host, dot_port = address_flag("--dot", args.dot, DEFAULT_DOT_PORT)
        tcp = {
            field: getattr(args, field)
            for field in ("max_tcp_connections", "tcp_per_source")
            if getattr(args, field, None) is not None
        }
        return validated(
            lambda: cls(
                **shared,
                dns_host=dns_host,
                dns_port=dns_port,
                dot_host=dot_host,
                dot_port=dot_port,
                **tcp,
            )
        )
