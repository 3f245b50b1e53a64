"""Raw probe facts -> `Reason`: the only place that decides what a probe outcome means.

Owns: the verdict rules. HTTP(S) is healthy on a 2xx/3xx status and, when the check has
a `search` string, that string inside the first 5,120 bytes of the (de-chunked) body.
TCP is healthy when the connection is accepted. Every failure maps to one `Reason`.
Never: touches sockets, clocks or the event loop; the prober feeds bytes and exceptions.
Cost: `ResponseScanner` is a bounded parser: it holds at most `MAX_HEAD` bytes of status
line and headers and `SEARCH_WINDOW` bytes of body, whatever the target sends.
"""

# Pure in behaviour (no I/O, no clock), but not marked `# urn: pure`: mapping TLS
# failures needs `ssl`'s exception types, and importing ssl loads socket.

from __future__ import annotations

import errno
import socket
import ssl
from typing import Literal

from urn.table import Reason

__all__ = [
    "LOCAL_ERRNOS",
    "MAX_HEAD",
    "SEARCH_WINDOW",
    "ResponseScanner",
    "Stage",
    "classify_error",
    "classify_status",
    "status_verdict",
]

SEARCH_WINDOW = 5120  # body bytes searched for the check's string
MAX_HEAD = 16384  # status line plus headers; more is not an HTTP health answer
MAX_CHUNK_LINE = 1024
Stage = Literal["resolve", "connect", "exchange"]

_HEALTHY = int(Reason.HEALTHY)
_BAD_STATUS = int(Reason.BAD_STATUS)
_ERROR = int(Reason.ERROR)
_RESET = int(Reason.RESET)
_MISMATCH = int(Reason.BODY_MISMATCH)

# Body framing once the head is parsed.
_UNTIL_EOF, _LENGTH, _CHUNKED = 0, 1, 2


def classify_status(status: int) -> Reason:
    """2xx and 3xx are healthy; anything else is a bad status."""
    return Reason.HEALTHY if 200 <= status < 400 else Reason.BAD_STATUS


# The checker's own trouble, not the target's: out of descriptors, buffers or local ports.
LOCAL_ERRNOS = frozenset(
    (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL)
)
# Name resolution that failed on our side (our resolver unreachable, out of memory), as
# opposed to an answer that the name does not exist.
LOCAL_GAI_ERRORS = frozenset(
    code
    for code in (
        getattr(socket, "EAI_AGAIN", None),
        getattr(socket, "EAI_MEMORY", None),
        getattr(socket, "EAI_SYSTEM", None),
    )
    if code is not None
)


def classify_error(exc: BaseException, stage: Stage) -> Reason:
    """The reason for an exception raised while resolving, connecting or exchanging.

    A checker's own local errors are LOCAL (no data), never a target failure.
    """
    if isinstance(exc, TimeoutError):
        return Reason.TIMEOUT
    if isinstance(exc, socket.gaierror):
        return Reason.LOCAL if exc.errno in LOCAL_GAI_ERRORS else Reason.DNS
    if isinstance(exc, OSError) and exc.errno in LOCAL_ERRNOS:
        return Reason.LOCAL
    if stage == "resolve":
        return Reason.DNS
    if isinstance(exc, ssl.SSLError):
        return Reason.TLS
    if isinstance(exc, ConnectionRefusedError):
        return Reason.REFUSED
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return Reason.RESET
    return Reason.ERROR


# What a status line's first 13 bytes say (all `_parse_status` reads), memoised: a
# target sends the same few lines every probe. Bounded: never more than this many.
_STATUS_LINES: dict[bytes, int] = {}
_STATUS_LINES_MAX = 1024


def _status_of(line: bytes) -> int:
    """Status code of an `HTTP/1.x NNN ...` line, or -1 if the line is not one."""
    key = line[:13]
    code = _STATUS_LINES.get(key)
    if code is None:
        code = _parse_status(line)
        if len(key) == 13 and len(_STATUS_LINES) < _STATUS_LINES_MAX:
            _STATUS_LINES[key] = code
    return code


def _parse_status(line: bytes) -> int:
    if len(line) < 12 or not line.startswith(b"HTTP/1.") or line[8:9] != b" ":
        return -1
    code = line[9:12]
    if not code.isdigit() or (len(line) > 12 and line[12:13] not in b" \r\n"):
        return -1
    return int(code)


def status_verdict(data: bytes) -> int:
    """The verdict of a check without a search string from the first bytes of its
    answer, when they hold a whole final status line; 0 when they do not (feed them to a
    `ResponseScanner`, which then decides). Always what the scanner would say of them."""
    end = data.find(b"\r\n")
    if end < 0:
        return 0
    # Lines are memoised under their first 13 bytes, and a key holds no line end before
    # its last two bytes: so the data's own first 13 find the line's entry, if any,
    # without slicing the line out first.
    status = _STATUS_LINES.get(data[:13], -2)
    if status == -2:
        status = _status_of(data[: end + 2])
    if status < 200:
        return _ERROR if status < 0 else 0  # 1xx: an interim answer, the scanner's job
    return _HEALTHY if status < 400 else _BAD_STATUS


class ResponseScanner:
    """Incremental, bounded HTTP/1.x response reader that stops at the first verdict.

    `feed(data)` returns 0 while undecided, else a `Reason` value; `eof()` gives the
    verdict when the target closes first. Without a search string the verdict comes from
    the status line alone, so the prober can hang up without reading the body.
    """

    __slots__ = ("_body", "_buf", "_chunk_left", "_framing", "_head_done", "_left", "_search")

    def __init__(self, search: bytes | None) -> None:
        self._search = search
        self._buf = b""
        self._head_done = False
        self._body = b""
        self._framing = _UNTIL_EOF
        self._left = 0  # body bytes still expected under Content-Length
        self._chunk_left = -1  # bytes left in the current chunk; -1: expecting a size line

    def feed(self, data: bytes) -> int:
        if self._head_done:
            return self._feed_body(data)
        buf = self._buf + data if self._buf else data
        while True:
            if self._search is None:
                end = buf.find(b"\r\n")
                if end < 0:
                    return self._keep(buf)
                status = _status_of(buf[: end + 2])
                if status < 0:
                    return _ERROR
                if status >= 200:
                    return _HEALTHY if status < 400 else _BAD_STATUS
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                return self._keep(buf)
            head = buf[: head_end + 2]
            status = _status_of(head[: head.find(b"\r\n") + 2])
            if status < 0:
                return _ERROR
            rest = buf[head_end + 4 :]
            if 100 <= status < 200:  # interim response: the real one follows
                buf = rest
                continue
            if not 200 <= status < 400:
                return _BAD_STATUS
            verdict = self._framing_of(head)
            if verdict:
                return verdict
            self._buf = b""
            self._head_done = True
            return self._feed_body(rest) if rest else self._body_complete_check()

    def _keep(self, buf: bytes) -> int:
        if len(buf) > MAX_HEAD:
            return _ERROR
        self._buf = buf
        return 0

    def _framing_of(self, head: bytes) -> int:
        for line in head.split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            name = name.strip().lower()
            if name == b"content-length":
                text = value.strip()
                if not text.isdigit():
                    return _ERROR
                self._framing, self._left = _LENGTH, int(text)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._framing = _CHUNKED
        return 0

    def _body_complete_check(self) -> int:
        if self._framing == _LENGTH and self._left == 0:
            return _MISMATCH
        return 0

    def _feed_body(self, data: bytes) -> int:
        if self._framing == _CHUNKED:
            return self._feed_chunked(data)
        if self._framing == _LENGTH:
            data = data[: self._left]
            self._left -= len(data)
        verdict = self._add_body(data)
        if verdict:
            return verdict
        return _MISMATCH if self._framing == _LENGTH and self._left == 0 else 0

    def _feed_chunked(self, data: bytes) -> int:
        buf = self._buf + data if self._buf else data
        while buf:
            if self._chunk_left < 0:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_CHUNK_LINE:
                        return _ERROR
                    break
                size_text = buf[:end].split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    return _ERROR
                if size == 0:
                    return _MISMATCH  # last chunk: the body ended without the string
                self._chunk_left = size
                buf = buf[end + 2 :]
                continue
            if self._chunk_left == 0:  # the CRLF after a chunk's data
                if len(buf) < 2:
                    break
                if buf[:2] != b"\r\n":
                    return _ERROR
                buf = buf[2:]
                self._chunk_left = -1
                continue
            piece = buf[: self._chunk_left]
            self._chunk_left -= len(piece)
            buf = buf[len(piece) :]
            verdict = self._add_body(piece)
            if verdict:
                return verdict
        self._buf = buf
        return 0

    def _add_body(self, data: bytes) -> int:
        search = self._search
        assert search is not None
        before = len(self._body)
        body = self._body + data[: SEARCH_WINDOW - before]
        if body.find(search, max(0, before - len(search) + 1)) >= 0:
            return _HEALTHY
        if len(body) >= SEARCH_WINDOW:
            return _MISMATCH
        self._body = body
        return 0

    def eof(self) -> int:
        """The verdict when the target closes before `feed` gave one."""
        if not self._head_done:
            return _RESET  # closed before a complete status line and head
        if self._framing == _UNTIL_EOF:
            return _MISMATCH  # the body ended without the string
        return _RESET  # closed inside a Content-Length or chunked body
