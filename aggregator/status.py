"""The aggregator's status page snapshot: the aggregated table, its checkers, a timeline.

Owns: turning each tick's result into the fixed-size snapshot of urn.status, once per
push interval, and the config side once per config pass. The checker rows come from a
`Roster` fed from the window at every tick, so a checker that fell silent stays listed
(stale) until it has been silent for `FORGET_AFTER`.
Never: runs per received table, or changes what a tick computes or pushes.
Cost: O(capacity) array work plus O(checkers) per tick, whatever the slots hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from urn.logs import get_logger
from urn.metrics import SlotAzs
from urn.status import (
    ROWS_CHECKERS,
    SNAPSHOT_VERSION,
    Roster,
    Timeline,
    aggregate_failing,
    encode,
    fixed_number,
    status_checks,
    table_b64,
    unhealthy_by_az,
)
from urn.statuspage import StatusCache, refresh_quietly, reshaped
from urn.wire import AZ_BYTES

if TYPE_CHECKING:
    from aggregator.autoshift import AutoshiftState
    from aggregator.settings import AggregatorSettings
    from aggregator.window import Entry, Window
    from urn.clock import Clock
    from urn.config import Document
    from urn.table import SlotArray

__all__ = ["FORGET_AFTER", "AggregatorStatus", "AggregatorView"]

log = get_logger("aggregator")

FORGET_AFTER = 900.0  # a checker silent this long leaves the page's list


class AggregatorView(Protocol):
    """What the snapshot reads of the aggregator service (aggregator.service.Aggregator)."""

    @property
    def settings(self) -> AggregatorSettings: ...
    @property
    def document(self) -> Document: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def window(self) -> Window: ...
    @property
    def last_entries(self) -> list[Entry]: ...
    @property
    def built_by(self) -> tuple[int, int]: ...
    @property
    def table(self) -> SlotArray: ...
    @property
    def warming_up(self) -> bool: ...
    def ready(self) -> tuple[bool, dict[str, Any]]: ...
    @property
    def autoshift(self) -> AutoshiftState: ...


class AggregatorStatus:
    """The aggregator's `StatusCache`, refreshed after every tick's compute."""

    def __init__(self, service: AggregatorView) -> None:
        self.service = service
        self.cache = StatusCache()
        self.roster = Roster(ROWS_CHECKERS, FORGET_AFTER)
        self._timeline: Timeline | None = None
        self._azs: SlotAzs | None = None
        self._document: Document | None = None
        self._taken = 0

    def configure(self, document: Document) -> None:
        """Once per config pass: the AZs, the timeline's shape, the config side (a no-op
        for the very document already configured: the loader hands back the same one
        for unchanged bytes)."""
        if document is self._document:
            return
        self._document = document
        self._azs = SlotAzs.of(document)
        columns = ["fresh_checkers", "fresh_azs", "oldest_table_age"] + [
            f"unhealthy:{az}" for az in self._azs.names
        ]
        self._timeline = reshaped(self._timeline, columns, document.intervals.push)
        self.roster.expected = document.senders.checkers or ()
        self.cache.checks = status_checks(document, "aggregator", "aggregate")

    def refresh(self) -> None:
        """Once per tick, after compute: the snapshot of the table just computed; never raises."""
        refresh_quietly(self._refresh, log)

    def _refresh(self) -> None:
        service = self.service
        timeline, azs = self._timeline, self._azs
        assert timeline is not None, "configure() comes first"
        assert azs is not None
        document = service.document
        capacity = document.capacity
        now = service.clock.monotonic()
        window = service.window
        for sender in window.senders:
            kept = window.history(sender)
            if kept:
                newest = kept[-1]
                self.roster.saw(
                    sender, newest.az, newest.sequence, newest.received_at, newest.config_digest
                )
        entries = service.last_entries
        checkers, fresh_azs = service.built_by
        oldest = max((now - e.received_at for e in entries), default=float("nan"))
        table = service.table
        per_az = unhealthy_by_az(aggregate_failing(table), azs.index, len(azs.names))
        timeline.record([checkers, fresh_azs, oldest, *per_az])
        self._taken += 1
        body: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "role": "aggregator",
            "kind": "aggregate",
            "id": service.settings.id,
            "capacity": capacity,
            "push_interval": document.intervals.push,
            "digest": document.digest.hex(),
            "snapshot": fixed_number(self._taken, 12),
            "at": fixed_number(service.clock.time(), 17, 3),
            "ready": "1" if service.ready()[0] else "0",
            "warming_up": "1" if service.warming_up else "0",
            "fresh_checkers": fixed_number(checkers, 4),
            "fresh_azs": fixed_number(fresh_azs, 4),
            "unhealthy_by_az": [fixed_number(n, 7) for n in per_az],
            # padded like every field here, so the snapshot's size never moves
            "autoshift": (service.autoshift.az or "").ljust(AZ_BYTES),
            "table": table_b64(table, capacity),
            "checker_fields": ["id", "az", "fresh", "age", "sequence", "digest_matches", "used"],
            "checkers": self.roster.encoded(
                now, document.staleness, document.digest, (e.sender for e in entries)
            ),
            "timeline": timeline.encoded(),
        }
        self.cache.snapshot = encode(body)
