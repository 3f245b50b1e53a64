"""HTTP/1.1 interfaces (aiohttp): DoH and its JSON forms, `/v1/explain`, observability.

The DNS routes (`/dns-query`, `/v1/resolve`, `/resolve`) are `resolver.doh`'s, which
the HTTP/2 shell serves too; these handlers only read the request (a POST body bounded
in size and time) and send the `Reply`. Bad input is a 4xx with a JSON `error` that says
what is wrong, and changes nothing. Other routes: GET /v1/explain?name=[&type=],
GET /v1/slots/N (the in-force aggregator's per-checker view of slot N),
GET /healthz, GET /readyz, GET /metrics, GET /ui and /v1/status (urn.statuspage). Tables
come in on POST /v1/table, as in every role (`urn.http.add_table_route`, wired in
`resolver.app`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from resolver.doh import DNS_MESSAGE, JSON, MAX_DNS_MESSAGE, HttpAnswers, Reply, bad, question
from urn.http import facts_handler
from urn.statuspage import add_status_routes

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from resolver.service import ResolverService
    from urn.role import Running

__all__ = ["DNS_MESSAGE", "add_routes"]

READ_TIMEOUT = 5.0  # a POST body must arrive whole within this


def _bad(message: str, status: int = 400) -> web.Response:
    return _response(bad(message, status))


def _response(reply: Reply) -> web.Response:
    headers = {} if reply.cache_control is None else {"cache-control": reply.cache_control}
    return web.Response(
        body=reply.body, status=reply.status, content_type=reply.content_type, headers=headers
    )


def add_routes(
    app: web.Application,
    running: Running[ResolverService],
    registry: CollectorRegistry,
    answers: HttpAnswers,
) -> None:
    """Register the resolver's query, explain and observability routes on `app`."""

    async def resolve(request: web.Request) -> web.Response:
        return _response(answers.json(request.query, JSON))

    async def slot(request: web.Request) -> web.Response:
        raw = request.match_info["slot"]
        try:
            number = int(raw)
        except ValueError:
            return _bad(f"slot {raw!r} is not an integer")
        service = running.service
        capacity = service.document.capacity
        if not 0 <= number < capacity:
            return _bad(f"slot {number} is outside 0..{capacity - 1}", status=404)
        views, unreachable = await service.slot_views([number])
        if number not in views:
            return web.json_response(
                {
                    "error": "no_aggregator",
                    "detail": "no aggregator answered",
                    "tried": unreachable,
                },
                status=503,
            )
        return web.json_response(views[number])

    async def explain(request: web.Request) -> web.Response:
        try:
            canonical, qtype = question(request.query)
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response(await running.service.explain_with_checkers(canonical, qtype))

    async def doh_get(request: web.Request) -> web.Response:
        return _response(answers.dns_query_get(request.query, request.headers.get("accept", "")))

    async def doh_post(request: web.Request) -> web.Response:
        if request.content_type != DNS_MESSAGE:
            return _bad(f"Content-Type must be {DNS_MESSAGE}", status=415)
        declared = request.content_length
        if declared is not None and declared > MAX_DNS_MESSAGE:
            return _bad(f"body is longer than {MAX_DNS_MESSAGE} bytes", status=413)
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                while chunk := await request.content.read(MAX_DNS_MESSAGE + 1):
                    size += len(chunk)
                    if size > MAX_DNS_MESSAGE:
                        return _bad(f"body is longer than {MAX_DNS_MESSAGE} bytes", status=413)
                    chunks.append(chunk)
        except TimeoutError:
            return _bad(f"body not complete within {READ_TIMEOUT:g}s", status=408)
        return _response(answers.wire_post(request.content_type, b"".join(chunks)))

    metrics_handler = make_aiohttp_handler(registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        running.service.flush_metrics()
        return await metrics_handler(request)

    app.router.add_get("/v1/resolve", resolve)
    app.router.add_get("/resolve", resolve)  # Google's path for the same JSON
    app.router.add_get("/v1/explain", explain)
    app.router.add_get("/v1/slots/{slot}", slot)
    app.router.add_get("/dns-query", doh_get)
    app.router.add_post("/dns-query", doh_post)
    app.router.add_get("/healthz", facts_handler(lambda: running.service.health()))
    app.router.add_get("/readyz", facts_handler(lambda: running.service.readiness()))
    app.router.add_get("/metrics", metrics)
    add_status_routes(app, lambda: running.service.status.cache)
