"""`vigil.client` is a downward stack: no import circle among its modules (function-level and
TYPE_CHECKING imports included), and it never imports the server, console, simulator or commands."""

from __future__ import annotations

import ast
from pathlib import Path

import vigil.client

PACKAGE = Path(vigil.client.__file__).parent
FORBIDDEN = ("vigil.server", "vigil.console", "vigil.sim", "vigil.cli", "vigil.chat", "vigil.demo")


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        module = f"vigil.client.{path.stem}"
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[module] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    edges = {m: sorted(i for i in imported if i in graph and i != m) for m, imported in graph.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in edges[module]:
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in edges:
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_client_modules_form_no_import_circle() -> None:
    graph = _imports()
    assert {"vigil.client.device", "vigil.client.events", "vigil.client.engine"} <= set(graph)
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_client_never_imports_server_console_sim_or_commands() -> None:
    bad = {
        (module, imported)
        for module, imports in _imports().items()
        for imported in imports
        if any(imported == f or imported.startswith(f"{f}.") for f in FORBIDDEN)
    }
    assert bad == set()


def test_features_are_built_on_the_core_not_the_client() -> None:
    graph = _imports()
    for feature in ("groups", "verification", "contacts", "reporting", "safety", "control"):
        assert "vigil.client.client" not in graph[f"vigil.client.{feature}"], feature
        assert "vigil.client.device" in graph[f"vigil.client.{feature}"], feature
