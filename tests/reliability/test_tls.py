"""TLS on table listeners and pushes: HTTPS from cert/key paths, CA verification, mTLS.

Certificates are made per test session by trustme for 127.0.0.1 and localhost. Every push
goes through the kernel's own pieces (`client_ssl_context`, `AiohttpTransport`,
`push_all`) to a `TableReceiver` served by `server_ssl_context` over a real socket.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import aiohttp
import pytest

from sim.testing import document_dict
from urn.config import Tls, parse_document
from urn.http import client_ssl_context, server_ssl_context
from urn.push import AiohttpTransport, push_all

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Certs, ReceiverServer


async def _push(tls: Tls | None, url: str, body: bytes) -> tuple[str, str]:
    transport = AiohttpTransport(client_ssl_context(tls) if tls is not None else None)
    try:
        [outcome] = await push_all(transport, [url], body, timeout=5.0)
    finally:
        await transport.close()
    return outcome.result, outcome.detail


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_https_listener_accepts_a_push_verified_against_the_ca_bundle(
    certs: Certs, make_receiver: Callable[..., ReceiverServer], host: str
) -> None:
    server = make_receiver(tls=certs.server_tls())
    result, detail = await _push(
        Tls(ca=certs.ca), f"https://{host}:{server.port}", server.table(sequence=1)
    )
    assert (result, detail) == ("ok", "")
    assert [e.sequence for e in server.delivered] == [1]


async def test_observability_routes_are_served_over_https_too(
    certs: Certs, make_receiver: Callable[..., ReceiverServer]
) -> None:
    server = make_receiver(tls=certs.server_tls())
    context = ssl.create_default_context(cafile=certs.ca)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{server.port}/healthz", ssl=context) as r:
            assert r.status == 200
        async with session.get(f"https://127.0.0.1:{server.port}/metrics", ssl=context) as r:
            assert "urn_tables_rejected_total" in await r.text()


async def test_push_refuses_a_server_whose_certificate_the_bundle_does_not_vouch_for(
    certs: Certs, make_receiver: Callable[..., ReceiverServer]
) -> None:
    server = make_receiver(tls=certs.server_tls())
    result, detail = await _push(
        Tls(ca=certs.other_ca), f"https://127.0.0.1:{server.port}", server.table(sequence=1)
    )
    assert result == "error"
    assert "CERTIFICATE_VERIFY_FAILED" in detail
    assert server.delivered == []


async def test_plain_http_to_an_https_listener_delivers_nothing(
    certs: Certs, make_receiver: Callable[..., ReceiverServer]
) -> None:
    server = make_receiver(tls=certs.server_tls())
    result, _ = await _push(None, f"http://127.0.0.1:{server.port}", server.table(sequence=1))
    assert result in ("error", "rejected")
    assert server.delivered == []


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(lambda c: Tls(ca=c.ca), id="without-a-client-certificate"),
        pytest.param(
            lambda c: Tls(ca=c.ca, client_cert=c.rogue_client_cert, client_key=c.rogue_client_key),
            id="with-a-client-certificate-from-another-ca",
        ),
    ],
)
async def test_mtls_listener_rejects_a_push(
    certs: Certs,
    make_receiver: Callable[..., ReceiverServer],
    client: Callable[[Certs], Tls],
) -> None:
    server = make_receiver(tls=certs.server_tls(require_client_cert=True))
    result, _ = await _push(
        client(certs), f"https://127.0.0.1:{server.port}", server.table(sequence=1)
    )
    assert result == "error"
    assert server.delivered == []


async def test_mtls_listener_accepts_a_push_with_a_client_certificate(
    certs: Certs, make_receiver: Callable[..., ReceiverServer]
) -> None:
    server = make_receiver(tls=certs.server_tls(require_client_cert=True))
    tls = Tls(ca=certs.ca, client_cert=certs.client_cert, client_key=certs.client_key)
    result, detail = await _push(tls, f"https://127.0.0.1:{server.port}", server.table(1))
    assert (result, detail) == ("ok", "")
    assert [e.sequence for e in server.delivered] == [1]


def test_tls_section_of_the_config_builds_the_same_contexts(certs: Certs) -> None:
    """The document's `tls` block is what the contexts are built from, paths and all."""
    document = parse_document(document_dict(tls=certs.mtls_block()))
    server = server_ssl_context(document.tls)
    assert server is not None
    assert server.verify_mode is ssl.CERT_REQUIRED
    client = client_ssl_context(document.tls)
    assert client.verify_mode is ssl.CERT_REQUIRED
    assert client.check_hostname


def test_a_listener_without_cert_and_key_serves_plain_http() -> None:
    assert server_ssl_context(Tls()) is None
