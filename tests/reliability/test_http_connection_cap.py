"""Every HTTP listener holds a bounded number of connections (urn.http.ConnectionCap):
past the cap the idlest connection makes room, and only when every one is mid-request is
the new one closed instead."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from sim.testing import wait_until
from urn.http import HTTP_CONNECTIONS, ConnectionCap, start_runner

CAP = 4


async def _serve(cap: ConnectionCap, release: asyncio.Event) -> tuple[web.AppRunner, int]:
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="slow")

    app = web.Application()
    app.router.add_get("/", ok)
    app.router.add_get("/slow", slow)
    runner = await start_runner(app, cap=cap)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def _closed(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(5):
        return await reader.read() == b""


async def test_past_the_cap_the_idlest_connection_makes_room() -> None:
    cap = ConnectionCap(CAP)
    runner, port = await _serve(cap, asyncio.Event())
    assert runner.server is not None
    try:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CAP)]
        await wait_until(lambda: len(runner.server.connections) == CAP)  # type: ignore[union-attr]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            assert await response.text() == "ok"
        assert await _closed(idle[0][0]), "the first idle connection made room"
        assert cap.evicted == 1
        assert cap.refused == 0
        assert len(runner.server.connections) <= CAP
        for _, writer in idle:
            writer.close()
    finally:
        await runner.cleanup()


async def test_when_every_connection_is_mid_request_the_new_one_is_closed() -> None:
    cap = ConnectionCap(CAP)
    release = asyncio.Event()
    runner, port = await _serve(cap, release)
    try:
        busy = []
        for _ in range(CAP):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            busy.append((reader, writer))
        await wait_until(lambda: len(cap._busy) == CAP and all(cap._busy.values()))
        reader, newcomer = await asyncio.open_connection("127.0.0.1", port)
        assert await _closed(reader)
        newcomer.close()
        assert cap.refused == 1
        assert cap.evicted == 0
        release.set()
        for reader, writer in busy:  # the requests in progress were left alone
            async with asyncio.timeout(5):
                assert (await reader.readline()).startswith(b"HTTP/1.1 200")
            writer.close()
    finally:
        await runner.cleanup()


def test_every_listener_gets_the_cap_by_default() -> None:
    assert ConnectionCap().limit == HTTP_CONNECTIONS == 1024
