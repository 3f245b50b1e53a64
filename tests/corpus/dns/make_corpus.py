"""Regenerate the hostile DNS query corpus: `python tests/corpus/dns/make_corpus.py`.

Each NAME.bin is one DNS message (as sent over UDP; over TCP the tests add the 2-byte
length). expected.json maps NAME to its outcome and why. Outcomes: "drop" (no reply),
or the reply's rcode ("formerr", "notimp", "badvers", "refused", "noerror"); "formerr"
and "notimp" replies carry no question (built from the header alone).
Add every crash reproducer here, permanently.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

HERE = Path(__file__).parent


def header(
    qid: int = 0x1234, flags: int = 0x0100, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0
) -> bytes:
    return struct.pack(">HHHHHH", qid, flags, qd, an, ns, ar)


def name(text: str) -> bytes:
    out = b""
    for label in text.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


WWW = name("www.example.com.")
QUESTION = WWW + struct.pack(">HH", 1, 1)
OPT = b"\0" + struct.pack(">HHBBHH", 41, 1232, 0, 0, 0, 0)


def opt(version: int = 0, rdata: bytes = b"", owner: bytes = b"\0") -> bytes:
    return owner + struct.pack(">HHBBHH", 41, 1232, 0, version, 0, len(rdata)) + rdata


CASES: dict[str, tuple[bytes, str, str]] = {
    "valid_query": (header() + QUESTION, "noerror", "sanity: a well-formed query"),
    "valid_query_edns": (header(ar=1) + QUESTION + OPT, "noerror", "sanity: with EDNS0 OPT"),
    "mixed_case": (
        header() + name("WwW.ExAmPlE.cOm.") + struct.pack(">HH", 1, 1),
        "noerror",
        "names are case-insensitive",
    ),
    "empty": (b"", "drop", "no bytes at all"),
    "short_header": (header()[:7], "drop", "fewer than 12 bytes"),
    "response_bit": (header(flags=0x8100) + QUESTION, "drop", "QR set: never answer a response"),
    "all_ff": (b"\xff" * 512, "drop", "QR set in garbage"),
    "trailing_junk": (header() + QUESTION + b"\0junk", "formerr", "bytes after the question"),
    "trailing_after_opt": (header(ar=1) + QUESTION + OPT + b"x", "formerr", "bytes after OPT"),
    "bad_label_length": (
        header() + b"\x40" + b"a" * 64 + b"\0" + struct.pack(">HH", 1, 1),
        "formerr",
        "label length 64 (0x40: extended label type)",
    ),
    "label_overrun": (header() + b"\x3fabc", "formerr", "label longer than the message"),
    "pointer_loop": (
        header() + b"\xc0\x0c" + struct.pack(">HH", 1, 1),
        "formerr",
        "compression pointer to itself",
    ),
    "pointer_forward": (
        header() + b"\x03www\xc0\x20" + struct.pack(">HH", 1, 1),
        "formerr",
        "compression pointer in a question",
    ),
    "name_too_long": (
        header() + (b"\x3f" + b"a" * 63) * 5 + b"\0" + struct.pack(">HH", 1, 1),
        "formerr",
        "name over 255 bytes",
    ),
    "no_root_label": (header() + b"\x03www", "formerr", "name never ends"),
    "missing_qclass": (header() + WWW + b"\x00\x01", "formerr", "question cut after qtype"),
    "huge_qdcount": (header(qd=65535) + QUESTION, "formerr", "qdcount 65535, one question"),
    "zero_qdcount": (header(qd=0), "formerr", "no question"),
    "two_questions": (header(qd=2) + QUESTION + QUESTION, "formerr", "qdcount 2"),
    "huge_ancount": (header(an=65535) + QUESTION, "formerr", "answers in a query"),
    "huge_nscount": (header(ns=65535) + QUESTION, "formerr", "authority in a query"),
    "huge_arcount": (header(ar=65535) + QUESTION + OPT, "formerr", "65535 additional records"),
    "arcount_without_opt": (header(ar=1) + QUESTION, "formerr", "OPT announced, missing"),
    "opt_cut": (header(ar=1) + QUESTION + OPT[:5], "formerr", "OPT record cut short"),
    "opt_bad_owner": (
        header(ar=1) + QUESTION + opt(owner=name("x.")),
        "formerr",
        "OPT owner must be the root",
    ),
    "non_opt_additional": (
        header(ar=1)
        + QUESTION
        + name("x.")
        + struct.pack(">HHIH", 1, 1, 0, 4)
        + b"\x01\x02\x03\x04",
        "formerr",
        "an A record in the additional section",
    ),
    "opt_rdlength_overrun": (
        header(ar=1) + QUESTION + opt()[:-2] + b"\x00\x10",
        "formerr",
        "OPT rdlength past the end",
    ),
    "opt_option_overrun": (
        header(ar=1) + QUESTION + opt(rdata=b"\x00\x0a\x00\x20abcd"),
        "formerr",
        "EDNS option longer than the OPT rdata",
    ),
    "opt_option_cut": (
        header(ar=1) + QUESTION + opt(rdata=b"\x00\x0a\x00"),
        "formerr",
        "EDNS option header cut",
    ),
    "edns_version_1": (header(ar=1) + QUESTION + opt(version=1), "badvers", "EDNS version 1"),
    "opcode_iquery": (header(flags=0x0900) + QUESTION, "notimp", "opcode 1 (IQUERY)"),
    "opcode_status": (header(flags=0x1100) + QUESTION, "notimp", "opcode 2 (STATUS)"),
    "opcode_notify": (header(flags=0x2100) + QUESTION, "notimp", "opcode 4 (NOTIFY)"),
    "opcode_update": (header(flags=0x2800, qd=1) + QUESTION, "notimp", "opcode 5 (UPDATE)"),
    "opcode_15_garbage": (
        header(flags=0x7800, qd=0xFFFF) + b"\xff" * 3,
        "notimp",
        "opcode 15 with garbage after",
    ),
    "class_chaos": (
        header() + name("version.bind.") + struct.pack(">HH", 16, 3),
        "refused",
        "CHAOS class: not ours",
    ),
    "outside_zones": (
        header() + name("example.org.") + struct.pack(">HH", 1, 1),
        "refused",
        "a name outside every zone",
    ),
    "root_name": (header() + b"\0" + struct.pack(">HH", 2, 1), "refused", "the root zone"),
}


def main() -> None:
    expected = {}
    for case, (data, outcome, why) in CASES.items():
        (HERE / f"{case}.bin").write_bytes(data)
        expected[case] = {"outcome": outcome, "why": why}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
