"""HTTP interfaces: DoH-JSON `/v1/resolve`, RFC 8484 `/dns-query`, `/v1/explain`.

Handlers validate input (a bad name, type or message is a 400 with a JSON `error` that
says what is wrong, and changes nothing) and hand the rest to `answer.Responder`.
Routes: GET /v1/resolve?name=&type=, GET /v1/explain?name=[&type=], GET /v1/slots/N
(the in-force aggregator's per-checker view of slot N),
GET /dns-query?dns=<base64url>, POST /dns-query (application/dns-message),
GET /healthz, GET /readyz, GET /metrics, GET /ui and /v1/status (urn.statuspage). Tables
come in on POST /v1/table, as in every role (`urn.http.add_table_route`, wired in
`resolver.app`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from time import perf_counter
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from resolver.answer import qtype_of
from urn.http import facts_handler
from urn.names import canonical_name
from urn.statuspage import add_status_routes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from prometheus_client import CollectorRegistry

    from resolver.answer import Responder
    from resolver.service import ResolverService
    from urn.role import Running

__all__ = ["DNS_MESSAGE", "add_routes"]

DNS_MESSAGE = "application/dns-message"
MAX_DNS_MESSAGE = 65535
_MAX_DNS_PARAM = (MAX_DNS_MESSAGE * 4 + 2) // 3 + 4
READ_TIMEOUT = 5.0
_TYPE_A = qtype_of("A")  # what /v1/resolve asks for when the query names no type


def _question(query: Mapping[str, str]) -> tuple[str, int | None]:
    """The canonical name a query string asks about, and its type (None: it names none).

    ValueError saying what is wrong: no name, a bad name, or a bad type.
    """
    name = query.get("name")
    if name is None:
        raise ValueError("missing query parameter 'name'")
    qtype = query.get("type")
    return canonical_name(name), None if qtype is None else qtype_of(qtype)


def _bad(message: str, status: int = 400) -> web.Response:
    return web.Response(
        text=json.dumps({"error": message}), status=status, content_type="application/json"
    )


def add_routes(
    app: web.Application, running: Running[ResolverService], registry: CollectorRegistry
) -> None:
    """Register the resolver's query, explain and observability routes on `app`."""
    counter = [0]

    def responder() -> Responder:
        return running.service.responder

    def json_tally() -> dict[tuple[int, int], int]:
        return running.service.tallies["json"]

    def doh_tally() -> dict[tuple[int, int], int]:
        return running.service.tallies["doh"]

    def timed(transport: str) -> tuple[int, Callable[[float], None]]:
        service = running.service
        mask = service.settings.latency_sample - 1
        return mask, service.metrics.query_duration.labels(transport).observe

    async def resolve(request: web.Request) -> web.Response:
        try:
            canonical, qtype = _question(request.query)
        except ValueError as exc:
            return _bad(str(exc))
        if qtype is None:
            qtype = _TYPE_A
        counter[0] += 1
        mask, observe = timed("json")
        if counter[0] & mask:
            body = responder().json(canonical, qtype, json_tally())
        else:
            start = perf_counter()
            body = responder().json(canonical, qtype, json_tally())
            observe(perf_counter() - start)
        return web.Response(text=body, content_type="application/json")

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
            canonical, qtype = _question(request.query)
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response(await running.service.explain_with_checkers(canonical, qtype))

    def doh_answer(message: bytes) -> web.Response:
        counter[0] += 1
        mask, observe = timed("doh")
        if counter[0] & mask:
            response = _doh(message)
        else:
            start = perf_counter()
            response = _doh(message)
            observe(perf_counter() - start)
        if response is None:
            return _bad("not a DNS query: shorter than a header, or a response")
        return web.Response(body=response, content_type=DNS_MESSAGE)

    def _doh(message: bytes) -> bytes | None:
        answerer = responder()
        tally = doh_tally()
        try:
            result: bytes | None = answerer.dns(message, False, tally)
        except Exception:
            result = answerer.servfail(message, tally)
        return result

    async def doh_get(request: web.Request) -> web.Response:
        value = request.query.get("dns")
        if not value:
            return _bad("missing query parameter 'dns' (base64url DNS message)")
        if len(value) > _MAX_DNS_PARAM:
            return _bad(f"parameter 'dns' is longer than a {MAX_DNS_MESSAGE}-byte message")
        try:
            message = base64.b64decode(
                value + "=" * (-len(value) % 4), altchars=b"-_", validate=True
            )
        except (binascii.Error, ValueError):
            return _bad("parameter 'dns' is not base64url")
        return doh_answer(message)

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
        return doh_answer(b"".join(chunks))

    metrics_handler = make_aiohttp_handler(registry)

    async def metrics(request: web.Request) -> web.StreamResponse:
        running.service.flush_metrics()
        return await metrics_handler(request)

    app.router.add_get("/v1/resolve", resolve)
    app.router.add_get("/v1/explain", explain)
    app.router.add_get("/v1/slots/{slot}", slot)
    app.router.add_get("/dns-query", doh_get)
    app.router.add_post("/dns-query", doh_post)
    app.router.add_get("/healthz", facts_handler(lambda: running.service.health()))
    app.router.add_get("/readyz", facts_handler(lambda: running.service.readiness()))
    app.router.add_get("/metrics", metrics)
    add_status_routes(app, lambda: running.service.status.cache)
