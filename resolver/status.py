"""The resolver's status page snapshot: the table in force, the aggregators, the records.

Owns: turning the resolver's state into the fixed-size snapshot of urn.status once per
push interval (its own loop, off the per-query path), and the config side and the
records' flat arrays (`RecordStates`) once per config pass.
Never: runs per query, or changes what queries read.
Cost: O(capacity + candidates) array work plus O(aggregators) per push interval,
whatever the slots hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from resolver.levers import MODES, census
from urn.logs import get_logger
from urn.metrics import SlotAzs
from urn.status import (
    ROWS_AGGREGATORS,
    SNAPSHOT_VERSION,
    RecordStates,
    Roster,
    Timeline,
    aggregate_failing,
    encode,
    fixed_number,
    fixed_text,
    status_checks,
    table_b64,
    unhealthy_by_az,
)
from urn.statuspage import StatusCache, refresh_quietly, reshaped

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy.typing as npt

    from resolver.answer import Responder
    from resolver.health import ReceivedTable
    from resolver.records import Compiled
    from resolver.settings import ResolverSettings
    from urn.clock import Clock
    from urn.config import Document
    from urn.table import SlotArray

__all__ = ["FORGET_AFTER", "ResolverStatus", "ResolverView"]

log = get_logger("resolver")

FORGET_AFTER = 900.0  # an aggregator silent this long leaves the page's list
STATE_WIDTH = 12
# Each lever mode's record flag (urn.status.RECORD_FLAGS); "." lets the answer set decide.
_MODE_FLAGS = np.frombuffer(b"..SSPPPPFFDDD", dtype=np.uint8)
assert len(_MODE_FLAGS) == MODES


class ResolverView(Protocol):
    """What the snapshot reads of the resolver service (resolver.service.ResolverService)."""

    @property
    def settings(self) -> ResolverSettings: ...
    @property
    def document(self) -> Document: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def tables(self) -> Mapping[str, ReceivedTable]: ...
    @property
    def queries_total(self) -> int: ...
    @property
    def responder(self) -> Responder: ...
    @property
    def table_as_read(self) -> SlotArray | None: ...
    @property
    def answering(self) -> ReceivedTable | None: ...
    @property
    def state(self) -> str: ...
    def table_age(self) -> float | None: ...
    def flush_metrics(self) -> None: ...
    def ready(self) -> tuple[bool, dict[str, Any]]: ...


class ResolverStatus:
    """The resolver's `StatusCache`, refreshed once per push interval."""

    def __init__(self, service: ResolverView) -> None:
        self.service = service
        self.cache = StatusCache()
        self.roster = Roster(ROWS_AGGREGATORS, FORGET_AFTER)
        self._timeline: Timeline | None = None
        self._azs: SlotAzs | None = None
        self._records: RecordStates | None = None
        self._document: Document | None = None
        self._compiled: Compiled | None = None
        self._record_entries: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._record_candidates: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        self._queries = 0
        self._fail_open = 0
        self._taken = 0

    def configure(self, document: Document) -> None:
        """Once per config pass (a no-op for the very document already configured)."""
        if document is self._document:
            return
        self._document = document
        self._azs = SlotAzs.of(document)
        self._records = RecordStates.of(document)
        columns = ["queries_per_s", "fail_open_answers", "table_age"] + [
            f"unhealthy:{az}" for az in self._azs.names
        ]
        self._timeline = reshaped(self._timeline, columns, document.intervals.push)
        self.roster.expected = document.senders.aggregators or ()
        self.cache.checks = status_checks(document, "resolver", "aggregate")

    def index(self, compiled: Compiled) -> None:
        """Where the document's records sit among `compiled`'s entries and candidates;
        once per compile (a no-op for the very records already indexed)."""
        if compiled is self._compiled:
            return
        self._compiled = compiled
        entries = np.asarray(compiled.record_entries, dtype=np.intp)
        starts, sizes = compiled.levers.starts[entries], compiled.levers.sizes[entries]
        self._record_entries = entries
        self._record_candidates = (
            np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
        ).astype(np.intp)

    def refresh(self) -> None:
        """Once per push interval: the snapshot of what queries read now; never raises."""
        refresh_quietly(self._refresh, log)

    def _refresh(self) -> None:
        service = self.service
        self.configure(service.document)
        timeline, azs, records = self._timeline, self._azs, self._records
        assert timeline is not None
        assert azs is not None
        assert records is not None
        document = service.document
        capacity = document.capacity
        now = service.clock.monotonic()
        for sender, held in service.tables.items():
            self.roster.saw(sender, held.az, held.sequence, held.received_at, held.digest)
        service.flush_metrics()  # folds the query tallies into queries_total
        queries = service.queries_total
        opened = service.responder.fail_open_answers
        table = service.table_as_read
        per_az = (
            [0] * len(azs.names)
            if table is None
            else unhealthy_by_az(aggregate_failing(table), azs.index, len(azs.names))
        )
        age = service.table_age()
        timeline.record(
            [
                (queries - self._queries) / timeline.step,
                opened - self._fail_open,
                float("nan") if age is None else age,
                *per_az,
            ]
        )
        self._queries, self._fail_open = queries, opened
        self._taken += 1
        responder = service.responder
        self.index(responder.compiled)
        decision = responder.decision
        modes = np.frombuffer(decision.modes, dtype=np.uint8)[self._record_entries]
        letters, flags, failing_open = records.encoded(
            table, decision.counted_down[self._record_candidates], _MODE_FLAGS[modes]
        )
        levers = census(decision)
        answering = service.answering
        body: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "role": "resolver",
            "kind": "aggregate",
            "id": service.settings.id,
            "capacity": capacity,
            "push_interval": document.intervals.push,
            "digest": document.digest.hex(),
            "snapshot": fixed_number(self._taken, 12),
            "at": fixed_number(service.clock.time(), 17, 3),
            "ready": "1" if service.ready()[0] else "0",
            "state": fixed_text(service.state, STATE_WIDTH),
            "held": "1" if service.state == "held" else "0",
            "fail_open": "1" if document.fail_open else "0",
            "records_failing_open": fixed_number(failing_open, 7),
            "shifted": "".join("1" if az in decision.shifted_azs else "0" for az in azs.names),
            "autoshifted": "".join(
                "1" if az in decision.autoshifted_azs and not decision.autoshift_overruled else "0"
                for az in azs.names
            ),
            "overrides_active": fixed_number(
                levers["override_healthy"] + levers["override_unhealthy"], 7
            ),
            "records_panicking": fixed_number(levers["panic"], 7),
            "records_ignoring_shift": fixed_number(levers["shift_ignored"], 7),
            "table_age": fixed_number(age, 9, 3),
            "unhealthy_by_az": [fixed_number(n, 7) for n in per_az],
            "table": table_b64(table, capacity),
            "aggregator_fields": ["id", "az", "fresh", "age", "sequence", "digest_matches", "used"],
            "aggregators": self.roster.encoded(
                now,
                document.max_table_age,
                document.digest,
                () if answering is None else (answering.sender,),
            ),
            "record_answers": letters,
            "record_flags": flags,
            "timeline": timeline.encoded(),
        }
        self.cache.snapshot = encode(body)
