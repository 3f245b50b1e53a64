"""Why a slot has its status: the observations and rule behind one aggregated byte.

Owns: the JSON-ready explanation served at `GET /v1/slots/{slot}`: which checkers'
tables were read, each one's value and reason and age, which of them N-of-M
considered, the N and M used, and the verdict with its dominant reason.
Never: decides anything itself beyond re-reading the inputs of the last tick; the
verdict shown is the byte the last tick pushed.
Cost: O(tables in the last tick) per request; never on the tick path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from urn.table import Reason, reason_of_byte, status_of_byte

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aggregator.window import Entry
    from urn.config import Check
    from urn.table import SlotArray

__all__ = ["explain_slot", "value_label"]


def value_label(value: int) -> str:
    """The name of a checker slot value; a code no Reason names counts as an error."""
    if value <= int(Reason.ERROR):
        return Reason(value).label
    return f"{Reason.ERROR.label} (code {value})"


def _verdict(byte: int) -> dict[str, Any]:
    status = status_of_byte(byte)
    reason = reason_of_byte(byte) if byte >> 2 <= int(Reason.ERROR) else Reason.ERROR
    return {"status": status.label, "reason": reason.label if reason else None, "byte": byte}


def explain_slot(
    slot: int,
    *,
    check: Check | None,
    checks: dict[int, Check],
    table: SlotArray,
    entries: Sequence[Entry],
    tick_at: float,
    now: float,
    staleness: float,
) -> dict[str, Any]:
    """The explanation of `slot` given the last tick's table and its fresh tables."""
    out: dict[str, Any] = {
        "slot": slot,
        "check": None if check is None else check.name,
        "type": None if check is None else str(check.type),
        "verdict": _verdict(int(table[slot])),
        "tick_age": round(now - tick_at, 3),
        "staleness": staleness,
    }
    if check is None:
        out["rule"] = "no check owns this slot: always unknown"
        return out
    if not check.is_probed:
        out["rule"] = {"healthy_if_at_least": check.healthy_if_at_least}
        out["children"] = [
            {
                "slot": child,
                "check": checks[child].name if child in checks else None,
                **_verdict(int(table[child])),
            }
            for child in check.children
        ]
        return out
    out["rule"] = {"failures": check.failures, "of_last": check.of_last}
    observations: list[dict[str, Any]] = []
    considered = failures = 0
    for entry in entries:
        value = int(entry.slots[slot])
        counted = value != 0 and considered < check.of_last
        if counted:
            considered += 1
            failures += value >= int(Reason.TIMEOUT)
        observations.append(
            {
                "checker": entry.sender,
                "az": entry.az,
                "sequence": entry.sequence,
                "value": value,
                "reason": value_label(value),
                "age": round(now - entry.received_at, 3),
                "considered": counted,
            }
        )
    out["considered"] = considered
    out["failures"] = failures
    out["checkers"] = sorted({e.sender for e in entries})
    out["observations"] = observations
    return out
