"""A status snapshot that cannot be built never stops the role's loop: logged, last kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from aggregator.status import AggregatorStatus
from checker.status import CheckerStatus
from resolver.status import ResolverStatus
from sim.testing import log_events

if TYPE_CHECKING:
    import io


def test_a_failed_snapshot_is_logged_and_the_last_one_stays(log_stream: io.StringIO) -> None:
    empty = cast("Any", type("View", (), {"probes_started": 0})())  # holds nothing else
    for status in (CheckerStatus(empty), AggregatorStatus(empty), ResolverStatus(empty)):
        before = status.cache.snapshot
        status.refresh()  # before configure(), over a service with nothing in it
        assert status.cache.snapshot == before
    events = [e for e in log_events(log_stream) if e.get("event") == "status_snapshot_failed"]
    assert len(events) == 3, log_events(log_stream)
