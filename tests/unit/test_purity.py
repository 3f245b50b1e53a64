"""Pure cores import nothing from asyncio, aiohttp or socket, directly or through urn.

A module is pure if it is listed in PURE below or carries the marker line `# urn: pure`
anywhere in its source (add the marker to your own pure modules, e.g.
aggregator/condition.py, resolver/policy.py). Imports under `if TYPE_CHECKING:` are
ignored; everything else, including imports inside functions, counts.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["urn", "checker", "aggregator", "resolver", "sim", "bench"]
PURE = [
    "urn/table.py",
    "urn/wire.py",
    "urn/config/__init__.py",
    "urn/config/model.py",
    "urn/config/fields.py",
    "urn/config/load.py",
    "urn/config/validate.py",
]
MARKER = "# urn: pure"
BANNED = {"asyncio", "aiohttp", "socket", "uvloop", "selectors"}


def pure_modules() -> list[str]:
    found = set(PURE)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if any(line.strip() == MARKER for line in path.read_text().splitlines()):
                found.add(path.relative_to(ROOT).as_posix())
    return sorted(found)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(path: Path) -> set[str]:
    """Absolute module names imported at run time by the module at `path`."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _source_of(module: str) -> Path | None:
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    candidate = ROOT.joinpath(*parts)
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    return None


def offending_chain(start: Path) -> list[str] | None:
    """The import chain from `start` to a banned module, if there is one."""
    seen: set[Path] = set()
    stack: list[tuple[Path, list[str]]] = [(start, [start.relative_to(ROOT).as_posix()])]
    while stack:
        path, chain = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in sorted(runtime_imports(path)):
            if name.split(".")[0] in BANNED:
                return [*chain, name]
            source = _source_of(name)
            if source is not None:
                stack.append((source, [*chain, name]))
    return None


@pytest.mark.parametrize("relative", pure_modules())
def test_pure_module_imports_no_io(relative: str) -> None:
    assert offending_chain(ROOT / relative) is None


@pytest.mark.parametrize("relative", pure_modules())
def test_pure_module_loads_no_io_at_run_time(relative: str) -> None:
    module = relative.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    probe = (
        f"import sys, {module}; print(sorted(m for m in {sorted(BANNED)!r} if m in sys.modules))"
    )
    # A bare interpreter: coverage started in a child (make test measures subprocesses)
    # imports socket and selectors itself, which would hide what the module loads.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env=bare,
    )
    assert result.stdout.strip() == "[]"


def test_the_checker_catches_a_violation() -> None:
    assert "asyncio" in runtime_imports(ROOT / "urn" / "source.py")
    assert offending_chain(ROOT / "urn" / "source.py") is not None
    assert offending_chain(ROOT / "urn" / "validate.py") == [
        "urn/validate.py",
        "asyncio",
    ]
