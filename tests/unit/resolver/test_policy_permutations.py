"""The multivalue order table's size: what every compiled record holds in memory (no I/O).

`balanced_permutations` draws about PERMUTATION_ROWS orders per record on each config pass.
A record with a single answer (the commonest) needs one order, not hundreds; one with more
answers than PERMUTATION_ROWS needs one shuffle and its rotations, not more.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from resolver.policy import PERMUTATION_ROWS, balanced_permutations


@pytest.mark.parametrize("n", [0, 1])
def test_zero_or_one_answer_has_exactly_one_order(n: int) -> None:
    assert balanced_permutations(n, random.Random(0)) == (tuple(range(n)),)


@pytest.mark.parametrize("n", [2, 3, 7, 8, 100, 256, 300, 1000])
def test_the_table_holds_about_permutation_rows_orders_and_stays_balanced(n: int) -> None:
    rows = balanced_permutations(n, random.Random(n))
    assert PERMUTATION_ROWS - n < len(rows) <= max(PERMUTATION_ROWS, n)
    assert len(rows) % n == 0  # whole sets of rotations
    firsts = Counter(row[0] for row in rows)
    assert len(firsts) == n
    assert len(set(firsts.values())) == 1
