"""The layout README's "How it is built" promises: no import circle, and arrows that only point down.

The web toolkit (``seeonline.api``) and the database room (``seeonline.database``) stand under the domains;
the assembly (``seeonline.server``) and the command line stand over them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"seeonline": ROOT / "src" / "seeonline", "seeonline_supervisor": ROOT / "supervisor"}
DOMAINS = ("trackers", "people", "statuses", "logins")


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = (package, *path.relative_to(root).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _imports(nodes: Iterator[ast.AST]) -> set[str]:
    """Project modules imported by ``nodes`` (``from package import submodule`` names the submodule)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return names & MODULES.keys()


def _top_level(tree: ast.Module) -> Iterator[ast.AST]:
    # Imports under `if TYPE_CHECKING:` and inside functions do not run at import time.
    return (node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}
IMPORTED_AT_LOAD = {name: _imports(_top_level(tree)) - {name} for name, tree in TREES.items()}
IMPORTED_ANYWHERE = {name: _imports(ast.walk(tree)) - {name} for name, tree in TREES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start, children_of_start in graph.items():
        if start in index:
            continue
        work = [(start, iter(sorted(children_of_start)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _reaching(prefixes: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    """``module -> import`` pairs where a module under ``prefixes`` imports one under ``forbidden``."""
    return sorted(
        f"{name} -> {target}"
        for name, targets in IMPORTED_ANYWHERE.items()
        if name.startswith(prefixes)
        for target in targets
        if target.startswith(forbidden)
    )


def test_there_is_no_import_circle() -> None:
    assert _cycles(IMPORTED_AT_LOAD) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_web_toolkit_knows_no_domain_and_no_assembly() -> None:
    above = tuple(f"seeonline.{room}" for room in (*DOMAINS, "server", "cli", "local"))
    assert _reaching(("seeonline.api",), above) == []


def test_the_database_room_knows_no_web_code_and_no_domain() -> None:
    above = tuple(f"seeonline.{room}" for room in (*DOMAINS, "api", "server", "cli", "local"))
    assert _reaching(("seeonline.database",), above) == []


def test_only_the_command_line_and_tests_reach_the_assembly() -> None:
    users = {name for name, targets in IMPORTED_ANYWHERE.items() for t in targets if t.startswith("seeonline.server")}
    assert {name for name in users if not name.startswith(("seeonline.server", "seeonline.cli"))} == set()


def test_no_module_is_much_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 430}
    assert long == {}


def test_nothing_imports_the_supervisor_as_supervisor() -> None:
    """``supervisor/`` is installed as ``seeonline_supervisor``: ``supervisor`` is PyPI's supervisord."""
    sources = [*ROOT.glob("src/seeonline/**/*.py"), *ROOT.glob("supervisor/**/*.py"), *ROOT.glob("tests/**/*.py")]
    sources += [*ROOT.glob("bench/*.py"), *ROOT.glob("db/**/*.py")]
    offenders = sorted(
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "supervisor" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "supervisor")
    )
    assert offenders == []
