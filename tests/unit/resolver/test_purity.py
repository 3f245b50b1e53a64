"""The per-query modules never import dnspython at module level (purity itself:
tests/unit/test_purity.py, through their `# urn: pure` markers)."""

from __future__ import annotations

from pathlib import Path

import resolver


def test_hot_path_does_not_use_dnspython() -> None:
    for module in ("answer.py", "dnsmsg.py", "policy.py"):
        source = (Path(resolver.__file__).parent / module).read_text()
        top_level = [
            line for line in source.splitlines() if line.startswith(("import dns", "from dns"))
        ]
        assert not top_level, f"{module} imports dnspython at module level: {top_level}"
