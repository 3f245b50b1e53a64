"""The pure cores import nothing that does I/O (an import-linter in one test)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import checker

PURE = ["assign.py", "schedule.py", "classify.py", "settings.py"]
FORBIDDEN = {"asyncio", "aiohttp", "socket", "uvloop", "selectors"}


@pytest.mark.parametrize("name", PURE)
def test_pure_core_imports_no_io(name: str):
    path = Path(checker.__file__).parent / name
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{name} imports {imported & FORBIDDEN}"
