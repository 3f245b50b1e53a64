"""ResolverSettings: everything the resolver process is told outside the config document."""

from __future__ import annotations

from dataclasses import dataclass

from urn.http import parse_listen

__all__ = ["DEFAULT_DNS", "DEFAULT_LISTEN", "ResolverSettings"]

DEFAULT_LISTEN = "127.0.0.1:7201"
DEFAULT_DNS = "127.0.0.1:5353"


@dataclass(frozen=True, slots=True)
class ResolverSettings:
    id: str
    config: str  # file path or http(s) URL of the document
    http_host: str = "127.0.0.1"
    http_port: int = 7201
    dns_host: str | None = "127.0.0.1"  # None: no classic DNS listeners
    dns_port: int = 5353  # UDP and TCP share it; 0 picks a free one
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
    def from_flags(cls, *, id: str, config: str, listen: str, dns: str) -> ResolverSettings:
        """Settings from CLI flags; `dns` may be 'none' to run without DNS listeners."""
        http_host, http_port = parse_listen(listen, 7201)
        if dns.strip().lower() in ("none", "off", ""):
            return cls(
                id=id, config=config, http_host=http_host, http_port=http_port, dns_host=None
            )
        dns_host, dns_port = parse_listen(dns, 5353)
        return cls(
            id=id,
            config=config,
            http_host=http_host,
            http_port=http_port,
            dns_host=dns_host,
            dns_port=dns_port,
        )
