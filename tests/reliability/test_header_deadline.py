"""Slow-loris on the request head: a connection that never finishes one is closed.

aiohttp bounds a head's size but not its arrival time; urn.http.HeaderDeadline adds the
deadline every listener runs with.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from sim.testing import wait_until
from urn.http import HeaderDeadline, start_runner


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _slow(_: web.Request) -> web.Response:
    await asyncio.sleep(1.0)  # twice the deadline
    return web.Response(text="slow but whole")


async def _serve(guard: HeaderDeadline) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/", _ok)
    app.router.add_get("/slow", _slow)
    runner = await start_runner(app, guard)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


async def test_a_half_sent_head_is_cut_off_and_an_honest_client_is_not() -> None:
    guard = HeaderDeadline(seconds=0.5, sweep_every=0.05)
    runner, port = await _serve(guard)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/table HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        await writer.drain()
        stalled_at = time.monotonic()
        async with aiohttp.ClientSession() as session:
            # A keep-alive client asking more often than the deadline keeps its connection.
            while time.monotonic() < stalled_at + 1.5:
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert await response.text() == "ok"
                await asyncio.sleep(0.1)
        assert await asyncio.wait_for(reader.read(), 5.0) == b""  # closed by the server
        writer.close()
        assert guard.closed == 1
        await wait_until(
            lambda: len(runner.server.connections) == 0,
            5,  # type: ignore[union-attr]
            message="no connection left",
        )
    finally:
        await runner.cleanup()


async def test_an_idle_keep_alive_connection_is_closed_and_the_client_reconnects() -> None:
    guard = HeaderDeadline(seconds=0.3, sweep_every=0.05)
    runner, port = await _serve(guard)
    try:
        async with aiohttp.ClientSession() as session:
            for closed in (1, 2):  # the second request comes on a new connection
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 200
                await wait_until(
                    lambda n=closed: guard.closed == n,
                    5,
                    message=f"idle connection {closed} closed",
                )
        assert guard.closed == 2
    finally:
        await runner.cleanup()


async def test_a_handler_slower_than_the_deadline_still_answers_whole() -> None:
    """The deadline is for the head: once it is in, the handler may take its time."""
    guard = HeaderDeadline(seconds=0.5, sweep_every=0.05)
    runner, port = await _serve(guard)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/slow") as response:
                assert await response.text() == "slow but whole"
            assert guard.closed == 0
            await wait_until(lambda: guard.closed == 1, 5, message="idle after it: closed")
    finally:
        await runner.cleanup()
