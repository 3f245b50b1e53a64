"""HTTP/2 beside HTTP/1.1 on one port (resolver.h2server, resolver.listener), over loopback.

A toy handler answers over HTTP/2 (it echoes method, path and body length; /other it
leaves to HTTP/1.1); an aiohttp app answers HTTP/1.1. Clients: curl (h2 over TLS, h2c by
prior knowledge, HTTP/1.1, and its retry over 1.1 on HTTP_1_1_REQUIRED), dnspython's
DoH client, and a raw client built on h2 (or on bare frames where h2's client would stop
reading at GOAWAY) to drive the edges: refused streams, flow control, 413, 408, idle and
shutdown GOAWAY, protocol errors, backpressure. Every test runs on asyncio's loop and on
uvloop, whose SSL transports must accept `set_protocol` mid-`connection_made` too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import dns.message
import dns.query
import dns.rrset
import pytest
import uvloop
from aiohttp import web
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import StreamClosedError
from h2.frame_buffer import FrameBuffer
from h2.settings import SettingCodes
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from resolver.h2server import RESET_REASONS, H2Limits, H2Protocol, H2Reply, H2Request, H2Stats
from resolver.listener import DualSite, open_dual_site
from sim.testing import wait_until
from urn.http import ConnectionCap, HeaderDeadline, start_runner

if TYPE_CHECKING:
    import io
    from collections.abc import AsyncIterator, Callable, Coroutine

    import trustme

T = TypeVar("T")

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
BIG = bytes(range(256)) * 800  # 204,800 bytes: many frames, many windows
DEADLINE = 10.0  # seconds any awaited condition gets before the test fails
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


def toy(request: H2Request) -> H2Reply | None:
    """The HTTP/2 side: /other is HTTP/1.1's, /big is BIG, /boom fails, else an echo."""
    if request.path.startswith("/other"):
        return None
    if request.path == "/big":
        return H2Reply(200, (("content-type", "application/octet-stream"),), BIG)
    if request.path == "/boom":
        raise RuntimeError("a bug in the handler")
    if request.path.startswith("/dns-query"):
        return _dns(request)
    echo = {
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "length": len(request.body),
        "agent": request.headers.get("user-agent", ""),
    }
    return H2Reply(200, (("content-type", "application/json"),), json.dumps(echo).encode())


def _dns(request: H2Request) -> H2Reply:
    """A fixed answer (192.0.2.7) to whatever DNS query came, by POST or GET."""
    if request.method == "POST":
        wire = request.body
    else:
        value = request.query["dns"]
        wire = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    name = query.question[0].name
    response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.7"))
    return H2Reply(200, (("content-type", "application/dns-message"),), response.to_wire())


def make_app() -> web.Application:
    """The HTTP/1.1 side: every path answers `aiohttp <method> <path>`."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(text=f"aiohttp {request.method} {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


@dataclass
class Served:
    site: DualSite
    stats: H2Stats
    runner: web.AppRunner
    protocols: list[H2Protocol] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.site.port


@contextlib.asynccontextmanager
async def serving(
    context: ssl.SSLContext | None,
    limits: H2Limits | None = None,
    *,
    guard: HeaderDeadline | None = None,
    cap: ConnectionCap | None = None,
    max_h2_connections: int = 1024,
    preface_timeout: float = 10.0,
) -> AsyncIterator[Served]:
    runner = await start_runner(make_app(), guard, cap)
    stats = H2Stats()
    made: list[H2Protocol] = []

    def h2() -> H2Protocol:
        protocol = H2Protocol(toy, limits, stats)
        made.append(protocol)
        return protocol

    try:
        site = await open_dual_site(
            runner,
            "127.0.0.1",
            0,
            context,
            h2,
            max_h2_connections=max_h2_connections,
            preface_timeout=preface_timeout,
        )
        served = Served(site, stats, runner, made)
        yield served
        await site.close()
    finally:
        await runner.cleanup()


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, T]], T]:
    """Run a test's coroutine to completion on the loop this parameter names."""
    factory = LOOPS[request.param]

    def go(coroutine: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(asyncio.wait_for(coroutine, 60))

    return go


@pytest.fixture(scope="session")
def ca_path(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("h2ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.set_alpn_protocols(["h2"])
    return context


async def curl(*args: str) -> tuple[str, str]:
    """curl's body and its `%{http_version}`, split on a marker."""
    assert CURL is not None
    process = await asyncio.create_subprocess_exec(
        CURL,
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n@@%{http_version}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    body, _, version = out.decode().rpartition("\n@@")
    return body, version


@dataclass
class Response:
    status: int | None = None
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False
    reset: int | None = None
    frames: int = 0


class Client:
    """A raw HTTP/2 client: h2's client side over one asyncio stream."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, ack: bool = True
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.responses: dict[int, Response] = {}
        self.terminated: ConnectionTerminated | None = None
        self.eof = False
        self.ack = ack  # hand received data back (WINDOW_UPDATE) as it arrives

    @classmethod
    async def open(
        cls,
        port: int,
        context: ssl.SSLContext | None = None,
        *,
        window: int | None = None,
        ack: bool = True,
        start: bool = True,
    ) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        client = cls(reader, writer, ack=ack)
        if start:
            client.conn.initiate_connection()
            if window is not None:
                client.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: window})
            client.flush()
        return client

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    def request(
        self, path: str, *, method: str = "GET", body: bytes | None = None, end: bool = True
    ) -> int:
        """Open a stream: its headers, and as much of `body` as the windows take now (the
        rest with `send_body`)."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":path", path), (":scheme", "https")]
        headers.append((":authority", "127.0.0.1"))
        if body is not None:
            headers.append(("content-type", "application/octet-stream"))
        self.conn.send_headers(sid, headers, end_stream=end and body is None)
        self.responses[sid] = Response()
        if body is not None:
            left = self._send_some(sid, body, end=end)
            assert not left, "use send_body for a body past the window"
        self.flush()
        return sid

    def _send_some(self, sid: int, body: bytes, *, end: bool) -> bytes:
        """Send what the windows allow of `body`; what is left."""
        conn = self.conn
        if not body:
            if end:
                conn.end_stream(sid)
            return b""
        while body:
            room = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if room <= 0:
                return body
            piece, body = body[:room], body[room:]
            conn.send_data(sid, piece, end_stream=end and not body)
        return body

    async def send_body(self, sid: int, body: bytes, *, end: bool = True) -> None:
        """All of `body`, waiting for window as needed (reading what comes meanwhile);
        stops early if the server resets the stream (it has answered)."""
        while True:
            try:
                body = self._send_some(sid, body, end=end)
            except StreamClosedError:
                return
            self.flush()
            if not body:
                return
            room = lambda: self.conn.local_flow_control_window(sid) > 0  # noqa: E731
            await self.until(room, "window to send in")

    def feed(self, data: bytes) -> None:
        if self.terminated is not None:
            return  # h2's client takes nothing after GOAWAY
        for event in self.conn.receive_data(data):
            if isinstance(event, ResponseReceived):
                status = next(v for n, v in event.headers if n in (":status", b":status"))
                self.responses[event.stream_id].status = int(status)
            elif isinstance(event, DataReceived):
                response = self.responses[event.stream_id]
                response.body += event.data
                response.frames += 1
                if self.ack:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif isinstance(event, StreamEnded):
                self.responses[event.stream_id].ended = True
            elif isinstance(event, StreamReset):
                self.responses[event.stream_id].reset = event.error_code
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
        self.flush()

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Read and feed until `done()`; fail past DEADLINE or at EOF before it."""
        async with asyncio.timeout(DEADLINE):
            while not done():
                data = await self.reader.read(65536)
                if not data:
                    self.eof = True
                    assert done(), f"connection closed before {what}"
                    return
                self.feed(data)

    async def closes(self) -> None:
        """Read until the server closes the connection."""
        await self.until(lambda: self.eof, "EOF")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def read_frames(reader: asyncio.StreamReader, buffer: FrameBuffer) -> list[Any]:
    """The next frames the server sends ([] at EOF), parsed without h2's state machine."""
    async with asyncio.timeout(DEADLINE):
        while True:
            data = await reader.read(65536)
            if not data:
                return []
            buffer.add_data(data)
            frames = list(buffer)
            if frames:
                return frames


# curl


@needs_curl
def test_curl_gets_h2_over_tls_and_http1_from_aiohttp(
    run: Callable[[Coroutine[Any, Any, None]], None], server_tls: ssl.SSLContext, ca_path: str
) -> None:
    async def main() -> None:
        async with serving(server_tls) as served:
            url = f"https://127.0.0.1:{served.port}"
            body, version = await curl("--http2", "--cacert", ca_path, f"{url}/echo?a=1&a=2")
            assert version == "2"
            echo = json.loads(body)
            assert echo["method"] == "GET"
            assert echo["path"] == "/echo?a=1&a=2"
            assert echo["query"] == {"a": "1"}  # the first of a repeated name
            assert echo["agent"].startswith("curl/")
            body, version = await curl(
                "--http2", "--cacert", ca_path, "--data-binary", "x" * 3000, f"{url}/post"
            )
            assert (version, json.loads(body)["length"]) == ("2", 3000)
            body, version = await curl("--http1.1", "--cacert", ca_path, f"{url}/echo")
            assert (body, version) == ("aiohttp GET /echo", "1.1")
            assert served.stats.streams == 2

    run(main())


@needs_curl
def test_curl_h2c_by_prior_knowledge_and_http1_share_a_cleartext_port(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            url = f"http://127.0.0.1:{served.port}"
            body, version = await curl("--http2-prior-knowledge", f"{url}/echo")
            assert version == "2"
            assert json.loads(body)["path"] == "/echo"
            body, version = await curl("--http1.1", "--data-binary", "PRI", f"{url}/x")
            assert (body, version) == ("aiohttp POST /x", "1.1")
            assert served.stats.streams == 1

    run(main())


@needs_curl
def test_curl_asks_again_over_http1_for_a_route_h2_does_not_serve(
    run: Callable[[Coroutine[Any, Any, None]], None], server_tls: ssl.SSLContext, ca_path: str
) -> None:
    async def main() -> None:
        async with serving(server_tls) as served:
            url = f"https://127.0.0.1:{served.port}/other"
            body, version = await curl("--http2", "--cacert", ca_path, url)
            assert (body, version) == ("aiohttp GET /other", "1.1")
            assert served.stats.resets["http_1_1_required"] == 1

    run(main())


def test_a_route_h2_does_not_serve_is_reset_with_http_1_1_required(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            client = await Client.open(served.port)
            sid = client.request("/other")
            await client.until(lambda: client.responses[sid].reset is not None, "a reset")
            assert client.responses[sid].reset == ErrorCodes.HTTP_1_1_REQUIRED
            assert client.responses[sid].status is None
            again = client.request("/echo")  # the connection goes on
            await client.until(lambda: client.responses[again].ended, "the echo")
            assert client.responses[again].status == 200
            await client.close()

    run(main())


@pytest.mark.parametrize(
    "headers",
    [
        [(":method", "GET"), (":scheme", "https"), (":authority", "x")],  # no :path
        [(":method", "GET"), (":path", "/echo"), (":authority", "x")],  # no :scheme
        [(":path", "/echo"), (":scheme", "https"), (":authority", "x")],  # no :method
        [(":method", "GET"), (":path", "/echo"), (":scheme", "https"), ("Accept", "*/*")],
        [(":method", "GET"), (":path", "/echo"), (":scheme", "https"), ("connection", "close")],
        [(":method", "GET"), ("accept", "*/*"), (":path", "/echo"), (":scheme", "https")],
    ],
    ids=["no-path", "no-scheme", "no-method", "upper-case", "connection", "pseudo-after"],
)
def test_a_malformed_request_is_reset_and_the_connection_goes_on(
    run: Callable[[Coroutine[Any, Any, None]], None], headers: list[tuple[str, str]]
) -> None:
    """RFC 9113 section 8.1.1: a malformed request is a stream error (PROTOCOL_ERROR),
    never an answer; the connection and its other streams carry on."""

    async def main() -> None:
        async with serving(None) as served:
            client = await Client.open(served.port)
            # h2's client would refuse to send these, so its checks are off for this one
            client.conn.config.validate_outbound_headers = False
            client.conn.config.normalize_outbound_headers = False
            sid = client.conn.get_next_available_stream_id()
            client.conn.send_headers(sid, headers, end_stream=True)
            client.responses[sid] = Response()
            client.flush()
            await client.until(lambda: client.responses[sid].reset is not None, "a reset")
            assert client.responses[sid].reset == ErrorCodes.PROTOCOL_ERROR
            assert client.responses[sid].status is None
            again = client.request("/echo")
            await client.until(lambda: client.responses[again].ended, "the echo")
            assert client.responses[again].status == 200
            assert served.stats.resets["malformed"] == 1
            await client.close()

    run(main())


# dnspython


def test_dnspython_doh_over_h2_post_and_get(
    run: Callable[[Coroutine[Any, Any, None]], None], server_tls: ssl.SSLContext, ca_path: str
) -> None:
    async def main() -> None:
        async with serving(server_tls) as served:
            url = f"https://127.0.0.1:{served.port}/dns-query"
            for post in (True, False):
                query = dns.message.make_query("www.example.com.", "A")
                answer = await asyncio.to_thread(
                    dns.query.https,
                    query,
                    url,
                    timeout=DEADLINE,
                    post=post,
                    http_version=dns.query.HTTPVersion.H2,
                    verify=ssl.create_default_context(cafile=ca_path),
                )
                assert answer.id == query.id
                assert [str(r) for r in answer.answer[0]] == ["192.0.2.7"]
            assert served.stats.streams == 2  # both came over HTTP/2

    run(main())


# streams and flow control


def test_streams_past_the_advertised_limit_are_refused_one_by_one(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, H2Limits(max_concurrent_streams=4)) as served:
            client = await Client.open(served.port)
            # All sent before the server's SETTINGS are read: the client does not yet
            # know the limit, as at the start of any connection.
            sids = [client.request("/echo", method="POST", body=b"", end=False) for _ in range(7)]
            await client.until(
                lambda: sum(client.responses[s].reset is not None for s in sids) == 3,
                "three refusals",
            )
            assert [client.responses[s].reset for s in sids[4:]] == [ErrorCodes.REFUSED_STREAM] * 3
            assert client.conn.remote_settings.max_concurrent_streams == 4
            for sid in sids[:4]:
                await client.send_body(sid, b"abc")
            await client.until(lambda: all(client.responses[s].ended for s in sids[:4]), "4")
            assert [client.responses[s].status for s in sids[:4]] == [200] * 4
            assert served.stats.resets["refused"] == 3
            assert served.stats.streams == 4
            assert client.terminated is None
            await client.close()

    run(main())


def test_a_200_kb_reply_arrives_whole_through_a_small_window(
    run: Callable[[Coroutine[Any, Any, None]], None],
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    async def main() -> None:
        async with serving(server_tls) as served:
            client = await Client.open(served.port, client_tls, window=1000)
            await client.until(
                lambda: client.conn.local_settings.initial_window_size == 1000, "settings ack"
            )
            sids = [client.request("/big") for _ in range(3)]
            await client.until(lambda: all(client.responses[s].ended for s in sids), "bodies")
            for sid in sids:
                response = client.responses[sid]
                assert response.status == 200
                assert bytes(response.body) == BIG
                assert response.frames >= len(BIG) // 1000  # no frame past the window
            await client.close()

    run(main())


@pytest.mark.parametrize("short", ["stream", "connection"])
def test_a_reply_waits_for_window_and_goes_on_when_it_comes(
    run: Callable[[Coroutine[Any, Any, None]], None], short: str
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            wide = 1 << 20
            if short == "stream":  # the default stream window in a wide connection window
                client = await Client.open(served.port, ack=False)
                client.conn.increment_flow_control_window(wide)
                client.flush()
            else:  # wide stream windows in the default connection window
                client = await Client.open(served.port, ack=False, window=wide)
                await client.until(
                    lambda: client.conn.local_settings.initial_window_size == wide, "an ack"
                )
            sid = client.request("/big")
            await client.until(lambda: len(client.responses[sid].body) == 65535, "a window")
            with pytest.raises(TimeoutError):  # nothing past the window, however long
                async with asyncio.timeout(0.3):
                    await client.until(lambda: len(client.responses[sid].body) > 65535, "more")
            # More window on the short side only: the reply must go on from there alone.
            client.conn.increment_flow_control_window(
                len(BIG), stream_id=sid if short == "stream" else None
            )
            client.flush()
            await client.until(lambda: client.responses[sid].ended, "the rest")
            assert bytes(client.responses[sid].body) == BIG
            await client.close()

    run(main())


def test_a_reset_stream_drops_its_unsent_reply(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            client = await Client.open(served.port, ack=False)
            sid = client.request("/big")
            await client.until(lambda: len(client.responses[sid].body) == 65535, "a window")
            (protocol,) = served.protocols
            assert protocol.open_streams == 1
            client.conn.reset_stream(sid, ErrorCodes.CANCEL)
            client.conn.increment_flow_control_window(1 << 20)
            client.flush()
            again = client.request("/echo")
            await client.until(lambda: client.responses[again].ended, "the next reply")
            assert protocol.open_streams == 0
            assert served.stats.resets["by_peer"] == 1
            assert len(client.responses[sid].body) == 65535
            await client.close()

    run(main())


# bodies and deadlines


def test_a_body_past_the_limit_is_413_at_once_and_the_connection_goes_on(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, H2Limits(max_body=1000, request_timeout=0.5)) as served:
            client = await Client.open(served.port)
            sid = client.request("/echo", method="POST", body=b"", end=False)
            await client.send_body(sid, b"x" * 1001, end=False)
            await client.until(lambda: client.responses[sid].ended, "the 413")
            assert client.responses[sid].status == 413
            # the rest of a body that never ends is asked to stop at its deadline
            await client.until(lambda: client.responses[sid].reset is not None, "a reset")
            assert client.responses[sid].reset == ErrorCodes.NO_ERROR  # stop sending, no error
            # Flow control was handed back: 100 KB more in bodies still flows.
            for _ in range(2):
                big = client.request("/echo", method="POST", body=b"", end=False)
                await client.send_body(big, b"y" * 50_000)
                await client.until(lambda: client.responses[big].ended, "another 413")  # noqa: B023
                assert client.responses[big].status == 413
            fits = client.request("/echo", method="POST", body=b"z" * 1000)
            await client.until(lambda: client.responses[fits].ended, "the echo")
            assert json.loads(client.responses[fits].body)["length"] == 1000
            assert served.stats.too_large == 3
            # The two bodies that ended after their 413 were read to their end and never
            # reset: curl reports a reset after the reply as a failed transfer.
            assert served.stats.resets["answered_early"] == 1
            assert client.responses[big].reset is None
            await client.close()

    run(main())


def test_a_declared_length_past_the_limit_is_413_before_any_body(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, H2Limits(max_body=1000)) as served:
            client = await Client.open(served.port)
            sid = client.conn.get_next_available_stream_id()
            client.responses[sid] = Response()
            headers = [(":method", "POST"), (":path", "/x"), (":scheme", "http")]
            headers += [(":authority", "a"), ("content-length", "5000")]
            client.conn.send_headers(sid, headers)
            client.flush()
            await client.until(lambda: client.responses[sid].ended, "the 413")
            assert client.responses[sid].status == 413
            assert served.stats.too_large == 1
            await client.close()

    run(main())


def test_a_request_not_complete_in_time_is_408(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, H2Limits(request_timeout=0.3)) as served:
            client = await Client.open(served.port)
            sid = client.request("/echo", method="POST", body=b"part", end=False)
            await client.until(lambda: client.responses[sid].ended, "the 408")
            assert client.responses[sid].status == 408
            assert served.stats.timed_out == 1
            await client.close()

    run(main())


def test_a_handler_failure_is_500_and_one_log_line(
    run: Callable[[Coroutine[Any, Any, None]], None], log_stream: io.StringIO
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            client = await Client.open(served.port)
            sid = client.request("/boom")
            await client.until(lambda: client.responses[sid].ended, "the 500")
            assert client.responses[sid].status == 500
            assert served.stats.handler_errors == 1
            await client.close()

    run(main())
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    errors = [line for line in lines if line["event"] == "h2_handler_error"]
    assert len(errors) == 1
    assert errors[0]["error"] == "RuntimeError: a bug in the handler"


# GOAWAY


def test_a_garbage_preface_or_a_bad_frame_gets_goaway_protocol_error(
    run: Callable[[Coroutine[Any, Any, None]], None],
    server_tls: ssl.SSLContext,
    client_tls: ssl.SSLContext,
) -> None:
    async def main() -> None:
        async with serving(None) as plain, serving(server_tls) as tls:
            for served, context in ((tls, client_tls), (plain, None)):
                client = await Client.open(served.port, context, start=False)
                if context is not None:
                    assert client.writer.get_extra_info("ssl_object").selected_alpn_protocol()
                    client.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nand more garbage")
                else:  # cleartext: a right preface, then a DATA frame on stream 0
                    client.writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                    client.writer.write(SettingsFrame(0).serialize())
                    client.writer.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
                client.conn.initiate_connection()  # our side's state; its bytes stay here
                client.conn.data_to_send()
                await client.until(lambda: client.terminated is not None, "GOAWAY")  # noqa: B023
                assert client.terminated is not None
                assert client.terminated.error_code == ErrorCodes.PROTOCOL_ERROR
                await client.closes()
                assert served.stats.goaways["protocol_error"] == 1
                await client.close()

    run(main())


def test_an_idle_connection_gets_goaway_and_is_closed(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, H2Limits(idle_timeout=0.3)) as served:
            client = await Client.open(served.port)
            sid = client.request("/echo")
            await client.until(lambda: client.terminated is not None, "GOAWAY")
            assert client.responses[sid].status == 200
            assert client.terminated is not None
            assert client.terminated.error_code == ErrorCodes.NO_ERROR
            assert client.terminated.last_stream_id == sid
            await client.closes()
            assert served.stats.goaways["idle"] == 1
            await client.close()

    run(main())


def test_close_sends_goaway_and_lets_an_inflight_reply_finish(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            encoder = H2Connection(H2Configuration(client_side=True))
            encoder.initiate_connection()
            headers = [(":method", "GET"), (":path", "/big"), (":scheme", "http")]
            encoder.send_headers(1, [*headers, (":authority", "a")], end_stream=True)
            writer.write(encoder.data_to_send())
            writer.write(SettingsFrame(0, flags=["ACK"]).serialize())
            frames = FrameBuffer(server=False)
            frames.max_frame_size = 16384
            body = 0
            while body < 65535:  # the first window's worth, and no more
                for frame in await read_frames(reader, frames):
                    if isinstance(frame, DataFrame):
                        body += len(frame.data)
            closing = asyncio.create_task(served.site.close())
            goaway = None
            while goaway is None:
                got = await read_frames(reader, frames)
                assert got, "closed without GOAWAY"
                goaway = next((f for f in got if isinstance(f, GoAwayFrame)), None)
            assert (goaway.error_code, goaway.last_stream_id) == (0, 1)
            assert not closing.done()  # waiting for the reply to drain
            rest = len(BIG) - body
            writer.write(WindowUpdateFrame(0, window_increment=rest).serialize())
            writer.write(WindowUpdateFrame(1, window_increment=rest).serialize())
            ended = False
            while got := await read_frames(reader, frames):
                for frame in got:
                    if isinstance(frame, DataFrame):
                        body += len(frame.data)
                        ended = ended or "END_STREAM" in frame.flags
                    assert not isinstance(frame, HeadersFrame)
            assert (body, ended) == (len(BIG), True)
            writer.close()
            async with asyncio.timeout(DEADLINE):
                await closing
            assert served.stats.goaways["shutdown"] == 1
            assert served.stats.resets == dict.fromkeys(RESET_REASONS, 0)

    run(main())


def test_close_sends_goaway_to_an_idle_connection(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None) as served:
            client = await Client.open(served.port)
            sid = client.request("/echo")
            await client.until(lambda: client.responses[sid].ended, "the echo")
            closing = asyncio.create_task(served.site.close())
            await client.until(lambda: client.terminated is not None, "GOAWAY")
            assert client.terminated is not None
            assert client.terminated.error_code == ErrorCodes.NO_ERROR
            assert client.terminated.last_stream_id == sid
            await client.closes()  # the server's FIN follows its GOAWAY
            await client.close()  # and close() waits for ours (or CLOSE_LINGER)
            async with asyncio.timeout(DEADLINE):
                await closing
            assert served.site.h2_connections == 0
            assert served.stats.goaways["shutdown"] == 1

    run(main())


# backpressure and caps


def test_a_client_that_stops_reading_stops_being_read_and_loses_nothing(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, H2Limits(write_buffer=64 * 1024)) as served:
            client = await Client.open(served.port, window=(1 << 31) - 1)
            client.conn.increment_flow_control_window((1 << 31) - 1 - 65535)
            await client.until(
                lambda: client.conn.local_settings.initial_window_size == (1 << 31) - 1, "ack"
            )
            sids = [client.request("/big") for _ in range(60)]  # 12 MB, past kernel buffers
            (protocol,) = served.protocols
            transport = protocol.transport
            assert transport is not None
            await wait_until(lambda: not transport.is_reading(), DEADLINE, message="a pause")
            # One batch's worth past the mark at most: the mark, and a frame over it.
            assert transport.get_write_buffer_size() < 2 * 64 * 1024 + 2 * 16384
            await client.until(lambda: all(client.responses[s].ended for s in sids), "all")
            assert all(bytes(client.responses[s].body) == BIG for s in sids)
            assert transport.is_reading()
            await client.close()

    run(main())


def test_h2_connections_past_the_cap_send_the_idlest_away(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        async with serving(None, max_h2_connections=1) as served:
            first = await Client.open(served.port)
            sid = first.request("/echo")
            await first.until(lambda: first.responses[sid].ended, "the echo")
            second = await Client.open(served.port)
            await first.until(lambda: first.terminated is not None, "GOAWAY to the idlest")
            sid = second.request("/echo")
            await second.until(lambda: second.responses[sid].ended, "the newcomer's echo")
            assert served.site.h2_evicted == 1
            await first.closes()
            for client in (first, second):
                await client.close()

    run(main())


def test_http1_connections_keep_the_runners_cap_and_header_deadline(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        cap = ConnectionCap(limit=1)
        guard = HeaderDeadline(seconds=0.3, sweep_every=0.05)
        async with serving(None, guard=guard, cap=cap) as served:
            request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(request)
            assert (await reader.readuntil(b"aiohttp GET /a")).startswith(b"HTTP/1.1 200")
            other_reader, other_writer = await asyncio.open_connection("127.0.0.1", served.port)
            other_writer.write(request)
            await other_reader.readuntil(b"aiohttp GET /a")
            async with asyncio.timeout(DEADLINE):
                assert await reader.read() == b""  # the idlest made room
            assert cap.evicted == 1
            other_writer.write(b"GET /slow")  # half a request line, then nothing
            async with asyncio.timeout(DEADLINE):
                assert await other_reader.read() == b""
            assert guard.closed >= 1
            for w in (writer, other_writer):
                w.close()

    run(main())


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        H2Limits(max_concurrent_streams=0)
    with pytest.raises(ValueError):
        H2Limits(idle_timeout=0)
    with pytest.raises(ValueError):
        H2Limits(write_buffer=0)


def test_tls_without_alpn_h2_is_http1(
    run: Callable[[Coroutine[Any, Any, None]], None],
    server_tls: ssl.SSLContext,
    ca: trustme.CA,
) -> None:
    async def main() -> None:
        async with serving(server_tls) as served:
            context = ssl.create_default_context()
            ca.configure_trust(context)
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port, ssl=context)
            assert writer.get_extra_info("ssl_object").selected_alpn_protocol() is None
            writer.write(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            async with asyncio.timeout(DEADLINE):
                reply = await reader.read()
            assert reply.startswith(b"HTTP/1.1 200")
            assert reply.endswith(b"aiohttp GET /plain")
            writer.close()

    run(main())


@pytest.mark.parametrize("sent", [b"", b"PRI * HTTP/2.0\r\n"])
def test_a_cleartext_peer_that_never_says_which_protocol_is_closed(
    run: Callable[[Coroutine[Any, Any, None]], None], sent: bytes
) -> None:
    async def main() -> None:
        async with serving(None, preface_timeout=0.2) as served:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(sent)
            async with asyncio.timeout(DEADLINE):
                assert await reader.read() == b""
            assert served.protocols == []  # neither protocol was ever made
            writer.close()

    run(main())


def test_a_tls_handshake_that_never_finishes_is_closed(
    run: Callable[[Coroutine[Any, Any, None]], None], server_tls: ssl.SSLContext
) -> None:
    """Before the handshake ends no cap counts the connection: its own deadline does."""

    async def main() -> None:
        async with serving(server_tls, preface_timeout=0.2) as served:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(b"\x16\x03\x01")  # the start of a ClientHello, and no more
            async with asyncio.timeout(DEADLINE):
                assert await reader.read() == b""
            assert served.protocols == []
            writer.close()

    run(main())


def test_runner_cleanup_alone_stops_the_site_with_goaway(
    run: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    async def main() -> None:
        runner = await start_runner(make_app())
        site = await open_dual_site(runner, "127.0.0.1", 0, None, lambda: H2Protocol(toy))
        assert site in runner.sites
        client = await Client.open(site.port)
        sid = client.request("/echo")
        await client.until(lambda: client.responses[sid].ended, "the echo")
        cleanup = asyncio.create_task(runner.cleanup())
        await client.until(lambda: client.terminated is not None, "GOAWAY")
        await client.closes()
        await client.close()
        async with asyncio.timeout(DEADLINE):
            await cleanup
        assert site not in runner.sites
        await site.close()  # after the runner stopped it: nothing to do
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", site.port)

    run(main())
