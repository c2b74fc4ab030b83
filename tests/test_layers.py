"""The import graph of ``dldna``, drawn from the source with ``ast``: no import circles, nothing imports upward.

Every import statement counts, also those inside functions (a lazy import that runs upward is still a knot).
``python tests/test_layers.py`` prints the graph between the top-level parts, one line per part.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dldna"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("config", "activations", "norm", "linalg", "history", "book"),
    ("callbacks", "data", "models", "init"),
    ("optim",),
    ("train",),
    ("landscape", "toy"),
    ("dynamics",),
    ("viz",),
    ("widgets", "browser", "exercises", "dldna"),
)
"""The parts of ``dldna`` from the bottom up: a part may import its own layer's parts and those of lower
layers, never a higher layer's. ``dldna`` is the package root (``setup_notebook``); ``book`` is what a chapter
asks of the book around it (glue, claims, readable figures), needed by ``viz`` and the root."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``dldna.train.loop``; a package by its ``__init__``)."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The ``dldna`` modules ``path`` imports anywhere in its body; ``from package import submodule`` counts
    as an import of the submodule."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "dldna")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "dldna":
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & known
            found.update(submodules or {node.module})
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def part(module: str) -> str:
    """The top-level part a module belongs to: ``dldna.train.loop`` -> ``train``, the root -> ``dldna``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "dldna"


def layer_of(name: str) -> int:
    """The index in :data:`LAYERS` of a part; a part not placed yet counts as the top (see the first test)."""
    return next((index for index, layer in enumerate(LAYERS) if name in layer), len(LAYERS))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules that import each other (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def part_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        edges[part(source)].update(part(target) for target in targets if part(target) != part(source))
    return edges


def test_every_part_has_a_layer() -> None:
    unplaced = sorted({part(name) for name in modules()} - {name for layer in LAYERS for name in layer})
    assert not unplaced, f"add {unplaced} to LAYERS in tests/test_layers.py, in the layer that matches its imports"


def test_no_import_circles() -> None:
    found = cycles(import_graph())
    assert not found, "modules that import each other: " + "; ".join(" <-> ".join(group) for group in found)


def test_nothing_imports_upward() -> None:
    upward = [
        f"{source} imports {target}"
        for source, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(part(target)) > layer_of(part(source))
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_part_imports_another_parts_private_modules() -> None:
    private = [
        f"{source} imports {target}"
        for source, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if part(target) != part(source) and any(piece.startswith("_") for piece in target.split("."))
    ]
    assert not private, "imports of another part's private modules (import its public names instead):\n" + "\n".join(private)


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert not cycles({"a": {"b"}, "b": {"c"}})
    assert layer_of("callbacks") < layer_of("optim") < layer_of("train") < layer_of("landscape") < layer_of("viz")


if __name__ == "__main__":
    graph = import_graph()
    edges = part_graph(graph)
    for layer in LAYERS:
        for name in layer:
            print(f"{name:>11} -> {', '.join(sorted(edges.get(name, ()))) or '-'}")
    for group in cycles(graph):
        print("circle:", " <-> ".join(group))
