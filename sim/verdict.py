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

A partial failure (some of an AZ's targets die, the rest live on) is judged by the
answer values that died (`dead`): only they are excused while down, so a live answer
of the same AZ that goes missing is a drop. `came_back` says when each name served its
returning answers again.
"""

# urn: pure

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sim.scenario import attribute

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

__all__ = ["Verdict", "came_back", "judge"]


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


def _dead_test(dead_az: str, dead: Collection[str] | None) -> Callable[[str], bool]:
    if dead is None:
        return lambda value: _az(value) == dead_az
    return dead.__contains__


def judge(
    records: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[Seen]],
    *,
    dead_az: str,
    failed_at: float,
    restored_at: float,
    bound: float,
    settle: float,
    dead: Collection[str] | None = None,
) -> Verdict:
    """Judge every record that has a dead answer: one in `dead_az`, or among `dead`.

    `bound`: seconds after the failure by which no dead answer may be served.
    `settle`: seconds after the restore during which a returning answer's absence is
    excused (it is healthy again but not yet known to be).
    `dead`: the answer values that died, when not the whole of `dead_az` did.
    """
    is_dead = _dead_test(dead_az, dead)
    verdict = Verdict()
    for record in records:
        name = record["name"]
        seen = history.get(name, ())
        verdict.queries += len(seen)
        if any(is_dead(a["value"]) for a in record["answers"]):
            _detection(verdict, name, record, seen, is_dead, failed_at, restored_at, bound)
        for observation in seen:
            down = failed_at <= observation.at < restored_at + settle
            missing = _missing_healthy(record, observation, is_dead if down else None)
            if missing:
                verdict.healthy_dropped += missing
                if len(verdict.dropped_examples) < 5:
                    when = observation.at - failed_at
                    answers = sorted(observation.answers)
                    verdict.dropped_examples.append(f"{name} at {when:+.2f}s: {answers}")
    return verdict


def came_back(
    records: Sequence[Mapping[str, Any]],
    history: Mapping[str, Sequence[Seen]],
    *,
    dead_az: str,
    restored_at: float,
    dead: Collection[str] | None = None,
) -> tuple[dict[str, float], list[str]]:
    """Seconds from `restored_at` until each name whose every answer held a dead value
    (`_always_served`) served all its dead values again; and the names that never did."""
    is_dead = _dead_test(dead_az, dead)
    back: dict[str, float] = {}
    never: list[str] = []
    for record in records:
        values = {a["value"] for a in record["answers"] if is_dead(a["value"])}
        if not values or not _always_served(record, is_dead):
            continue
        if record["policy"] == "failover":
            values = {a["value"] for a in record["answers"] if a.get("role") == "primary"}
        name = record["name"]
        first = next(
            (o.at for o in history.get(name, ()) if o.at >= restored_at and values <= o.answers),
            None,
        )
        if first is None:
            never.append(name)
        else:
            back[name] = first - restored_at
    return back, never


def _detection(
    verdict: Verdict,
    name: str,
    record: Mapping[str, Any],
    seen: Sequence[Seen],
    is_dead: Callable[[str], bool],
    failed_at: float,
    restored_at: float,
    bound: float,
) -> None:
    during = [o for o in seen if failed_at <= o.at < restored_at]
    if not during:
        return
    dead = [o.at for o in during if any(is_dead(v) for v in o.answers)]
    verdict.dead_after_bound += sum(1 for at in dead if at - failed_at > bound)
    if dead and dead[-1] >= during[-1].at:
        verdict.never_turned.append(name)
    elif _always_served(record, is_dead):
        verdict.detection[name] = (dead[-1] if dead else failed_at) - failed_at
    else:
        verdict.unmeasured.append(name)
    if record["policy"] in ("multivalue", "simple"):
        back = [o.at for o in seen if o.at >= restored_at and any(is_dead(v) for v in o.answers)]
        if back:
            verdict.recovery[name] = back[0] - restored_at


def _always_served(record: Mapping[str, Any], is_dead: Callable[[str], bool]) -> bool:
    """Whether every answer for `record` holds its dead value while that target lives."""
    policy = record["policy"]
    if policy in ("multivalue", "simple"):
        return True
    if policy == "failover":
        primary = next(a["value"] for a in record["answers"] if a.get("role") == "primary")
        return is_dead(primary)
    return False


def _missing_healthy(
    record: Mapping[str, Any], seen: Seen, is_dead: Callable[[str], bool] | None
) -> int:
    """How many healthy answers one response lacks (dead answers excused, when given)."""
    if seen.rcode != 0:
        return 1
    live = {a["value"] for a in record["answers"] if is_dead is None or not is_dead(a["value"])}
    policy = record["policy"]
    if policy in ("multivalue", "simple"):
        return len(live - seen.answers)
    if policy == "failover":
        primary = next(a["value"] for a in record["answers"] if a.get("role") == "primary")
        return int(primary in live and primary not in seen.answers)
    # weighted: one answer; it must exist and, while a live answer exists, be live
    if not seen.answers:
        return 1
    return int(bool(live) and not (seen.answers & live) and is_dead is None)
