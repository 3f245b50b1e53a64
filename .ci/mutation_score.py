"""Per-module mutation score from `mutmut results --all true` on stdin (make mutate).

A mutant counts as killed when the tests failed on it or it timed out; "not checked"
mutants (outside a narrowed run) are left out. The score is killed / checked. Mutants
judged equivalent are listed, with the reason, in docs/testing.md ("Mutation testing").
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

# `    checker.assign.x_shard_owners__mutmut_7: survived`; methods read `xǁClassǁmethod`.
LINE = re.compile(r"^\s*(?P<module>[\w.]+?)\.x[_ǁ]\S*__mutmut_\d+: (?P<status>.+?)\s*$")
KILLED = {"killed", "timeout", "caught by type check"}


def main() -> int:
    """Print a table: one row per module, then the total."""
    counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in sys.stdin:
        match = LINE.match(line)
        if match is None or match["status"] == "not checked":
            continue
        counts[match["module"]][match["status"]] += 1
    if not counts:
        print("mutation_score: no checked mutants in the input", file=sys.stderr)
        return 1
    rows = [*sorted(counts.items()), ("total", sum(counts.values(), Counter()))]
    head = ("module", "killed", "survived", "no tests", "other", "total")
    print(f"{head[0]:<26} {head[1]:>6} {head[2]:>8} {head[3]:>8} {head[4]:>5} {head[5]:>5}  score")
    for module, c in rows:
        killed = sum(c[s] for s in KILLED)
        total = sum(c.values())
        other = total - killed - c["survived"] - c["no tests"]
        print(
            f"{module:<26} {killed:>6} {c['survived']:>8} {c['no tests']:>8} {other:>5} "
            f"{total:>5}  {100 * killed / total:5.1f} %"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
