"""When each check is probed within the interval: a stable offset per (checker, slot).

Pure. The interval is cut into buckets; a check is probed at the start of its bucket
every interval, so the probe rate is flat and the schedule never depends on health.
"""

# urn: pure

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["buckets_for"]


def buckets_for(checker_id: str, slots: Iterable[int], count: int) -> list[list[int]]:
    """Split `slots` into `count` buckets by a hash of the checker id and the slot."""
    buckets: list[list[int]] = [[] for _ in range(count)]
    seed = checker_id.encode() + b"/"
    for slot in slots:
        buckets[zlib.crc32(seed + str(slot).encode()) % count].append(slot)
    return buckets
