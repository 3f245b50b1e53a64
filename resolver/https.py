"""The resolver's HTTP port: DoH over HTTP/2 beside aiohttp's HTTP/1.1, one answer path.

`DohListener` is the resolver's `urn.role.Listener`: `resolver.listener.DualSite` hands
each connection to `resolver.h2server` (ALPN `h2`, or h2c by prior knowledge) or to the
aiohttp app. Over HTTP/2 the DNS routes (`resolver.doh.DNS_ROUTES`) are answered by the
same `HttpAnswers` the HTTP/1.1 handlers use; every other route (metrics, explain, /ui,
tables in) is reset with HTTP_1_1_REQUIRED, and clients ask again over HTTP/1.1.
`H2Collector` exports the HTTP/2 counters when scraped, so requests pay nothing for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from resolver.h2server import H2Protocol, H2Reply, H2Stats
from resolver.listener import ALPN, open_dual_site

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterator

    from aiohttp import web
    from prometheus_client.core import Metric

    from resolver.doh import HttpAnswers
    from resolver.h2server import H2Request
    from resolver.listener import DualSite

__all__ = ["DohListener", "H2Collector"]


class DohListener:
    """Opens the resolver's HTTP(S) port with HTTP/2 for `answers`, counted in `stats`."""

    alpn = tuple(ALPN)

    def __init__(self, answers: HttpAnswers, stats: H2Stats) -> None:
        self.answers = answers
        self.stats = stats
        self.site: DualSite | None = None  # once open

    async def open(
        self, runner: web.AppRunner, host: str, port: int, context: ssl.SSLContext | None
    ) -> int:
        self.site = await open_dual_site(runner, host, port, context, self._protocol)
        return self.site.port

    async def close(self) -> None:
        if self.site is not None:
            await self.site.close()

    def _protocol(self) -> H2Protocol:
        return H2Protocol(self.handle, stats=self.stats)

    def handle(self, request: H2Request) -> H2Reply | None:
        """One HTTP/2 request: a DNS route's reply, or None (HTTP_1_1_REQUIRED)."""
        headers = request.headers
        reply = self.answers.route(
            request.method,
            request.path.partition("?")[0],
            request.query,
            headers.get("content-type", ""),
            headers.get("accept", ""),
            request.body,
        )
        if reply is None:
            return None
        if reply.cache_control is None:
            return H2Reply(reply.status, (("content-type", reply.content_type),), reply.body)
        fields = (("content-type", reply.content_type), ("cache-control", reply.cache_control))
        return H2Reply(reply.status, fields, reply.body)


class H2Collector(Collector):
    """`urn_http2_*`: the HTTP/2 listener's counters, read from `H2Stats` when scraped."""

    def __init__(self, stats: H2Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield CounterMetricFamily(
            "urn_http2_connections", "HTTP/2 connections opened", value=stats.connections
        )
        yield CounterMetricFamily(
            "urn_http2_streams", "HTTP/2 requests accepted", value=stats.streams
        )
        answered = CounterMetricFamily(
            "urn_http2_errors",
            "HTTP/2 requests the shell answered itself, by status (413 too large, 408 not"
            " complete in time, 500 a handler failure)",
            labels=["status"],
        )
        for status, count in (
            ("413", stats.too_large),
            ("408", stats.timed_out),
            ("500", stats.handler_errors),
        ):
            answered.add_metric([status], count)
        yield answered
        resets = CounterMetricFamily(
            "urn_http2_resets", "HTTP/2 streams reset, by reason", labels=["reason"]
        )
        for reason, count in stats.resets.items():
            resets.add_metric([reason], count)
        yield resets
        goaways = CounterMetricFamily(
            "urn_http2_goaways",
            "HTTP/2 connections sent away (or by the peer), by reason",
            labels=["reason"],
        )
        for reason, count in stats.goaways.items():
            goaways.add_metric([reason], count)
        yield goaways
