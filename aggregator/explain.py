"""Why a slot has its status: the observations and rule behind one aggregated byte.

Owns: the JSON-ready explanation served at `GET /v1/slots/{slot}`: each fresh checker's
own verdict with its AZ, last probe, probe history and age, the rule (N-of-M and the
quorum), how the quorum came out and why, and the verdict with its dominant reason.
Never: decides anything itself beyond re-reading the inputs of the last tick; the
verdict shown is the byte the last tick pushed.
Cost: O(tables in the last tick) per request; never on the tick path.
"""

# urn: pure

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aggregator.autoshift import AutoshiftState
from aggregator.condition import checker_verdict
from urn.table import REASON_SHIFT, Reason, Status, status_of_byte

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aggregator.tick import Plan
    from aggregator.window import Entry
    from urn.config import Check
    from urn.table import SlotArray

__all__ = ["explain_slot", "value_label"]

NO_AUTOSHIFT = AutoshiftState()


def value_label(value: int) -> str:
    """The name of a checker `last` byte; a code no Reason names counts as an error."""
    if value <= int(Reason.STALE):
        return Reason(value).label
    return f"{Reason.ERROR.label} (code {value})"


def _verdict(byte: int) -> dict[str, Any]:
    status = status_of_byte(byte)
    raw = byte >> REASON_SHIFT
    reason = Reason(raw) if raw <= int(Reason.ERROR) else Reason.ERROR
    return {"status": status.label, "reason": reason.label if reason else None, "byte": byte}


def explain_slot(
    slot: int,
    *,
    check: Check | None,
    checks: dict[int, Check],
    table: SlotArray,
    entries: Sequence[Entry],
    plan: Plan,
    tick_at: float,
    now: float,
    staleness: float,
    autoshift: AutoshiftState = NO_AUTOSHIFT,
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
    rule = plan.thresholds.rule_of(slot)
    out["rule"] = rule
    checkers: list[dict[str, Any]] = []
    unhealthy_azs: set[str] = set()
    healthy_azs: set[str] = set()
    votes = unhealthy = 0
    for entry in entries:
        last, history = int(entry.last[slot]), int(entry.history[slot])
        changed = plan.drift.changed(entry.config_digest)
        ignored = changed is not None and bool(changed[slot])
        verdict = (
            Status.UNKNOWN
            if ignored
            else checker_verdict(last, history, check.failures, check.of_last)
        )
        if verdict is Status.UNHEALTHY:
            unhealthy_azs.add(entry.az)
        elif verdict is Status.HEALTHY:
            healthy_azs.add(entry.az)
        if verdict is not Status.UNKNOWN:
            votes += 1
            unhealthy += verdict is Status.UNHEALTHY
        row: dict[str, Any] = {
            "checker": entry.sender,
            "az": entry.az,
            "verdict": verdict.label,
            "last": value_label(last),
            "history": f"{history:08b}",
            "failed_of_last": bin(history & ((1 << check.of_last) - 1)).count("1"),
            "sequence": entry.sequence,
            "age": round(now - entry.received_at, 3),
        }
        if ignored:
            row["why_no_verdict"] = (
                "table made under a config where this slot probed another target"
            )
        elif verdict is Status.UNKNOWN:
            row["why_no_verdict"] = f"the checker reports {value_label(last)}"
        checkers.append(row)
    out["checkers"] = checkers
    out["quorum"] = _quorum_outcome(
        votes,
        unhealthy,
        unhealthy_azs,
        healthy_azs,
        rule,
        len(entries),
        plan.thresholds.needed(slot, votes),
    )
    if check.az is not None and plan.autoshift.rule.enabled:
        out["autoshift"] = autoshift_of(check.az, autoshift)
    return out


def autoshift_of(az: str, autoshift: AutoshiftState) -> dict[str, Any]:
    """Whether `az` is autoshifted, and the last tick's reasoning."""
    shares = autoshift.shares
    return {
        "az": az,
        "shifted": autoshift.az == az,
        "shifted_az": autoshift.az,
        # None too for an AZ a config pass added since the last tick
        "unhealthy_share": None
        if shares is None or az not in shares.azs
        else round(shares.share(az), 4),
        "reason": autoshift.reason,
    }


def _quorum_outcome(
    votes: int,
    unhealthy: int,
    unhealthy_azs: set[str],
    healthy_azs: set[str],
    rule: dict[str, Any],
    fresh: int,
    needed: float,
) -> dict[str, Any]:
    """How the verdicts combined, in words an operator can check by hand."""
    dissent = sorted(healthy_azs - unhealthy_azs)
    outcome: dict[str, Any] = {
        "fresh_checkers": fresh,
        "verdicts": votes,
        "unhealthy": unhealthy,
        "healthy": votes - unhealthy,
        "unhealthy_azs": sorted(unhealthy_azs),
        "healthy_azs": sorted(healthy_azs),
    }
    if votes == 0:
        outcome["outcome"] = "unknown: no fresh checker has a verdict on this slot"
    elif votes < rule["min_checkers"]:
        outcome["outcome"] = (
            f"unknown: {votes} verdicts, fewer than min_checkers {rule['min_checkers']}"
        )
    elif unhealthy < needed:
        outcome["outcome"] = (
            f"healthy: {unhealthy} of {votes} unhealthy, fewer than "
            f"unhealthy_at {rule['unhealthy_at']:g} of them"
        )
    elif rule["cross_az"] and len(unhealthy_azs) < 2 and dissent:
        outcome["outcome"] = (
            f"healthy: only AZ {', '.join(sorted(unhealthy_azs))} judges it unhealthy while"
            f" AZ {', '.join(dissent)} judges it healthy"
        )
    else:
        outcome["outcome"] = f"unhealthy: {unhealthy} of {votes} checkers judge it unhealthy"
    return outcome
