"""bench.viewers: the polls grouped by phase and URL, sizes of good answers only."""

from __future__ import annotations

from bench.viewers import Seen, sizes_by_phase


def test_sizes_by_phase_groups_polls_and_keeps_distinct_good_sizes() -> None:
    seen = [
        Seen(0.5, "r", 200, 100),
        Seen(0.7, "r", 200, 100),
        Seen(0.9, "a", 404, 14),
        Seen(1.5, "r", 200, 100),
        Seen(1.6, "r", 0, 0),
        Seen(1.7, "a", 200, 90),
        Seen(2.5, "r", 200, 100),  # after every phase
    ]
    out = sizes_by_phase(
        seen, {"steady": (0.0, 1.0), "failure": (1.0, 2.0)}, {"r": "resolver", "a": "aggregator"}
    )
    assert out["steady"]["resolver"] == {"polls": 2, "failed": 0, "sizes": [100]}
    assert out["steady"]["aggregator"] == {"polls": 1, "failed": 1, "sizes": []}
    assert out["failure"]["resolver"] == {"polls": 2, "failed": 1, "sizes": [100]}
    assert out["failure"]["aggregator"] == {"polls": 1, "failed": 0, "sizes": [90]}
