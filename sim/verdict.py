"""Judging a failover from the query stream alone (pure: no I/O, no clock).

Given what the resolver answered for every name over time, when an AZ failed and when
it came back, this says how long each affected name kept answering with the dead AZ,
whether any dead answer came after the detection bound, and whether any healthy
answer was ever missing.

A detection time is taken only where every healthy answer held the dead AZ's value
(multivalue, simple, a failover whose primary died): there the last dead answer marks
when the resolver turned away. A weighted name serves the dead value only when its
draw picks it, and a failover name whose secondary died never served it, so their last
dead answer says nothing about when the resolver learned; they are still judged for
dead answers after the bound and for never turning away (`unmeasured` names them).
"""

# urn: pure

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sim.scenario import attribute

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = ["Verdict", "judge"]


class Seen(Protocol):
    @property
    def at(self) -> float: ...
    @property
    def answers(self) -> frozenset[str]: ...
    @property
    def rcode(self) -> int: ...


@dataclass
class Verdict:
    detection: dict[str, float] = field(default_factory=dict)  # name -> seconds
    recovery: dict[str, float] = field(default_factory=dict)
    never_turned: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)  # affected, no detection time
    dead_after_bound: int = 0
    healthy_dropped: int = 0
    dropped_examples: list[str] = field(default_factory=list)
    queries: int = 0

    @staticmethod
    def spread(values: Iterable[float]) -> dict[str, float]:
        data = sorted(values)
        if not data:
            return {}
        return {"min": data[0], "median": statistics.median(data), "max": data[-1]}

    @property
    def ok(self) -> bool:
        return (
            not self.never_turned
            and self.dead_after_bound == 0
            and self.healthy_dropped == 0
            and bool(self.detection)
        )


def _az(value: str) -> str | None:
    where = attribute(value)
    return where[0] if where else None


def judge(
    records: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[Seen]],
    *,
    dead_az: str,
    failed_at: float,
    restored_at: float,
    bound: float,
    settle: float,
) -> Verdict:
    """Judge every record that has an answer in `dead_az`.

    `bound`: seconds after the failure by which no dead answer may be served.
    `settle`: seconds after the restore during which a returning answer's absence is
    excused (it is healthy again but not yet known to be).
    """
    verdict = Verdict()
    for record in records:
        name = record["name"]
        seen = history.get(name, ())
        verdict.queries += len(seen)
        affected = any(_az(a["value"]) == dead_az for a in record["answers"])
        if affected:
            _detection(verdict, name, record, seen, dead_az, failed_at, restored_at, bound)
        for observation in seen:
            down = failed_at <= observation.at < restored_at + settle
            missing = _missing_healthy(record, observation, dead_az if down else None)
            if missing:
                verdict.healthy_dropped += missing
                if len(verdict.dropped_examples) < 5:
                    when = observation.at - failed_at
                    answers = sorted(observation.answers)
                    verdict.dropped_examples.append(f"{name} at {when:+.2f}s: {answers}")
    return verdict


def _detection(
    verdict: Verdict,
    name: str,
    record: Mapping[str, Any],
    seen: Sequence[Seen],
    dead_az: str,
    failed_at: float,
    restored_at: float,
    bound: float,
) -> None:
    during = [o for o in seen if failed_at <= o.at < restored_at]
    if not during:
        return
    dead = [o.at for o in during if any(_az(v) == dead_az for v in o.answers)]
    verdict.dead_after_bound += sum(1 for at in dead if at - failed_at > bound)
    if dead and dead[-1] >= during[-1].at:
        verdict.never_turned.append(name)
    elif _always_served(record, dead_az):
        verdict.detection[name] = (dead[-1] if dead else failed_at) - failed_at
    else:
        verdict.unmeasured.append(name)
    if record["policy"] in ("multivalue", "simple"):
        back = [
            o.at for o in seen if o.at >= restored_at and any(_az(v) == dead_az for v in o.answers)
        ]
        if back:
            verdict.recovery[name] = back[0] - restored_at


def _always_served(record: Mapping[str, Any], dead_az: str) -> bool:
    """Whether every answer for `record` holds its dead-AZ value while that AZ lives."""
    policy = record["policy"]
    if policy in ("multivalue", "simple"):
        return True
    if policy == "failover":
        primary = next(a["value"] for a in record["answers"] if a.get("role") == "primary")
        return _az(primary) == dead_az
    return False


def _missing_healthy(record: Mapping[str, Any], seen: Seen, dead_az: str | None) -> int:
    """How many healthy answers one response lacks (answers in `dead_az` excused)."""
    if seen.rcode != 0:
        return 1
    live = {a["value"] for a in record["answers"] if _az(a["value"]) != dead_az}
    policy = record["policy"]
    if policy in ("multivalue", "simple"):
        return len(live - seen.answers)
    if policy == "failover":
        primary = next(a["value"] for a in record["answers"] if a.get("role") == "primary")
        return int(primary in live and primary not in seen.answers)
    # weighted: one answer; it must exist and, while a live answer exists, be live
    if not seen.answers:
        return 1
    return int(bool(live) and not (seen.answers & live) and dead_az is None)
