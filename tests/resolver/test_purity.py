"""Pure resolver cores import no event loop, HTTP or socket module (STYLE practice 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import resolver

PURE = ("records.py", "policy.py", "answer.py", "dnsmsg.py")
FORBIDDEN = {"asyncio", "aiohttp", "socket", "time", "uvloop"}


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module: str) -> None:
    path = Path(resolver.__file__).parent / module
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{module} imports {imported & FORBIDDEN}"
    assert "urn.http" not in path.read_text()


def test_hot_path_does_not_use_dnspython() -> None:
    for module in ("answer.py", "dnsmsg.py", "policy.py"):
        source = (Path(resolver.__file__).parent / module).read_text()
        top_level = [
            line for line in source.splitlines() if line.startswith(("import dns", "from dns"))
        ]
        assert not top_level, f"{module} imports dnspython at module level: {top_level}"
