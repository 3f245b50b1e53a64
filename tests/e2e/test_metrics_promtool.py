"""Every role's /metrics, from a live fleet that has carried tables end to end, passes
`promtool check metrics`: it parses as the Prometheus text format and breaks none of
promtool's lint rules (counter suffixes, help text, base units, name conventions)."""

from __future__ import annotations

import asyncio
import shutil
from typing import TYPE_CHECKING

import pytest

from sim.chaos import fast_plan, live_fleet

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("promtool") is None,
        reason="promtool is not installed (make tools installs Debian's prometheus)",
    ),
]


async def promtool_check(text: str) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(text.encode()), 60)
    return process.returncode, out.decode(errors="replace")


async def test_every_roles_metrics_pass_promtool_check_metrics(tmp_path: Path) -> None:
    plan = fast_plan(aggregators=1, resolvers=1)
    async with live_fleet(tmp_path, plan) as live:
        # Tables have gone checker -> aggregator -> resolver, and queries were answered.
        await live.wait_answers(dead=())
        roles = {"checker": 0, "aggregator": 0, "resolver": 0}
        problems = {}
        for member, url in live.urls.items():
            role = member.split("-", 1)[0]
            roles[role] += 1
            async with live.session.get(f"{url}/metrics") as response:
                assert response.status == 200, member
                text = await response.text()
            assert "urn_" in text, member
            code, out = await promtool_check(text)
            if code != 0 or out.strip():
                problems[member] = f"exit {code}:\n{out}"
    assert roles == {"checker": 3, "aggregator": 1, "resolver": 1}
    assert problems == {}
