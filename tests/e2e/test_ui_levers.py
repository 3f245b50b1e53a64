"""The resolver's /ui shows the operator levers in a real browser (headless chromium):
a shifted AZ in the header, a record ignoring the shift flagged S, an overridden check's
lever on its answer, with no console error. Skipped, saying why, with no chromium."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from sim.testing import FakeClock, document_dict, wait_until
from sim.testing.browser import Browser, BrowserUnavailable, find_chromium
from sim.testing.resolver import running_resolver, write_config
from urn.config.levers import format_time
from urn.table import Reason, Status, aggregated_byte

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CAPACITY = 8


def config(tmp_path: Path, clock: FakeClock) -> Path:
    until = format_time(clock.time() + 3600)
    checks: list[dict[str, Any]] = [
        {"slot": slot, "name": f"c{slot}", "type": "tcp", "host": "127.0.0.1", "port": 9, "az": az}
        for slot, az in enumerate("abc")
    ]
    checks[2]["override"] = {"status": "unhealthy", "until": until, "reason": "disk swap"}
    records = [
        {  # AZ a's answer is down and AZ b is shifted: the record ignores the shift
            "name": "pair.example.com.",
            "answers": [{"value": "10.1.0.1", "check": 0}, {"value": "10.1.0.2", "check": 1}],
        },
        {"name": "c.example.com.", "answers": [{"value": "10.3.0.1", "check": 2}]},
    ]
    shift = {"az": "b", "until": until, "reason": "deploy"}
    document = document_dict(checks=checks, records=records, capacity=CAPACITY, shifts=[shift])
    return write_config(tmp_path / "urn.json", document)


async def test_the_resolver_page_shows_shifts_and_overrides(tmp_path: Path) -> None:
    try:
        find_chromium()
        browser_cm = Browser()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    clock = FakeClock()
    async with running_resolver(config(tmp_path, clock), dns=False, clock=clock) as resolver:
        table = bytearray([aggregated_byte(Status.HEALTHY)]) * CAPACITY
        table[0] = aggregated_byte(Status.UNHEALTHY, Reason.TIMEOUT)
        await resolver.push(bytes(table))
        resolver.service.status.refresh()  # the snapshot loop runs on the FakeClock
        try:
            browser = await browser_cm.__aenter__()
        except BrowserUnavailable as exc:
            pytest.skip(str(exc))
        try:
            page = await browser.page()
            await page.goto(f"{resolver.url}/ui")

            async def shown() -> bool:
                drawn = await page.evaluate(
                    "window.urn && {shifted: window.urn.shifted, flags: window.urn.flags,"
                    " header: document.getElementById('flags').textContent,"
                    " records: document.getElementById('records').innerHTML}"
                )
                return bool(
                    drawn
                    and drawn.get("shifted") == ["b"]
                    and drawn["flags"] == "SF"  # c: its one answer overridden down
                    and "AZ b shifted away" in drawn["header"]
                    and "1 checks overridden" in drawn["header"]
                    and "override unhealthy until" in drawn["records"]
                    and "shift ignored" in drawn["records"]
                )

            await wait_until(shown, 20.0, message="the page showing the shift and the override")
            assert page.errors == [], page.errors
        finally:
            await browser_cm.__aexit__(None, None, None)
