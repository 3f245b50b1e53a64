"""The checker's status page snapshot: its own table, its push peers, a 15-minute timeline.

Owns: turning the checker's state after each push into the fixed-size snapshot of
urn.status, once per push interval, and the config side once per config pass.
Never: runs per probe, or changes what the checker probes or pushes.
Cost: O(capacity) array work per push interval, whatever the slots hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from urn.logs import get_logger
from urn.metrics import SlotAzs
from urn.status import (
    SNAPSHOT_VERSION,
    Timeline,
    checker_failing,
    encode,
    fixed_number,
    fixed_text,
    status_checks,
    table_b64,
    unhealthy_by_az,
)
from urn.statuspage import StatusCache, refresh_quietly, reshaped

if TYPE_CHECKING:
    from collections.abc import Sequence

    from checker.settings import CheckerSettings
    from urn.clock import Clock
    from urn.config import Document
    from urn.push import PushOutcome
    from urn.table import SlotArray

__all__ = ["CheckerStatus", "CheckerView"]

log = get_logger("checker")

PEER_WIDTH = 64
RESULT_WIDTH = 12


class CheckerView(Protocol):
    """What the snapshot reads of the checker service (checker.service.CheckerService)."""

    @property
    def settings(self) -> CheckerSettings: ...
    @property
    def document(self) -> Document: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def table_out(self) -> SlotArray: ...
    @property
    def probes_started(self) -> int: ...
    @property
    def stale_count(self) -> int: ...
    @property
    def last_push(self) -> Sequence[PushOutcome]: ...
    def ready(self) -> tuple[bool, dict[str, Any]]: ...


class CheckerStatus:
    """The checker's `StatusCache`, refreshed after every push."""

    def __init__(self, service: CheckerView) -> None:
        self.service = service
        self.cache = StatusCache()
        self._timeline: Timeline | None = None
        self._azs: SlotAzs | None = None
        self._document: Document | None = None
        self._probes = service.probes_started
        self._taken = 0

    def configure(self, document: Document) -> None:
        """Once per config pass: the AZs, the timeline's shape, the config side (a no-op
        for the very document already configured: the loader hands back the same one
        for unchanged bytes)."""
        if document is self._document:
            return
        self._document = document
        self._azs = SlotAzs.of(document)
        columns = ["probes_per_s", "stale_slots", "pushes_failed"] + [
            f"unhealthy:{az}" for az in self._azs.names
        ]
        self._timeline = reshaped(self._timeline, columns, document.intervals.push)
        self.cache.checks = status_checks(document, "checker", "checker")

    def refresh(self) -> None:
        """After each push: the snapshot of what just went out; never raises."""
        refresh_quietly(self._refresh, log)

    def _refresh(self) -> None:
        service = self.service
        timeline, azs = self._timeline, self._azs
        assert timeline is not None, "configure() comes first"
        assert azs is not None
        document = service.document
        capacity = document.capacity
        last = service.table_out[:capacity]  # the `last` plane of the table just pushed
        per_az = unhealthy_by_az(checker_failing(last), azs.index, len(azs.names))
        started = service.probes_started
        rate = (started - self._probes) / timeline.step
        self._probes = started
        failed = sum(o.result != "ok" for o in service.last_push)
        timeline.record([rate, service.stale_count, failed, *per_az])
        self._taken += 1
        results = {o.peer: o.result for o in service.last_push}
        ready, facts = service.ready()
        body: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "role": "checker",
            "kind": "checker",
            "id": service.settings.id,
            "az": service.settings.az,
            "capacity": capacity,
            "push_interval": document.intervals.push,
            "digest": document.digest.hex(),
            "snapshot": fixed_number(self._taken, 12),
            "at": fixed_number(service.clock.time(), 17, 3),
            "ready": "1" if ready else "0",
            "checks": fixed_number(facts["checks"], 7),
            "stale_slots": fixed_number(service.stale_count, 7),
            "unhealthy_by_az": [fixed_number(n, 7) for n in per_az],
            "table": table_b64(last, capacity),
            "peers": [
                [fixed_text(peer, PEER_WIDTH), fixed_text(results.get(peer, ""), RESULT_WIDTH)]
                for peer in document.aggregators
            ],
            "timeline": timeline.encoded(),
        }
        self.cache.snapshot = encode(body)
