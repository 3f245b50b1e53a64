"""The status page in a real browser: headless chromium against a running fleet (CDP).

Every role's /ui loads with no console error, log error or uncaught exception and draws
its whole table; after AZ b is failed, the resolver page's AZ b cells and records panel
change within 2 push intervals of the resolver's own /v1/status saying so (times
URN_TEST_SLACK), and change back after recovery. Screenshots of steady, failed and
recovered go to $URN_ARTEFACTS (else the test's tmp_path). Skipped, saying why, where
no chromium can be had (`make tools` installs Debian's as root).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sim.chaos import LiveFleet, detection_bound, fast_plan, live_fleet
from sim.testing import wait_until
from sim.testing.bounds import slack
from sim.testing.browser import Browser, BrowserUnavailable, Page, find_chromium

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _artefacts(tmp_path: Path) -> Path:
    named = os.environ.get("URN_ARTEFACTS")
    out = Path(named) / "ui" if named else tmp_path / "artefacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


async def _status(live: LiveFleet, member: str) -> dict[str, Any]:
    async with live.session.get(f"{live.url(member)}/v1/status") as response:
        body: dict[str, Any] = await response.json()
        return body


def _failing(status: dict[str, Any], az_index: int) -> int:
    return int(status["unhealthy_by_az"][az_index])


async def _page_shows(
    page: Page, check: Callable[[dict[str, Any]], bool]
) -> Callable[[], Awaitable[bool]]:
    async def shown() -> bool:
        drawn = await page.evaluate(
            "({byAz: window.urn.byAz, records: window.urn.records, flags: window.urn.flags,"
            " cells: window.urn.cellsDrawn, polls: window.urn.polls})"
        )
        return bool(check(drawn))

    return shown


async def _open(page: Page, url: str, capacity: int, bound: float) -> dict[str, Any]:
    await page.goto(url)

    async def drawn() -> bool:
        return bool(await page.evaluate("window.urn && window.urn.cellsDrawn") == capacity)

    await wait_until(drawn, bound, message=f"{url} drawing all {capacity} cells")
    return dict(await page.evaluate("window.urn"))


async def test_status_page_in_a_real_browser(tmp_path: Path) -> None:
    try:
        find_chromium()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    plan = fast_plan(azs=("a", "b", "c"), aggregators=2, resolvers=1)
    push = plan.push_interval
    page_lag = 2 * push * slack()  # the page follows its process within 2 push intervals
    detect = detection_bound(plan) * slack()
    out = _artefacts(tmp_path)
    try:
        browser_cm = Browser()
    except BrowserUnavailable as exc:  # pragma: no cover - find_chromium said yes
        pytest.skip(str(exc))
    async with live_fleet(tmp_path, plan, per_az=4) as live:
        capacity = int(live.document["capacity"])
        try:
            browser = await browser_cm.__aenter__()
        except BrowserUnavailable as exc:
            pytest.skip(str(exc))
        try:
            page = await browser.page()
            # Every role's page loads clean and draws every slot.
            for member in (plan.checker_ids[0][0], plan.aggregator_ids[0]):
                await _open(page, f"{live.url(member)}/ui", capacity, detect)
                await page.screenshot(out / f"{member}.png")
            resolver = "resolver-1"
            await live.wait_answers(dead=(), timeout=detect)
            steady = await _open(page, f"{live.url(resolver)}/ui", capacity, detect)
            assert steady["byAz"]["b"]["failing"] == 0, steady["byAz"]
            assert steady["records"], "the records panel shows every record's answers"
            await page.screenshot(out / "steady.png")

            b = sorted(plan.azs).index("b")  # the snapshot counts by AZ in name order
            await live.set_mode("b", "refuse")
            started = time.monotonic()

            async def resolver_sees() -> bool:
                return _failing(await _status(live, resolver), b) > 0

            await wait_until(resolver_sees, detect, message="the resolver's table marking AZ b")
            seen = time.monotonic()
            await wait_until(
                await _page_shows(
                    page,
                    lambda d: d["byAz"]["b"]["failing"] > 0 and d["records"] != steady["records"],
                ),
                page_lag,
                message=f"the page showing AZ b failed within {page_lag:.2f}s of /v1/status"
                f" (2 push intervals of {push}s, times slack)",
            )
            failed = dict(await page.evaluate("window.urn"))
            assert failed["byAz"]["a"]["failing"] == 0
            assert failed["byAz"]["c"]["failing"] == 0
            assert "U" not in _letters_of_az(live, failed["records"], "b"), (
                "no answer in the failed AZ is in an answer set"
            )
            await page.screenshot(out / "failed.png")
            assert seen - started <= detect

            # Hovering one of AZ b's cells on an aggregator names which checkers see it fail.
            aggregator = plan.aggregator_ids[0]
            await _open(page, f"{live.url(aggregator)}/ui", capacity, detect)
            slot = next(c["slot"] for c in live.document["checks"] if c.get("az") == "b")
            name = next(c["name"] for c in live.document["checks"] if c["slot"] == slot)
            await wait_until(
                await _page_shows(page, lambda d: d["byAz"]["b"]["failing"] > 0),
                detect,
                message="the aggregator's page showing AZ b failed",
            )
            where = await page.evaluate(f"window.urn.cellCenter({slot})")
            await page.call("Input.dispatchMouseEvent", type="mouseMoved", **where)

            async def explained() -> bool:
                tip = str(await page.evaluate("window.urn.tip()"))
                return name in tip and "failing at: checker-" in tip

            await wait_until(explained, page_lag, message=f"a tooltip explaining slot {slot}")
            await page.screenshot(out / "failed-aggregator-hover.png")

            # ...and so does the resolver's, relaying the in-force aggregator's view.
            await _open(page, f"{live.url(resolver)}/ui", capacity, detect)
            await wait_until(
                await _page_shows(page, lambda d: d["byAz"]["b"]["failing"] > 0),
                detect,
                message="the resolver's page showing AZ b failed",
            )
            where = await page.evaluate(f"window.urn.cellCenter({slot})")
            await page.call("Input.dispatchMouseEvent", type="mouseMoved", **where)
            await wait_until(explained, page_lag, message=f"the resolver explaining slot {slot}")
            await page.screenshot(out / "failed-resolver-hover.png")

            await live.set_mode("b", "healthy")

            async def resolver_recovered() -> bool:
                return _failing(await _status(live, resolver), b) == 0

            await wait_until(resolver_recovered, detect * 2, message="AZ b healthy again")
            await wait_until(
                await _page_shows(page, lambda d: d["byAz"]["b"]["failing"] == 0),
                page_lag,
                message=f"the page showing AZ b recovered within {page_lag:.2f}s",
            )
            await page.screenshot(out / "recovered.png")
            assert page.errors == [], page.errors
        finally:
            await browser_cm.__aexit__(None, None, None)


def _letters_of_az(live: LiveFleet, letters: str, az: str) -> str:
    """The record letters of every answer whose check is in `az`."""
    az_of = {c["slot"]: c.get("az") for c in live.document["checks"]}
    out = []
    at = 0
    for record in live.document["records"]:
        for answer in record["answers"]:
            if az_of.get(answer.get("check")) == az:
                out.append(letters[at])
            at += 1
    return "".join(out)
