"""`urn demo` as a user runs it: exits 0, and leaves no process behind, even on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sim.testing import wait_until

pytestmark = pytest.mark.e2e

SMALL = [
    "--per-az",
    "8",
    "--checkers-per-az",
    "1",
    "--steady",
    "2",
    "--failure",
    "5",
    "--recovery",
    "3",
    "--quiet",
]


def _processes_tagged(tag: str) -> list[int]:
    """Pids of live processes whose environment carries `tag` (every child inherits it)."""
    found = []
    needle = f"URN_DEMO_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def _demo(tag: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "urn", "demo", "--out", str(out), *SMALL, *extra],
        env={**os.environ, "URN_DEMO_TAG": tag},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_demo_fails_an_az_reports_and_exits_cleanly(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    demo = _demo(tag, tmp_path)
    try:
        output, _ = demo.communicate(timeout=240)
    finally:
        demo.kill()
    assert demo.returncode == 0, output
    assert "result: OK" in output
    assert "healthy answers dropped: 0" in output
    assert "dead answers served after the bound: 0" in output
    assert _processes_tagged(tag) == []
    assert (tmp_path / "urn.yaml").exists()
    # It names every process's status page while it runs, and draws the run at the end.
    assert output.count("/ui") >= 4, output
    assert "resolver-1" in output
    png = tmp_path / "timeline.png"
    assert f"timeline of the run: {png}" in output, output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_ctrl_c_stops_every_child(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    demo = _demo(tag, tmp_path, "--steady", "60")
    try:
        await wait_until(lambda: len(_processes_tagged(tag)) >= 7, 60, message="fleet started")
        await wait_until(
            lambda: (tmp_path / "resolver-1.log").exists(), 30, message="resolver started"
        )
        demo.send_signal(signal.SIGINT)
        await wait_until(lambda: demo.poll() is not None, 30, message="demo exits on SIGINT")
        await wait_until(lambda: _processes_tagged(tag) == [], 10, message="no child left")
    finally:
        demo.kill()
        demo.communicate()
    assert demo.returncode != 0
