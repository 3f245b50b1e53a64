"""A real headless browser for tests: Debian's chromium, driven over the DevTools Protocol.

`find_chromium()` names the binary or says why there is none; `Browser` starts it with
`--headless=new --remote-debugging-port=0` on a throwaway profile, reads the DevTools
port from its stderr, and opens a `Page`: a CDP session over one websocket (aiohttp)
that collects every console error, log error and uncaught exception the page raises,
evaluates JavaScript and captures screenshots. Everything it starts is stopped on exit.
No selenium, no driver binary; only loopback sockets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["Browser", "BrowserUnavailable", "Page", "find_chromium"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
START_TIMEOUT = 30.0
CALL_TIMEOUT = 15.0
_DEVTOOLS = re.compile(rb"DevTools listening on (ws://\S+)")


class BrowserUnavailable(RuntimeError):
    """No browser can be had here; the message says why (for a test's skip)."""


def find_chromium() -> str:
    """The chromium binary ($URN_CHROMIUM, else the first of CANDIDATES on PATH)."""
    named = os.environ.get("URN_CHROMIUM")
    if named:
        return named
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable(
        "no chromium on PATH (`make tools` installs Debian's chromium when run as root)"
    )


class Page:
    """One page target's CDP session: calls, and the errors the page reported."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.errors: list[str] = []  # console errors, error log entries, exceptions
        self.events: list[dict[str, Any]] = []
        self.loaded = asyncio.Event()  # set by each load event
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            self._event(data)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("the browser closed the DevTools socket"))

    def _event(self, data: dict[str, Any]) -> None:
        method = data.get("method", "")
        params = data.get("params", {})
        self.events.append(data)
        if method == "Page.loadEventFired":
            self.loaded.set()
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {description}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One CDP command's result; RuntimeError with the browser's message on an error."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(CALL_TIMEOUT):
            reply = await future
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of `expression` in the page (exceptions raise RuntimeError)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.loaded.clear()
        await self.call("Page.navigate", url=url)
        async with asyncio.timeout(CALL_TIMEOUT):
            await self.loaded.wait()

    async def screenshot(self, path: Path) -> Path:
        """A PNG of the page as it is now, written to `path`."""
        result = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(_write, path, base64.b64decode(result["data"]))
        return path

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class Browser:
    """`async with Browser() as browser:` a headless chromium; `await browser.page()`."""

    def __init__(self, binary: str | None = None, width: int = 1400, height: int = 1000) -> None:
        self.binary = binary or find_chromium()
        self.size = (width, height)
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pages: list[Page] = []
        self.stderr = b""

    async def __aenter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="urn-chromium-")
        args = [
            "--headless=new",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={self.size[0]},{self.size[1]}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--no-sandbox",  # tests run as root in CI containers, where the sandbox cannot start
            "about:blank",
        ]
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            self._cleanup_profile()
            raise BrowserUnavailable(f"cannot start {self.binary}: {exc}") from None
        try:
            await self._await_devtools()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT))
        return self

    async def _await_devtools(self) -> None:
        process = self._process
        assert process is not None
        assert process.stderr is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = await process.stderr.readline()
                    if not line:
                        tail = self.stderr[-2000:].decode(errors="replace")
                        raise BrowserUnavailable(f"{self.binary} exited before DevTools:\n{tail}")
                    self.stderr += line
                    found = _DEVTOOLS.search(line)
                    if found:
                        self.port = int(found.group(1).split(b":")[2].split(b"/")[0])
                        break
        except TimeoutError:
            tail = self.stderr[-2000:].decode(errors="replace")
            raise BrowserUnavailable(
                f"{self.binary}: no DevTools URL in {START_TIMEOUT:g}s:\n{tail}"
            ) from None
        # Keep draining stderr, so chromium never blocks on a full pipe.
        self._drain = asyncio.create_task(self._drain_stderr(), name="chromium-stderr")

    async def _drain_stderr(self) -> None:
        process = self._process
        assert process is not None
        assert process.stderr is not None
        while line := await process.stderr.readline():
            self.stderr = (self.stderr + line)[-20000:]

    async def page(self) -> Page:
        """The first page target, with Page, Runtime and Log events on."""
        assert self._session is not None
        base = f"http://127.0.0.1:{self.port}"
        async with self._session.get(f"{base}/json/list") as response:
            targets = await response.json(content_type=None)
        target = next(t for t in targets if t.get("type") == "page")
        ws = await self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        self._pages.append(page)
        for domain in ("Page", "Runtime", "Log"):
            await page.call(f"{domain}.enable")
        return page

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        for page in self._pages:
            with contextlib.suppress(Exception):
                await page.close()
        if self._session is not None:
            await self._session.close()
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
        self._cleanup_profile()

    def _cleanup_profile(self) -> None:
        if self._profile is not None:
            with contextlib.suppress(OSError):
                self._profile.cleanup()
            self._profile = None
