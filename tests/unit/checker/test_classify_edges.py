"""classify.py at its edges: status boundaries, odd status lines, framing headers, chunk sizes.

Each case is a response a real target could send, and the verdict a health checker must give.
"""

from __future__ import annotations

import pytest

from checker import classify
from checker.classify import MAX_HEAD, SEARCH_WINDOW, ResponseScanner, classify_status
from urn.table import Reason


def run(chunks: list[bytes], search: bytes | None) -> int:
    """The verdict of feeding `chunks` in order; 0 while still undecided (no eof)."""
    scanner = ResponseScanner(search)
    for chunk in chunks:
        verdict = scanner.feed(chunk)
        if verdict:
            return verdict
    return 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [(399, Reason.HEALTHY), (400, Reason.BAD_STATUS), (401, Reason.BAD_STATUS)],
)
def test_four_hundred_is_the_first_bad_status(status: int, expected: Reason) -> None:
    assert classify_status(status) == expected
    line = f"HTTP/1.1 {status} X\r\n".encode()
    assert run([line], None) == expected  # the status line alone decides
    assert run([line + b"Content-Length: 2\r\n\r\nok"], b"ok") == expected


@pytest.mark.parametrize("search", [None, b"ok"])
def test_status_000_is_a_bad_status_not_a_parse_error(search: bytes | None) -> None:
    assert run([b"HTTP/1.1 000 Odd\r\n\r\n"], search) == Reason.BAD_STATUS


@pytest.mark.parametrize(
    "line",
    [b"HTTP/1.1-200 OK\r\n", b"HTTPS1.1 200 OK\r\n", b"HTTP/1.1 200X\r\n", b"HTTP/1.1 200X OK\r\n"],
)
def test_status_lines_off_by_one_character_are_errors(line: bytes) -> None:
    assert run([line + b"\r\n"], None) == Reason.ERROR
    assert run([line + b"\r\n"], b"ok") == Reason.ERROR


@pytest.mark.parametrize("search", [None, b"ok"])
def test_a_response_that_opens_with_a_blank_line_is_an_error(search: bytes | None) -> None:
    data = b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert run([data], search) == Reason.ERROR


def test_status_line_without_reason_phrase_with_a_body_search() -> None:
    assert run([b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"], b"ok") == Reason.HEALTHY


@pytest.mark.parametrize("search", [None, b"ok"])
def test_100_continue_is_interim_and_the_final_status_decides(search: bytes | None) -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert run([data], search) == Reason.HEALTHY


def test_head_of_exactly_max_head_bytes_is_still_read() -> None:
    filler = b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEAD - 20)
    assert len(filler) == MAX_HEAD
    scanner = ResponseScanner(b"ok")
    assert scanner.feed(filler) == 0
    assert scanner.feed(b"a") == Reason.ERROR  # one byte more than the bound


def test_content_length_as_the_first_header_frames_the_body() -> None:
    # The whole body has arrived without the string: a mismatch at once, no wait for eof.
    assert run([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"], b"ok") == (
        Reason.BODY_MISMATCH
    )


def test_a_header_line_without_a_colon_does_not_hide_the_framing() -> None:
    data = b"HTTP/1.1 200 OK\r\nbogus line\r\nContent-Length: 5\r\n\r\nhello"
    assert run([data], b"ok") == Reason.BODY_MISMATCH


@pytest.mark.parametrize("header", [b"Transfer-Encoding: identity", b"X-Note: chunked"])
def test_only_transfer_encoding_chunked_means_chunked(header: bytes) -> None:
    data = b"HTTP/1.1 200 OK\r\n" + header + b"\r\n\r\nall ok here"
    assert run([data], b"ok") == Reason.HEALTHY  # read until eof, not as chunks


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"a\r\n01234567ok\r\n", Reason.HEALTHY),  # hexadecimal size: 10 bytes
        (b"10\r\n0123456789abcdef\r\n2\r\nok\r\n", Reason.HEALTHY),  # 0x10 = 16 bytes
        (b"1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n", Reason.BODY_MISMATCH),
        (b"2;a=1;b=2\r\nok\r\n", Reason.HEALTHY),  # several chunk extensions
        (b"\r\n2\r\nok\r\n", Reason.ERROR),  # an empty size line
    ],
)
def test_chunk_sizes_are_hexadecimal_with_extensions(body: bytes, expected: Reason) -> None:
    assert run([CHUNKED + body], b"ok") == expected


def test_chunk_size_line_of_exactly_the_bound_is_still_read() -> None:
    size_line = b"2;" + b"e" * 1022  # MAX_CHUNK_LINE (1024) bytes, its CRLF not yet here
    scanner = ResponseScanner(b"ok")
    assert scanner.feed(CHUNKED + size_line) == 0
    assert scanner.feed(b"\r\nok\r\n") == Reason.HEALTHY
    longer = ResponseScanner(b"ok")
    assert longer.feed(CHUNKED + size_line + b"e") == Reason.ERROR


def test_search_window_holds_across_feeds() -> None:
    # 5,000 bytes, then 200 more and the string: it starts past byte 5,120, so unseen.
    scanner = ResponseScanner(b"ok")
    assert scanner.feed(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 5000) == 0
    assert scanner.feed(b"x" * 200 + b"ok") == Reason.BODY_MISMATCH
    # The same string ending exactly at the window's last byte is found.
    inside = ResponseScanner(b"ok")
    assert inside.feed(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 5000) == 0
    assert inside.feed(b"x" * (SEARCH_WINDOW - 5002) + b"ok") == Reason.HEALTHY


def test_status_lines_are_memoised_by_what_decides_them_and_the_memo_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(classify, "_STATUS_LINES", {})
    monkeypatch.setattr(classify, "_STATUS_LINES_MAX", 2)
    assert classify._status_of(b"HTTP/1.1 200 OK\r\n") == 200
    assert classify._status_of(b"HTTP/1.1 200 Fine\r\n") == 200  # the same first 13 bytes
    assert classify._status_of(b"HTTP/1.1 2000\r\n") == -1  # not a status line, memoised too
    assert classify._status_of(b"HTTP/1.0 503 Busy\r\n") == 503  # memo full: parsed, not kept
    assert set(classify._STATUS_LINES) == {b"HTTP/1.1 200 ", b"HTTP/1.1 2000"}
    assert classify._status_of(b"HTTP/1.1 204") == 204  # 12 bytes decide nothing alone
    assert len(classify._STATUS_LINES) == 2
    # What the memo holds is what parsing says, for every line it was asked about.
    for line in (b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 2000\r\n", b"HTTP/1.0 503 Busy\r\n"):
        assert classify._status_of(line) == classify._parse_status(line)
