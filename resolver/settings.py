"""ResolverSettings: everything the resolver process is told outside the config document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from urn.role import address_flag, role_fields, validated

if TYPE_CHECKING:
    import argparse
    from typing import Self

__all__ = ["DEFAULT_DNS", "DEFAULT_DNS_PORT", "DEFAULT_LISTEN", "DEFAULT_PORT", "ResolverSettings"]

DEFAULT_PORT = 7201
DEFAULT_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
DEFAULT_DNS_PORT = 5353
DEFAULT_DNS = f"127.0.0.1:{DEFAULT_DNS_PORT}"
NO_DNS = ("none", "off", "")  # `--dns` values that mean no classic DNS listeners


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    id: str
    config: str  # file path or http(s) URL of the document
    listen_host: str = "127.0.0.1"  # HTTP: DoH, JSON, tables in, /healthz, /metrics
    listen_port: int = DEFAULT_PORT
    dns_host: str | None = "127.0.0.1"  # None: no classic DNS listeners
    dns_port: int = DEFAULT_DNS_PORT  # UDP and TCP share it; 0 picks a free one
    tcp_idle_timeout: float = 10.0  # RFC 7766: close idle DNS/TCP connections
    max_tcp_connections: int = 1024
    latency_sample: int = 16  # time one query in this many (a power of two)
    refresh_interval: float = 0.5  # re-judge table age and flush query tallies

    def __post_init__(self) -> None:
        if self.latency_sample < 1 or self.latency_sample & (self.latency_sample - 1):
            raise ValueError(f"latency_sample {self.latency_sample} must be a power of two")
        if len(self.id.encode()) > 32 or not self.id:
            raise ValueError(f"--id {self.id!r} must be 1-32 bytes")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Self:
        """Validated settings from `urn resolver` flags (`--dns none`: no DNS listeners);
        StartupError naming the bad flag."""
        shared = role_fields(args, DEFAULT_PORT)
        dns_host: str | None = None
        dns_port = DEFAULT_DNS_PORT
        if args.dns.strip().lower() not in NO_DNS:
            dns_host, dns_port = address_flag("--dns", args.dns, DEFAULT_DNS_PORT)
        return validated(lambda: cls(**shared, dns_host=dns_host, dns_port=dns_port))
