"""Loopback target fixtures for checker tests (all on 127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import pytest
import uvloop

from sim.testing.targets import RawServer, make_target_app
from urn.http import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import trustme


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Probers run on both loops; everything else on uvloop, as `urn checker` does."""
    if "test_probers" in item.nodeid:
        return {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    runner, port = await serve(make_target_app(), "127.0.0.1", 0)
    yield port
    await runner.cleanup()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def https_port(ca: trustme.CA) -> AsyncIterator[int]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    runner, port = await serve(make_target_app(), "127.0.0.1", 0, context)
    yield port
    await runner.cleanup()


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[str], Awaitable[int]]]:
    servers: list[RawServer] = []

    async def start(behaviour: str) -> int:
        server = RawServer(behaviour)
        servers.append(server)
        return await server.start()

    yield start
    for server in servers:
        await server.stop()
