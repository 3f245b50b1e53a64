"""classify.py: status and body rules, bounded parsing, exception mapping (no I/O)."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from checker import classify
from checker.classify import (
    MAX_HEAD,
    SEARCH_WINDOW,
    ResponseScanner,
    classify_error,
    classify_status,
    status_verdict,
)
from urn.table import Reason

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"


def run(chunks: list[bytes], search: bytes | None, eof: bool = True) -> int:
    scanner = ResponseScanner(search)
    for chunk in chunks:
        verdict = scanner.feed(chunk)
        if verdict:
            return verdict
    return scanner.eof() if eof else 0


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Reason.HEALTHY),
        (204, Reason.HEALTHY),
        (302, Reason.HEALTHY),
        (399, Reason.HEALTHY),
        (404, Reason.BAD_STATUS),
        (500, Reason.BAD_STATUS),
        (199, Reason.BAD_STATUS),
    ],
)
def test_classify_status(status: int, expected: Reason):
    assert classify_status(status) == expected


def test_status_line_alone_decides_without_search():
    assert run([b"HTTP/1.1 200 OK\r\n"], None, eof=False) == Reason.HEALTHY
    assert run([b"HTTP/1.0 503 Service Unavailable\r\n"], None, eof=False) == Reason.BAD_STATUS
    assert run(bytewise(b"HTTP/1.1 301 Moved\r\n"), None, eof=False) == Reason.HEALTHY


def test_status_line_without_reason_phrase():
    assert run([b"HTTP/1.1 200\r\n\r\n"], None, eof=False) == Reason.HEALTHY


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/2 200 OK\r\n",
        b"HTTP/1.1 2x0 OK\r\n",
        b"HTTP/1.1 2000 OK\r\n",
        b"SSH-2.0-x\r\n",
        b"HTTP/1.1  200\r\n",
    ],
)
def test_garbage_status_line_is_error(line: bytes):
    assert run([line + b"\r\n"], None) == Reason.ERROR
    assert run([line + b"\r\n"], b"x") == Reason.ERROR


def test_interim_responses_are_skipped():
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Nope\r\n\r\n"
    assert run([data], None) == Reason.BAD_STATUS
    assert run(bytewise(data), None) == Reason.BAD_STATUS
    ok = b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" + OK_HEAD + b"\r\nfound it"
    assert run([ok], b"found") == Reason.HEALTHY


def test_closing_before_a_status_line_is_reset():
    assert run([], None) == Reason.RESET
    assert run([b"HTTP/1.1 20"], None) == Reason.RESET
    assert run([OK_HEAD], b"x") == Reason.RESET  # head never finished


def test_search_in_content_length_body():
    body = b"hello healthy world"
    data = OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert run([data], b"healthy") == Reason.HEALTHY
    assert run(bytewise(data), b"healthy") == Reason.HEALTHY
    assert run([data], b"absent") == Reason.BODY_MISMATCH  # complete body: no EOF needed


def test_search_string_split_across_reads():
    head = OK_HEAD + b"\r\n"
    assert run([head + b"abc hea", b"lthy def"], b"healthy") == Reason.HEALTHY


def test_search_only_in_first_window():
    inside = b"a" * (SEARCH_WINDOW - 5) + b"needle"  # straddles the boundary
    assert run([OK_HEAD + b"\r\n" + inside], b"needle") == Reason.BODY_MISMATCH
    edge = b"a" * (SEARCH_WINDOW - 6) + b"needle"  # ends exactly at byte 5,120
    assert run([OK_HEAD + b"\r\n" + edge], b"needle") == Reason.HEALTHY


def test_window_verdict_comes_without_reading_more():
    scanner = ResponseScanner(b"needle")
    assert scanner.feed(OK_HEAD + b"\r\n") == 0
    assert scanner.feed(b"z" * SEARCH_WINDOW) == Reason.BODY_MISMATCH


def test_body_until_eof():
    assert run([OK_HEAD + b"\r\nno match here"], b"healthy") == Reason.BODY_MISMATCH
    assert run([OK_HEAD + b"\r\n", b"so healthy"], b"healthy") == Reason.HEALTHY


def test_short_content_length_body_then_close_is_reset():
    data = OK_HEAD + b"Content-Length: 100\r\n\r\nonly a bit"
    assert run([data], b"never") == Reason.RESET


def test_empty_body_with_zero_length_is_mismatch():
    assert run([OK_HEAD + b"Content-Length: 0\r\n\r\n"], b"x", eof=False) == Reason.BODY_MISMATCH


def test_bad_content_length_is_error():
    assert run([OK_HEAD + b"Content-Length: ten\r\n\r\n"], b"x") == Reason.ERROR


def test_content_length_bounds_the_search():
    data = OK_HEAD + b"Content-Length: 3\r\n\r\nabcneedle"
    assert run([data], b"needle", eof=False) == Reason.BODY_MISMATCH


def chunked(*pieces: bytes, last: bool = True) -> bytes:
    out = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    for piece in pieces:
        out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    return out + (b"0\r\n\r\n" if last else b"")


def test_chunked_body_is_dechunked_before_search():
    data = chunked(b"abc nee", b"dle xyz")
    assert run([data], b"needle") == Reason.HEALTHY
    assert run(bytewise(data), b"needle") == Reason.HEALTHY
    assert run([data], b"absent", eof=False) == Reason.BODY_MISMATCH


def test_chunked_cut_short_is_reset():
    assert run([chunked(b"abc", last=False)], b"needle") == Reason.RESET


@pytest.mark.parametrize(
    "data",
    [
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
        OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 2000,
    ],
)
def test_malformed_chunking_is_error(data: bytes):
    assert run([data], b"needle") == Reason.ERROR


def test_head_is_bounded():
    scanner = ResponseScanner(None)
    assert scanner.feed(b"H" * 100) == 0
    assert scanner.feed(b"H" * MAX_HEAD) == Reason.ERROR
    searching = ResponseScanner(b"x")
    assert searching.feed(OK_HEAD) == 0
    assert searching.feed(b"X-Pad: " + b"p" * MAX_HEAD) == Reason.ERROR


@pytest.mark.parametrize(
    ("exc", "stage", "expected"),
    [
        (TimeoutError(), "connect", Reason.TIMEOUT),
        (TimeoutError(), "resolve", Reason.TIMEOUT),
        (OSError(-2, "Name or service not known"), "resolve", Reason.DNS),
        (ConnectionRefusedError(), "connect", Reason.REFUSED),
        (ConnectionResetError(), "exchange", Reason.RESET),
        (BrokenPipeError(), "exchange", Reason.RESET),
        (ConnectionAbortedError(), "exchange", Reason.RESET),
        (ssl.SSLCertVerificationError("bad cert"), "connect", Reason.TLS),
        (ssl.SSLError("wrong version"), "connect", Reason.TLS),
        (OSError(101, "Network is unreachable"), "connect", Reason.ERROR),
        (ValueError("odd"), "exchange", Reason.ERROR),
    ],
)
def test_classify_error(exc: BaseException, stage, expected: Reason):
    assert classify_error(exc, stage) == expected


@pytest.mark.parametrize(
    "code", [errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL]
)
@pytest.mark.parametrize("stage", ["resolve", "connect", "exchange"])
def test_the_checkers_own_errors_are_local_never_a_target_failure(code: int, stage):
    assert classify_error(OSError(code, "ours"), stage) == Reason.LOCAL


def test_name_resolution_local_failures_are_local_answers_are_dns():
    again = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    assert classify_error(again, "resolve") == Reason.LOCAL
    noname = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert classify_error(noname, "resolve") == Reason.DNS
    # A gaierror is a name answer whatever stage raised it, never a connect failure.
    assert classify_error(noname, "connect") == Reason.DNS
    assert classify_error(socket.gaierror(socket.EAI_AGAIN, "again"), "connect") == Reason.LOCAL


def test_target_refusals_and_resets_stay_target_failures():
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert classify_error(refused, "connect") == Reason.REFUSED
    assert classify_error(ConnectionRefusedError(), "connect") == Reason.REFUSED
    reset = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    assert classify_error(reset, "exchange") == Reason.RESET
    assert classify_error(OSError(errno.EHOSTUNREACH, "No route"), "connect") == Reason.ERROR


FIRST_CHUNKS = [  # (first bytes of an answer, what they alone say; 0: the scanner's to say)
    (b"HTTP/1.1 200 OK\r\n", Reason.HEALTHY),
    (b"HTTP/1.1 200\r\n\r\n", Reason.HEALTHY),
    (b"HTTP/1.0 503 Service Unavailable\r\nServer: x\r\n\r\n", Reason.BAD_STATUS),
    (b"HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n", Reason.HEALTHY),
    (b"HTTP/1.1 399 X\r\n", Reason.HEALTHY),
    (b"HTTP/1.1 400 X\r\n", Reason.BAD_STATUS),
    (b"HTTP/1.1 000 Odd\r\n", 0),  # under 200: not a final answer's line
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Nope\r\n\r\n", 0),
    (b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 0),
    (b"HTTP/1.1 20\r\n", Reason.ERROR),
    (b"HTTP/1.1 2\r\n", Reason.ERROR),
    (b"HTTP/1.1 200", 0),  # no line end yet
    (b"HTTP/1.1 20", 0),
    (b"\r\n", Reason.ERROR),
    (b"HTTP/2 200 OK\r\n", Reason.ERROR),
    (b"HTTP/1.1 2x0 OK\r\n", Reason.ERROR),
    (b"HTTP/1.1 2000 OK\r\n", Reason.ERROR),
    (b"HTTP/1.1  200\r\n", Reason.ERROR),
    (b"SSH-2.0-x\r\n", Reason.ERROR),
    (b"H" * 100, 0),
]


@pytest.mark.parametrize(("data", "expected"), FIRST_CHUNKS)
def test_the_first_bytes_verdict_is_the_scanners_own(
    monkeypatch: pytest.MonkeyPatch, data: bytes, expected: int
) -> None:
    """The prober judges an answer's first bytes without a scanner when they settle it:
    that verdict must be the scanner's own, computed fresh or read from the memo of
    status lines that the first call fills."""
    monkeypatch.setattr(classify, "_STATUS_LINES", {})
    for _ in range(2):
        assert status_verdict(data) == expected
        if expected:
            assert ResponseScanner(None).feed(data) == expected


def test_the_first_bytes_decide_a_status_line_and_leave_the_rest() -> None:
    assert status_verdict(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n") == Reason.HEALTHY
    assert status_verdict(b"HTTP/1.1 200\r\n") == Reason.HEALTHY
    assert status_verdict(b"HTTP/1.1 404 Not Found\r\n") == Reason.BAD_STATUS
    assert status_verdict(b"HTTP/1.1 2000 OK\r\n") == Reason.ERROR
    assert status_verdict(b"HTTP/1.1 200") == 0  # the line has not ended: more to come
    assert status_verdict(b"HTTP/1.1 100 Continue\r\n\r\n") == 0  # interim: the scanner's
