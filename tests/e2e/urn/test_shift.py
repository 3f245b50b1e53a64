"""`urn shift start|end|list` as an operator runs it (`python -m urn shift ...`) on JSON and
YAML files: the round trip, replacing a shift, the refusals, comments kept, and a real
resolver on the file taking the shift's answers out over DNS and bringing them back."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import re
import stat
import threading
import time
from typing import TYPE_CHECKING, Any

import dns.asyncquery
import dns.message
import pytest

from sim.testing import document_dict, wait_until
from sim.testing import run_urn as urn
from sim.testing.resolver import running_resolver
from urn.config import parse_text
from urn.config.levers import format_time
from urn.table import Status, aggregated_byte

if TYPE_CHECKING:
    from pathlib import Path

CAPACITY = 16
AZ_OF = "aabbc"  # slots 0-4
WWW = [f"10.0.0.{slot + 1}" for slot in range(len(AZ_OF))]
# Time left on a 30-minute shift, read a while after it was written: each command is a
# process of its own, so how long after depends on the machine, never asserted here.
LEFT_30M = r"2\dm \d\d?s"
UNTIL = re.compile(rf"until (\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ) \(in {LEFT_30M}\)")


def checks() -> list[dict[str, Any]]:
    return [
        {"slot": slot, "name": f"web-{az}{slot}", "type": "tcp", "host": "127.0.0.1", "port": 9,
         "az": az}
        for slot, az in enumerate(AZ_OF)
    ]  # fmt: skip


def records() -> list[dict[str, Any]]:
    return [
        {"name": "www.example.com.", "policy": "simple",
         "answers": [{"value": value, "check": slot} for slot, value in enumerate(WWW)]},
        {"name": "db.example.com.", "answers": [{"value": "10.0.1.1", "check": 2}]},
    ]  # fmt: skip


def document(**top: Any) -> dict[str, Any]:
    return document_dict(checks(), records(), **({"capacity": CAPACITY} | top))


YAML = """\
# urn fleet: edited by hand, and by `urn shift`
capacity: 16
intervals: {probe: 1.0, push: 1.0, config: 0.2}   # re-read often
zones: [example.com.]
push_key: {env: URN_PUSH_KEY}

checks:
  # AZ a
  - {slot: 0, name: web-a0, type: tcp, host: 127.0.0.1, port: 9, az: a}
  - {slot: 1, name: web-a1, type: tcp, host: 127.0.0.1, port: 9, az: a}
  # AZ b
  - {slot: 2, name: web-b2, type: tcp, host: 127.0.0.1, port: 9, az: b}
  - {slot: 3, name: web-b3, type: tcp, host: 127.0.0.1, port: 9, az: b}
  - {slot: 4, name: web-c4, type: tcp, host: 127.0.0.1, port: 9, az: c}

records:
  - name: www.example.com.
    policy: simple
    answers:
      - {value: 10.0.0.1, check: 0}
      - {value: 10.0.0.2, check: 1}
      - {value: 10.0.0.3, check: 2}   # b
      - {value: 10.0.0.4, check: 3}   # b
      - {value: 10.0.0.5, check: 4}
  - name: db.example.com.   # AZ b only
    answers: [{value: 10.0.1.1, check: 2}]
# end of the fleet
"""


@pytest.fixture
def json_file(tmp_path: Path) -> Path:
    path = tmp_path / "urn.json"
    path.write_text(json.dumps(document(), indent=2) + "\n")
    return path


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "urn.yaml"
    path.write_text(YAML)
    return path


def shift(*args: str, config: Path | str) -> tuple[int, str, str]:
    result = urn("shift", *args, "--config", str(config))
    return result.returncode, result.stdout, result.stderr


def shifts_of(path: Path) -> list[tuple[str, str]]:
    return [(s.az, s.reason) for s in parse_text(path.read_text()).shifts]


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_start_list_end_round_trip(kind: str, json_file: Path, yaml_file: Path) -> None:
    path = json_file if kind == "json" else yaml_file
    original = path.read_text()
    path.chmod(0o640)
    assert shift("list", config=path) == (0, "no shifts\n", "")

    code, out, err = shift("start", "--az", "b", "--for", "30m", "--reason", "deploy 4.2",
                           config=path)  # fmt: skip
    assert (code, err) == (0, "")
    lines = out.splitlines()
    until = UNTIL.search(lines[0])
    assert until, out
    assert lines[0] == f"AZ b is shifted until {until.group(0)[6:]}: deploy 4.2"
    assert lines[1:] == [
        "  touches 2 checks and 2 records of 2: their answers in AZ b count as unhealthy",
        "  takes effect at each process's next config pass: within "
        f"{'5' if kind == 'json' else '0.2'}s (intervals.config)",
        "  1 record will ignore it and keep answering from AZ b, as all their answers are in "
        "shifted AZs (b) and a shift never empties a name: db.example.com. A",
        f"wrote {path}",
    ]
    assert shifts_of(path) == [("b", "deploy 4.2")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(path.parent.iterdir()) == sorted([json_file, yaml_file])  # no temporary
    if kind == "json":
        assert json.loads(path.read_text())["shifts"][0]["until"] == until.group(1)
        assert path.read_text().startswith('{\n  "capacity": 16,\n')
    else:
        assert path.read_text().startswith(original)  # comments and layout kept

    code, out, _ = shift("list", config=path)
    assert code == 0
    assert re.fullmatch(rf"b  until {until.group(1)}  in {LEFT_30M}  deploy 4\.2\n", out)

    code, out, err = shift("end", "--az", "b", config=path)
    assert (code, err) == (0, "")
    assert re.match(rf"AZ b is no longer shifted \(the shift had {LEFT_30M} left", out)
    assert "  its 2 checks and 2 records answer by health again" in out
    assert shifts_of(path) == []
    if kind == "yaml":
        assert path.read_text() == original  # start then end: the same bytes
    assert shift("list", config=path) == (0, "no shifts\n", "")


def test_start_replaces_the_azs_shift_and_keeps_the_others(yaml_file: Path) -> None:
    assert shift("start", "--az", "b", "--for", "30m", "--reason", "one", config=yaml_file)[0] == 0
    assert shift("start", "--az", "c", "--for", "2h", "--reason", "two", config=yaml_file)[0] == 0
    code, out, _ = shift("start", "--az", "b", "--for", "1h30m", "--reason", "three",
                         config=yaml_file)  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("AZ b is shifted until ")
    assert re.search(r" \(in 1h 2\dm \d\d?s\): three$", lines[0])
    assert re.fullmatch(r"  replaces its shift until \S+Z \(one\)", lines[1])
    assert re.fullmatch(r"  also shifted: c until \S+Z", lines[2])
    assert shifts_of(yaml_file) == [("b", "three"), ("c", "two")]
    assert yaml_file.read_text().startswith(YAML)
    code, out, _ = shift("list", config=yaml_file)
    assert code == 0
    assert [line.split("  ")[0] for line in out.splitlines()] == ["b", "c"]
    assert re.search(r"in 1h 2\dm \d\d?s", out.splitlines()[0])
    assert re.search(r"in 1h 5\dm \d\d?s", out.splitlines()[1])


def test_an_existing_shifts_block_is_replaced_in_place_with_comments_around_it(
    yaml_file: Path,
) -> None:
    head, tail = YAML.split("\nchecks:\n")
    yaml_file.write_text(
        head + "\n# levers\nshifts:\n  - {az: c, until: 2020-01-01T00:00:00Z, reason: old}\n"
        "# (shifts above)\nchecks:\n" + tail
    )
    code, out, _ = shift("list", config=yaml_file)
    assert (code, out.split("  ")[0]) == (0, "c")
    assert out.rstrip().endswith("ago (inactive)  old")
    code, out, _ = shift("end", "--az", "c", config=yaml_file)
    assert code == 0
    assert out.startswith("AZ c's shift is gone: it had ended at 2020-01-01T00:00:00Z (expired ")
    assert yaml_file.read_text() == head + "\n# levers\n# (shifts above)\nchecks:\n" + tail


def refused(config: Path | str, *args: str) -> str:
    code, out, err = shift(*args, config=config)
    assert (code, out) == (2, ""), err
    return err.strip()


def test_refusals_name_the_problem_and_leave_the_file_alone(json_file: Path) -> None:
    before = json_file.read_bytes()
    start = ("start", "--az", "b", "--reason", "r", "--for")
    assert refused(json_file, *start, "80h") == (
        "urn shift start: --for: '80h' is outside 1m to 72h: a zonal shift lasts at least a "
        "minute and always ends by itself"
    )
    assert refused(json_file, *start, "30s").startswith("urn shift start: --for: '30s' is outside")
    assert refused(json_file, *start, "soon") == (
        "urn shift start: --for: 'soon' must be a duration like 90s, 30m, 2h or 1h30m"
    )
    assert refused(json_file, "start", "--az", "x", "--for", "30m", "--reason", "r") == (
        f"urn shift start: --az: 'x' is not the AZ of any check in {json_file} (AZs: a, b, c)"
    )
    assert refused(json_file, "start", "--az", "b", "--for", "30m", "--reason", "  ") == (
        "urn shift start: --reason: '  ' must be 1-500 bytes of text"
    )
    assert refused(json_file, "end", "--az", "b") == (
        f"urn shift end: --az: 'b' has no shift in {json_file} (shifted: none)"
    )
    assert json_file.read_bytes() == before


def test_a_url_source_is_refused_it_is_edited_where_it_is_served() -> None:
    url = "https://config.example.com/urn.yaml"
    assert refused(url, "start", "--az", "b", "--for", "30m", "--reason", "r") == (
        f"urn shift start: --config: '{url}' is a URL: a URL source is edited where it is "
        "served; urn shift edits a file"
    )
    assert refused(url, "end", "--az", "b").startswith("urn shift end: --config: ")


def test_list_reads_a_url_source_too(yaml_file: Path) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=yaml_file.parent)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/{yaml_file.name}"
            assert shift("list", config=url) == (0, "no shifts\n", "")
        finally:
            server.shutdown()
            thread.join()


def test_a_shift_set_too_far_ahead_is_refused_by_list_and_mended_by_end(json_file: Path) -> None:
    far = format_time(time.time() + 100 * 3600)
    json_file.write_text(json.dumps(document(shifts=[{"az": "c", "until": far, "reason": "r"}])))
    err = refused(json_file, "list")
    assert err.startswith(
        f"urn shift list: {json_file} is refused as it stands: shifts[0].until: '{far}' is more "
        "than 72 hours after "
    )
    err = refused(json_file, "start", "--az", "b", "--for", "10m", "--reason", "r")
    assert err.startswith(
        "urn shift start: the edited document would be refused: shifts[0].until: "
    )
    code, out, _ = shift("end", "--az", "c", config=json_file)
    assert code == 0
    assert re.match(r"AZ c is no longer shifted \(the shift had 99h [45]\dm \d\d?s left", out)
    assert shifts_of(json_file) == []


def test_a_missing_file_and_a_document_refused_as_it_stands(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert refused(missing, "list") == (
        f"urn shift list: cannot read config from {missing}: No such file or directory"
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document(capacity=2)))
    err = refused(bad, "start", "--az", "b", "--for", "30m", "--reason", "r")
    assert err.startswith(f"urn shift start: {bad} is refused as it stands: checks[2].slot: ")


def test_a_shift_is_required_to_say_how_long_and_why(yaml_file: Path) -> None:
    result = urn("shift", "start", "--az", "b", "--config", str(yaml_file))
    assert result.returncode == 2
    assert "the following arguments are required: --for, --reason" in result.stderr
    result = urn("shift")
    assert result.returncode == 2
    assert "start|end|list" in result.stderr


def test_a_flow_style_yaml_document_is_written_whole_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "urn.yaml"
    path.write_text("# flow style, not JSON\n" + json.dumps(document()))
    code, out, err = shift("start", "--az", "c", "--for", "10m", "--reason", "r", config=path)
    assert code == 0
    assert err == (
        f"urn shift: warning: could not edit the shifts block of {path} in place; wrote the "
        "document whole, without its comments and layout\n"
    )
    assert out.startswith("AZ c is shifted until ")
    assert shifts_of(path) == [("c", "r")]


async def test_a_running_resolver_takes_the_shifted_az_out_and_back(tmp_path: Path) -> None:
    path = tmp_path / "urn.yaml"
    path.write_text(YAML)
    async with running_resolver(path) as resolver:
        await resolver.push(bytes([aggregated_byte(Status.HEALTHY)]) * CAPACITY)

        async def answers(name: str = "www.example.com.") -> list[str]:
            query = dns.message.make_query(name, "A")
            reply = await dns.asyncquery.udp(query, "127.0.0.1", port=resolver.dns_port, timeout=5)
            return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)

        assert await answers() == WWW

        async def answered(expected: list[str]) -> bool:
            return await answers() == expected

        result = await asyncio.to_thread(
            urn, "shift", "start", "--az", "b", "--for", "5m", "--reason", "drill",
            "--config", str(path),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outside_b = [WWW[0], WWW[1], WWW[4]]
        await wait_until(lambda: answered(outside_b), message="AZ b's answers to leave")
        assert await answers("db.example.com.") == ["10.0.1.1"]  # never empties a name

        result = await asyncio.to_thread(urn, "shift", "end", "--az", "b", "--config", str(path))
        assert result.returncode == 0, result.stderr
        await wait_until(lambda: answered(WWW), message="AZ b's answers to come back")
