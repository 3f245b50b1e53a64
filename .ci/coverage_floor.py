"""Hold the combined coverage data (.coverage) to the floors in pyproject.toml.

Prints line and branch coverage for each measured package (`[tool.coverage.run] source`)
and for all of them together, then exits 1 if the total of either is below its floor
(`[tool.urn.coverage] lines` / `branches`, in percent). `make pytest` runs it after
`coverage combine`; `.venv/bin/coverage report` lists the missed lines file by file. The
data file is .coverage at the root, or $COVERAGE_FILE where that is set.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Tally:
    lines: int = 0
    lines_hit: int = 0
    branches: int = 0
    branches_hit: int = 0

    def add(self, summary: dict[str, int]) -> None:
        self.lines += summary["num_statements"]
        self.lines_hit += summary["covered_lines"]
        self.branches += summary.get("num_branches", 0)
        self.branches_hit += summary.get("covered_branches", 0)

    @property
    def line_percent(self) -> float:
        return 100.0 * self.lines_hit / self.lines if self.lines else 100.0

    @property
    def branch_percent(self) -> float:
        return 100.0 * self.branches_hit / self.branches if self.branches else 100.0

    def row(self, name: str) -> str:
        return (
            f"{name:<12} lines {self.lines_hit:>6}/{self.lines:<6} {self.line_percent:6.2f} %"
            f"   branches {self.branches_hit:>5}/{self.branches:<5} {self.branch_percent:6.2f} %"
        )


def main() -> int:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = config["tool"]["coverage"]["run"]["source"]
    floors: dict[str, float] = config["tool"]["urn"]["coverage"]
    data_file = os.environ.get("COVERAGE_FILE") or str(ROOT / ".coverage")
    cov = coverage.Coverage(data_file=data_file, config_file=str(ROOT / "pyproject.toml"))
    cov.load()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "coverage.json"
        cov.json_report(outfile=str(out))
        report = json.loads(out.read_text())
    tallies = {package: Tally() for package in packages}
    for path, entry in report["files"].items():
        where = Path(path)
        if where.is_absolute():
            where = where.relative_to(ROOT)
        package = where.parts[0]
        if package in tallies:
            tallies[package].add(entry["summary"])
    total = Tally()
    for package, tally in tallies.items():
        print(tally.row(package))
        total.add(
            {
                "num_statements": tally.lines,
                "covered_lines": tally.lines_hit,
                "num_branches": tally.branches,
                "covered_branches": tally.branches_hit,
            }
        )
    print(total.row("total"))
    failed = False
    for what, got in (("lines", total.line_percent), ("branches", total.branch_percent)):
        if got < floors[what]:
            print(f"coverage: {what} {got:.2f} % is below the floor of {floors[what]} %")
            failed = True
    if not failed:
        print(
            f"coverage: at or above the floors (lines {floors['lines']} %, "
            f"branches {floors['branches']} %)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
