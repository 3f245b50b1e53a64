"""The status snapshot every role serves at `/v1/status`, and the config data beside it.

Owns: the fixed-width encodings of one role's state for its status page (urn/ui): the
whole table as base64 of its slot bytes, fixed-length rows (checkers, aggregators, push
peers) padded to `ROWS_*`, every number in a fixed-width text form, a `Timeline` ring
buffer of the last 15 minutes sampled once per push interval, and the per-record answer
states of a resolver (`RecordStates`). `status_checks` builds the config side (each
slot's check name, target and AZ, the records' names and values) once per config pass.
Never: reads clocks or sockets, or runs per query; a snapshot is built once per push
interval and served as the same bytes to every viewer.
Cost: O(capacity + candidates) array work per snapshot, the same whatever the health;
its encoded size depends on the config and the role alone (`tests/unit/urn/test_status.py`
holds it so across random tables).
"""

# urn: pure

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from urn.config import Policy
from urn.config.levers import format_time
from urn.table import REASON_SHIFT, STATUS_MASK, Reason, Status, is_failure

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    import numpy.typing as npt

    from urn.config import Check, Document
    from urn.table import SlotArray

__all__ = [
    "ID_WIDTH",
    "ROWS_AGGREGATORS",
    "ROWS_CHECKERS",
    "SNAPSHOT_VERSION",
    "TIMELINE_SECONDS",
    "RecordStates",
    "Roster",
    "Timeline",
    "aggregate_failing",
    "checker_failing",
    "encode",
    "fixed_number",
    "fixed_text",
    "status_checks",
    "table_b64",
    "unhealthy_by_az",
]

SNAPSHOT_VERSION = 1
TIMELINE_SECONDS = 900.0  # the ring buffer spans the last 15 minutes
ROWS_CHECKERS = 64  # checker rows an aggregator's snapshot always carries
ROWS_AGGREGATORS = 16  # aggregator rows a resolver's snapshot always carries
ID_WIDTH = 32  # ids are at most 32 bytes (CheckerSettings, the wire envelope)
AZ_WIDTH = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")


def fixed_text(value: str, width: int) -> str:
    """`value` in exactly `width` characters that JSON writes as they are (padded, cut)."""
    return _UNSAFE.sub("?", value)[:width].ljust(width)


def fixed_number(value: float | None, width: int, decimals: int = 0) -> str:
    """`value` right-aligned in exactly `width` characters, saturating at the widest value
    that fits (all nines); blank when None or not finite. Integers print exactly."""
    if value is None or not math.isfinite(value):
        return " " * width
    if isinstance(value, int) and not decimals:
        text = f"{value:{width}d}"
    else:
        text = f"{value:{width}.{decimals}f}"
    if len(text) <= width:
        return text
    digits = width - (decimals + 1 if decimals else 0)
    fraction = "." + "9" * decimals if decimals else ""
    return "9" * digits + fraction if value > 0 else "-" + "9" * (digits - 1) + fraction


def table_b64(table: SlotArray | bytes | None, capacity: int) -> str:
    """The slot bytes as base64; `capacity` zero bytes (all unknown) when there is none."""
    if table is None:
        raw = bytes(capacity)
    elif isinstance(table, bytes):
        raw = table
    else:
        raw = np.asarray(table, dtype=np.uint8).tobytes()
    if len(raw) != capacity:
        raise ValueError(f"{len(raw)} slot bytes, not {capacity}")
    return base64.b64encode(raw).decode("ascii")


def encode(body: Mapping[str, Any]) -> bytes:
    """The snapshot's bytes: compact JSON, ASCII only."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def unhealthy_by_az(failing: npt.NDArray[np.bool_], az_index: SlotArray, azs: int) -> list[int]:
    """Failing slots counted per AZ index (slots without an AZ are not counted)."""
    counts = np.bincount(az_index[failing], minlength=256)[:azs]
    return [int(c) for c in counts]


def aggregate_failing(table: SlotArray) -> npt.NDArray[np.bool_]:
    """Slots an aggregated table marks unhealthy."""
    failing: npt.NDArray[np.bool_] = (table & STATUS_MASK) == Status.UNHEALTHY
    return failing


_FAILURE_CODES = np.array([is_failure(v) for v in range(256)], dtype=np.bool_)


def checker_failing(last: SlotArray) -> npt.NDArray[np.bool_]:
    """Slots a checker's `last` plane reports as a target failure."""
    failing: npt.NDArray[np.bool_] = _FAILURE_CODES[last]
    return failing


class Timeline:
    """A fixed ring of `length` samples of `columns` float32 values, one per push interval.

    `encoded()` is base64 of a `columns x length` little-endian float32 array, oldest
    sample first; rows not yet sampled are NaN. Its size is fixed at construction.
    """

    def __init__(self, columns: Sequence[str], step: float, seconds: float = TIMELINE_SECONDS):
        if step <= 0:
            raise ValueError(f"timeline step {step} must be positive")
        self.columns = tuple(columns)
        self.step = step
        self.length = max(1, math.ceil(seconds / step))
        self._data = np.full((len(self.columns), self.length), np.nan, dtype="<f4")
        self._next = 0
        self.filled = 0

    def record(self, values: Sequence[float]) -> None:
        """Append one sample (one value per column), overwriting the oldest when full."""
        if len(values) != len(self.columns):
            raise ValueError(f"{len(values)} values for {len(self.columns)} columns")
        limit = float(np.finfo(np.float32).max)  # a value past float32's range saturates
        self._data[:, self._next] = np.clip(np.asarray(values, dtype=np.float64), -limit, limit)
        self._next = (self._next + 1) % self.length
        self.filled = min(self.filled + 1, self.length)

    def resized(self, columns: Sequence[str], step: float) -> Timeline:
        """This timeline for new columns or step: the same one if unchanged, else a new one
        keeping the newest samples of the columns both have."""
        if tuple(columns) == self.columns and step == self.step:
            return self
        other = Timeline(columns, step)
        ordered = self.ordered()
        keep = min(self.filled, other.length)
        for i, name in enumerate(other.columns):
            if name in self.columns and keep:
                other._data[i, other.length - keep :] = ordered[self.columns.index(name), -keep:]
        other._next = 0
        other.filled = keep
        return other

    def ordered(self) -> npt.NDArray[np.float32]:
        """The samples oldest first (a copy)."""
        ordered: npt.NDArray[np.float32] = np.roll(self._data, -self._next, axis=1)
        return ordered

    def encoded(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "length": self.length,
            "step": self.step,
            "filled": fixed_number(self.filled, 7),
            "data": base64.b64encode(self.ordered().tobytes()).decode("ascii"),
        }


@dataclass(slots=True)
class _Seen:
    az: str
    sequence: int
    received_at: float
    digest: bytes


class Roster:
    """The senders a receiver has heard from, as a fixed number of rows for the snapshot.

    Remembers each sender's newest table (az, sequence, receive time, config digest); a
    sender not heard from for `forget_after` is dropped, and past `rows` the one heard
    from longest ago goes. `expected` (an allow-list) are always listed, heard or not.
    """

    def __init__(self, rows: int, forget_after: float) -> None:
        self.rows = rows
        self.forget_after = forget_after
        self.expected: tuple[str, ...] = ()
        self._seen: dict[str, _Seen] = {}

    def saw(self, sender: str, az: str, sequence: int, received_at: float, digest: bytes) -> None:
        self._seen[sender] = _Seen(az, sequence, received_at, digest)

    def encoded(
        self, now: float, staleness: float, digest: bytes, used: Iterable[str] = ()
    ) -> list[list[str]]:
        """`rows` rows `[id, az, fresh, age, sequence, digest matches, used]`, each field of
        a fixed width (fresh, matches and used are "1" or "0"); blank rows pad the list."""
        for sender in [s for s, v in self._seen.items() if now - v.received_at > self.forget_after]:
            del self._seen[sender]
        while len(self._seen) > self.rows:
            del self._seen[min(self._seen, key=lambda s: self._seen[s].received_at)]
        used = set(used)
        names = sorted(set(self._seen) | set(self.expected))[: self.rows]
        out = []
        for name in names:
            seen = self._seen.get(name)
            if seen is None:
                out.append(_row(name, "", None, None, None, None, used=False))
                continue
            age = now - seen.received_at
            out.append(
                _row(
                    name,
                    seen.az,
                    age <= staleness,
                    age,
                    seen.sequence,
                    seen.digest == digest,
                    used=name in used,
                )
            )
        out.extend(_BLANK_ROW for _ in range(self.rows - len(out)))
        return out


def _flag(value: bool | None) -> str:
    return " " if value is None else "1" if value else "0"


def _row(
    name: str,
    az: str,
    fresh: bool | None,
    age: float | None,
    sequence: int | None,
    matches: bool | None,
    *,
    used: bool,
) -> list[str]:
    return [
        fixed_text(name, ID_WIDTH),
        fixed_text(az, AZ_WIDTH),
        _flag(fresh),
        fixed_number(age, 9, 3),
        fixed_number(sequence, 20),
        _flag(matches),
        _flag(used if name else None),
    ]


_BLANK_ROW = _row("", "", None, None, None, None, used=False)

# Per-candidate state letters of a resolver's records: lower case = not in the answer
# set now, upper case = in it. h healthy, u unhealthy, k unknown, n no check, x a status
# byte no Status names.
_STATE_LETTERS = np.frombuffer(b"khuxn", dtype=np.uint8)  # by status, then "no check"
_UPPER = np.uint8(ord("a") - ord("A"))
RECORD_FLAGS = {
    "ok": ".",
    "fail_open": "F",
    "all_down": "D",
    "no_answer": "-",
    "panic": "P",
    "shift_ignored": "S",
}


class RecordStates:
    """Every record's candidates as flat arrays, built once per config pass; `encoded`
    turns what queries read into one letter per candidate and one flag per record.

    A candidate is in the answer set when its policy could pick it now, as it counts it
    (`counted_down`, after the operator levers: resolver.levers): simple and multivalue,
    every one counted healthy (multivalue answers up to 8 of them at random); weighted,
    every healthy one of weight above 0, else the healthy weight-0 ones; failover, the
    primary while healthy, else the secondary while healthy. The record's flag is the one
    its lever mode gives (fail-open F, all down D, panic P, shift ignored S), else `-`
    when nothing answers and `.` when something does.
    """

    def __init__(
        self,
        records: Sequence[tuple[Policy, Sequence[tuple[int | None, int, str | None]]]],
        capacity: int,
    ) -> None:
        slots: list[int] = []
        weights: list[int] = []
        starts: list[int] = []
        kinds: list[int] = []
        primary: list[int] = []
        secondary: list[int] = []
        for policy, answers in records:
            start = len(slots)
            starts.append(start)
            kinds.append(_POLICY_CODES[policy])
            roles = [role for _, _, role in answers]
            primary.append(start + (roles.index("primary") if "primary" in roles else 0))
            secondary.append(start + (roles.index("secondary") if "secondary" in roles else 0))
            for slot, weight, _ in answers:
                slots.append(capacity if slot is None else slot)
                weights.append(weight)
        self.capacity = capacity
        self.records = len(starts)
        self.slots = np.array(slots, dtype=np.intp)
        self.weights = np.array(weights, dtype=np.int64)
        self.starts = np.array(starts, dtype=np.intp)
        counts = np.diff(np.append(self.starts, len(slots)))
        self.owner = np.repeat(np.arange(self.records), counts)
        self.policy = (
            np.array(kinds, dtype=np.uint8)[self.owner] if slots else np.zeros(0, np.uint8)
        )
        self.primary = np.array(primary, dtype=np.intp)
        self.secondary = np.array(secondary, dtype=np.intp)
        self.no_check = self.slots == capacity

    def encoded(
        self,
        table: SlotArray | None,
        counted_down: npt.NDArray[np.bool_],
        record_flags: npt.NDArray[np.uint8],
    ) -> tuple[str, str, int]:
        """(one letter per candidate, one flag per record, records failing open now).

        `table` is the aggregated table as queries read it (None: all unknown);
        `counted_down` each candidate as its policy counts it now, in record order;
        `record_flags` each record's flag from its lever mode (`.`: none).
        """
        if not self.records or not len(self.slots):
            return "", "-" * self.records, 0
        if table is None:
            status = np.zeros(len(self.slots), dtype=np.uint8)
        else:
            padded = np.append(np.asarray(table, dtype=np.uint8), np.uint8(Status.HEALTHY))
            status = (padded[self.slots] & STATUS_MASK).astype(np.uint8)
        up = ~np.asarray(counted_down, dtype=np.bool_)
        chosen = up.copy()
        weighted = self.policy == _POLICY_CODES[Policy.WEIGHTED]
        if weighted.any():
            positive = up & (self.weights > 0)
            any_positive = np.logical_or.reduceat(positive, self.starts)[self.owner]
            chosen = np.where(
                weighted, np.where(any_positive, positive, up & (self.weights == 0)), chosen
            )
        failover = self.policy == _POLICY_CODES[Policy.FAILOVER]
        if failover.any():
            pick = np.full(len(self.slots), False)
            primary_up = up[self.primary]
            secondary_up = up[self.secondary] & ~primary_up
            pick[self.primary[primary_up]] = True
            pick[self.secondary[secondary_up]] = True
            chosen = np.where(failover, pick, chosen)
        letters = _STATE_LETTERS[np.where(self.no_check, 4, status)].copy()
        letters[chosen] -= _UPPER
        answering = np.logical_or.reduceat(chosen, self.starts)
        flags = np.full(self.records, ord("."), dtype=np.uint8)
        flags[~answering] = ord("-")
        given = np.asarray(record_flags, dtype=np.uint8)
        flags = np.where(given == ord("."), flags, given).astype(np.uint8)
        opened = int((flags == ord("F")).sum())
        return letters.tobytes().decode("ascii"), flags.tobytes().decode("ascii"), opened

    @classmethod
    def of(cls, document: Document) -> RecordStates:
        return cls(
            [
                (record.policy, [(a.check, a.weight, a.role) for a in record.answers])
                for record in document.records
            ],
            document.capacity,
        )


_POLICY_CODES = {policy: i for i, policy in enumerate(Policy)}


def _target(check: Check) -> str:
    if not check.is_probed:
        return "calculated: " + ",".join(str(c) for c in check.children)
    if str(check.type) in ("http", "https"):
        return f"{check.type}://{check.host}:{check.port}{check.path}"
    return f"{check.type}://{check.host}:{check.port}"


def _levers(check: Check) -> str:
    """A check's levers as the page shows them; whether an override is still in force
    the page tells from its expiry and the snapshot's time."""
    parts = ["inverted"] if check.invert else []
    if check.override is not None:
        override = check.override
        parts.append(
            f"override {override.status} until {format_time(override.until)}: {override.reason}"
        )
    return "; ".join(parts)


def status_checks(document: Document, role: str, kind: str) -> bytes:
    """`/v1/status/checks`: what the page needs from the config, built once per pass.

    Each configured slot's check (name, type, target, AZ, levers), the AZ names, the
    zonal shifts (AZ, until, reason), the records
    (name, type, policy and each answer's value, slot, weight and role, in the order of
    a snapshot's record letters), and the legend of slot bytes for `kind` ("checker":
    a Reason per byte; "aggregate": status in bits 0-1, reason in bits 2-7).
    """
    azs = sorted({c.az for c in document.checks if c.az is not None})
    body = {
        "v": SNAPSHOT_VERSION,
        "role": role,
        "kind": kind,
        "capacity": document.capacity,
        "digest": document.digest.hex(),
        "push_interval": document.intervals.push,
        "azs": azs,
        "checks": [
            [c.slot, c.name, str(c.type), _target(c), c.az or "", _levers(c)]
            for c in sorted(document.checks, key=lambda c: c.slot)
        ],
        "shifts": [[s.az, format_time(s.until), s.reason] for s in document.shifts],
        "records": [
            [
                r.name,
                str(r.type),
                str(r.policy),
                [[a.value, a.check, a.weight, a.role] for a in r.answers],
            ]
            for r in document.records
        ],
        "legend": {
            "reasons": [r.label for r in Reason],
            "statuses": [s.label for s in Status],
            "reason_shift": REASON_SHIFT,
            "status_mask": STATUS_MASK,
            "record_letters": "h healthy, u unhealthy, k unknown, n no check; upper case: in"
            " the answer set now",
            "record_flags": RECORD_FLAGS,
        },
    }
    return encode(body)
