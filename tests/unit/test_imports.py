"""The import graph: no cycles, and product code never reaches the simulator or benches.

Every import counts, including imports inside functions (a cycle hidden by a local
import is still a cycle) and, for cycles, those under `if TYPE_CHECKING:` too. The one
product module allowed to reach `sim/` and `bench/` is the command line (`urn/cli.py`),
the composition root, from inside the command that runs them; test helpers live in
`sim/testing/`, which product code never imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("urn", "checker", "aggregator", "resolver")
PACKAGES = (*PRODUCT, "sim", "bench")
COMPOSITION_ROOT = "urn.cli"


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_of(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str, known: set[str], *, type_checking: bool = False) -> set[str]:
    """First-party modules `module` imports (a name resolved to its module): at run time,
    and with `type_checking` also those only the type checker sees."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for target in targets:
            resolved = resolve(target)
            if resolved is not None and resolved != module:
                found.add(resolved)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _graph(*, type_checking: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: _imports(path, name, known, type_checking=type_checking)
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the chain of modules around it, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ importing its own submodules is how packages export.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_there_is_no_import_cycle_not_even_through_type_only_imports() -> None:
    # A cycle only the type checker sees still ties two modules' designs together.
    assert _cycle(_graph(type_checking=True)) is None


def test_product_code_never_imports_the_simulator_benches_or_test_helpers() -> None:
    offending = sorted(
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if module.split(".")[0] in PRODUCT and module != COMPOSITION_ROOT
        for target in targets
        if target.split(".")[0] in ("sim", "bench", "tests")
    )
    assert offending == []


def test_the_composition_root_reaches_sim_and_bench_only_inside_functions() -> None:
    tree = ast.parse((ROOT / "urn" / "cli.py").read_text())
    top_level = {
        alias.name if isinstance(node, ast.Import) else (node.module or "")
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(name.split(".")[0] in ("sim", "bench") for name in top_level)


def test_the_checks_catch_a_cycle_and_a_forbidden_import() -> None:
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "b": set()}
    assert _cycle(graph) == ["a.x", "a.y", "a.z", "a.x"]
    assert _cycle({"a": {"a.sub"}, "a.sub": {"a"}}) is None
    assert _cycle({"p": {"q"}, "q": set()}) is None
    # Local imports count: urn.cli reaches the role mains only inside functions.
    assert {"checker.main", "sim.demo", "bench.cli"} <= _graph()["urn.cli"]
