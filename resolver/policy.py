"""Record policies: which of a name's candidate answers to give, from their health.

Owns: simple, multivalue, weighted and failover selection, and the shape of fail-open
(Route 53's rules): multivalue gives up to 8 of all answers, failover gives the primary,
weighted picks by weight among weight > 0 answers (weight 0 ones only when every weight > 0
answer is down, or all of them when every weight is 0).
Never: reads clocks, tables or sockets, or keeps state between queries. Randomness comes
from the `rng` passed in. Fail-open itself is decided by `answer.lookup` (and, by the same
rule, `answer.resolve` for explanations), which hands a chooser an all-healthy status
vector, so the same code path runs either way.
Cost: O(candidates) per call, whatever their health; choosers see a `down` vector (1 for
unhealthy, 0 otherwise) already read from the table for every candidate.
"""

# urn: pure

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Protocol, TypeVar

from urn.config import Policy

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

__all__ = [
    "CHOOSERS",
    "MULTIVALUE_MAX",
    "PERMUTATION_ROWS",
    "Choices",
    "Chooser",
    "balanced_permutations",
    "failover",
    "multivalue",
    "simple",
    "weighted",
]

MULTIVALUE_MAX = 8  # Route 53 answers a multivalue query with at most eight records
PERMUTATION_ROWS = 256  # about this many precomputed orders per answer count

T = TypeVar("T")


class Choices(Protocol):
    """What a policy reads of a compiled record (`resolver.records.Entry` is one)."""

    @property
    def order(self) -> tuple[int, ...]: ...
    @property
    def perms(self) -> tuple[tuple[int, ...], ...]: ...
    @property
    def weights(self) -> tuple[int, ...]: ...
    @property
    def primary(self) -> int: ...
    @property
    def secondary(self) -> int: ...


class Chooser(Protocol):
    def __call__(
        self, entry: Choices, down: Sequence[int], rng: random.Random, items: Sequence[T], /
    ) -> list[T]:
        """The chosen items (parallel to the record's candidates), in answer order."""


def simple(entry: Choices, down: Sequence[int], rng: random.Random, items: Sequence[T]) -> list[T]:
    """Every healthy answer, in configured order."""
    return [items[i] for i in entry.order if not down[i]]


def multivalue(
    entry: Choices, down: Sequence[int], rng: random.Random, items: Sequence[T]
) -> list[T]:
    """Up to 8 healthy answers in random order.

    The order is one row of `entry.perms`, a position-balanced table of random permutations
    drawn on each config pass (see `balanced_permutations`): one random index per query
    instead of a shuffle, which costs ten times more in CPython.
    """
    perms = entry.perms
    order = perms[int(rng.random() * len(perms))]
    return [items[i] for i in order if not down[i]][:MULTIVALUE_MAX]


def weighted(
    entry: Choices, down: Sequence[int], rng: random.Random, items: Sequence[T]
) -> list[T]:
    """One healthy answer chosen by weight; weight-0 answers only when no weight > 0 one is up."""
    total = 0
    cumulative: list[int] = []
    zero: list[int] = []
    for i, weight in enumerate(entry.weights):
        if not down[i]:
            if weight:
                total += weight
            else:
                zero.append(i)
        cumulative.append(total)
    if total:
        return [items[bisect_right(cumulative, rng.randrange(total))]]
    if zero:
        return [items[zero[rng.randrange(len(zero))]]]
    return []


def failover(
    entry: Choices, down: Sequence[int], rng: random.Random, items: Sequence[T]
) -> list[T]:
    """The primary while it is healthy, else the secondary while it is, else nothing."""
    primary, secondary = entry.primary, entry.secondary
    if not down[primary]:
        return [items[primary]]
    if not down[secondary]:
        return [items[secondary]]
    return []


CHOOSERS: dict[Policy, Chooser] = {
    Policy.SIMPLE: simple,
    Policy.MULTIVALUE: multivalue,
    Policy.WEIGHTED: weighted,
    Policy.FAILOVER: failover,
}


def balanced_permutations(n: int, rng: random.Random) -> tuple[tuple[int, ...], ...]:
    """Random permutations of range(n) in which every item sits at every position equally often.

    Each of m random shuffles is taken with all n rotations of its values, so that across
    the m*n rows each answer is first (second, ...) exactly m times: a client that takes the
    first answer spreads evenly over the healthy ones.
    """
    if n <= 1:
        return (tuple(range(n)),)
    shuffles = max(1, PERMUTATION_ROWS // n)
    rows: list[tuple[int, ...]] = []
    for _ in range(shuffles):
        base = list(range(n))
        rng.shuffle(base)
        rows.extend(tuple((value + shift) % n for value in base) for shift in range(n))
    return tuple(rows)
