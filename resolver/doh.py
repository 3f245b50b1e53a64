"""DNS over HTTP, whatever carries it: RFC 8484 wire messages and the JSON forms.

Owns: turning one HTTP request's method, query string, content type and body into one
`Reply` (status, content type, body, cache lifetime), the same for aiohttp's HTTP/1.1
handlers (`resolver.api`) and the HTTP/2 shell (`resolver.h2server`), so every
transport takes one decision path down to `answer.Responder`. Routes:
- `/dns-query`: GET `?dns=<base64url>` or POST `application/dns-message` (RFC 8484);
  GET `?name=&type=` (with or without `accept: application/dns-json`, as Cloudflare
  serves it) answers the JSON form;
- `/v1/resolve` and `/resolve` (Google's path): GET `?name=&type=`, the JSON form.
Status codes: 400 for bad base64, a bad name or type, or bytes that are not a query;
405 for another method; 413 for a body over 65,535 bytes; 415 for a POST that is not
`application/dns-message`. A wire answer's `cache-control: max-age` is its smallest
TTL (answer and authority sections, so a negative answer lives as long as its SOA
says); an error or an answer without records gets `max-age=0`.
Never: reads a socket or a clock; each reply costs what the Responder costs, plus one
walk over the response's records for its TTL.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from resolver.answer import qtype_of
from resolver.dnsmsg import smallest_ttl
from urn.names import canonical_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from resolver.answer import Responder
    from resolver.service import ResolverService

__all__ = [
    "DNS_JSON",
    "DNS_MESSAGE",
    "DNS_ROUTES",
    "JSON",
    "MAX_DNS_MESSAGE",
    "HttpAnswers",
    "Reply",
    "bad",
    "question",
]

DNS_MESSAGE = "application/dns-message"
DNS_JSON = "application/dns-json"  # what Cloudflare's JSON API is asked for and answers
JSON = "application/json"
MAX_DNS_MESSAGE = 65535
_MAX_DNS_PARAM = (MAX_DNS_MESSAGE * 4 + 2) // 3 + 4
DNS_ROUTES = ("/dns-query", "/v1/resolve", "/resolve")
_TYPE_A = qtype_of("A")  # what a JSON query asks for when it names no type
_NO_STORE = "max-age=0"


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer, as any transport sends it."""

    status: int
    content_type: str
    body: bytes
    cache_control: str | None = None


def bad(message: str, status: int = 400) -> Reply:
    """An error reply: JSON `{"error": message}`."""
    return Reply(status, JSON, json.dumps({"error": message}).encode(), _NO_STORE)


def question(query: Mapping[str, str]) -> tuple[str, int | None]:
    """The canonical name a query string asks about, and its type (None: it names none).

    ValueError saying what is wrong: no name, a bad name, or a bad type.
    """
    name = query.get("name")
    if name is None:
        raise ValueError("missing query parameter 'name'")
    qtype = query.get("type")
    return canonical_name(name), None if qtype is None else qtype_of(qtype)


def _base64url(value: str) -> bytes:
    """RFC 8484's base64url without padding; ValueError when it is not."""
    if len(value) > _MAX_DNS_PARAM:
        raise ValueError(f"parameter 'dns' is longer than a {MAX_DNS_MESSAGE}-byte message")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("parameter 'dns' is not base64url") from None


class HttpAnswers:
    """The DoH and JSON answers of the service in `service()` (read per request, so a
    reload's Responder answers the next one)."""

    def __init__(self, service: Callable[[], ResolverService]) -> None:
        self._service = service
        self._count = 0  # requests so far: one in `latency_sample` is timed

    def route(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        content_type: str,
        accept: str,
        body: bytes,
    ) -> Reply | None:
        """The reply to a request on one of `DNS_ROUTES`; None for any other path."""
        if path == "/dns-query":
            if method == "POST":
                return self.wire_post(content_type, body)
            if method not in ("GET", "HEAD"):
                return bad(f"method {method} is not allowed: GET or POST", status=405)
            return self.dns_query_get(query, accept)
        if path in ("/v1/resolve", "/resolve"):
            if method not in ("GET", "HEAD"):
                return bad(f"method {method} is not allowed: GET", status=405)
            return self.json(query, JSON)
        return None

    def dns_query_get(self, query: Mapping[str, str], accept: str) -> Reply:
        """GET /dns-query: the wire form for `?dns=`, else the JSON form for `?name=`."""
        value = query.get("dns")
        if value is None and ("name" in query or DNS_JSON in accept):
            return self.json(query, DNS_JSON)
        if not value:
            return bad("missing query parameter 'dns' (base64url DNS message) or 'name'")
        try:
            message = _base64url(value)
        except ValueError as exc:
            return bad(str(exc))
        return self.wire(message)

    def wire_post(self, content_type: str, body: bytes) -> Reply:
        """POST /dns-query, the whole body already read (and bounded by the transport)."""
        if content_type.partition(";")[0].strip().lower() != DNS_MESSAGE:
            return bad(f"Content-Type must be {DNS_MESSAGE}", status=415)
        if len(body) > MAX_DNS_MESSAGE:
            return bad(f"body is longer than {MAX_DNS_MESSAGE} bytes", status=413)
        return self.wire(body)

    def wire(self, message: bytes) -> Reply:
        """The RFC 8484 reply to one wire-format message."""
        service = self._service()
        self._count += 1
        if self._count & (service.settings.latency_sample - 1):
            response = _answer(service.responder, message, service.tallies["doh"])
        else:
            start = perf_counter()
            response = _answer(service.responder, message, service.tallies["doh"])
            service.metrics.query_duration.labels("doh").observe(perf_counter() - start)
        if response is None:
            return bad("not a DNS query: shorter than a header, or a response")
        ttl = smallest_ttl(response)
        cache = _NO_STORE if ttl is None else f"max-age={ttl}"
        return Reply(200, DNS_MESSAGE, response, cache)

    def json(self, query: Mapping[str, str], content_type: str) -> Reply:
        """The DoH-JSON reply for `?name=&type=`, as `/v1/resolve` answers it."""
        try:
            canonical, qtype = question(query)
        except ValueError as exc:
            return bad(str(exc))
        if qtype is None:
            qtype = _TYPE_A
        service = self._service()
        self._count += 1
        tally = service.tallies["json"]
        if self._count & (service.settings.latency_sample - 1):
            text = service.responder.json(canonical, qtype, tally)
        else:
            start = perf_counter()
            text = service.responder.json(canonical, qtype, tally)
            service.metrics.query_duration.labels("json").observe(perf_counter() - start)
        return Reply(200, content_type, text.encode())


def _answer(
    responder: Responder, message: bytes, tally: dict[tuple[int, int], int]
) -> bytes | None:
    try:
        return responder.dns(message, False, tally)
    except Exception:
        responder.malformed["internal_error"] = responder.malformed.get("internal_error", 0) + 1
        return responder.servfail(message, tally)
