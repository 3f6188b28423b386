"""Imports between batchfit's packages run one way (docs/architecture.md, "Layering").

Read from the source with `ast`, counting imports inside functions too (they
run at call time, so they can close a cycle just as well); only imports under
`if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import batchfit

SRC = Path(batchfit.__file__).parent

#: lower layers first; a package may import only from layers before its own
LAYERS = [
    {"_io", "_progress", "distributed", "activations", "initializers", "losses", "metrics"},
    {"optimizers"},
    {"data"},
    {"transforms"},
    {"_engine"},
    {"callbacks"},
    {"layers", "preprocessing"},
    {"models"},
    {"cli"},
]


#: modules that form one unit with another: `keras.ops` functions called on symbolic
#: tensors record a layer, and that layer runs the op (Keras' own ops and operations
#: depend on each other the same way)
_SAME_UNIT = {"ops": "layers"}


def _unit(module: str) -> str:
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else ""
    return _SAME_UNIT.get(unit, unit)


def _import_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        here = _unit(".".join(rel.parts).removesuffix(".__init__"))
        tree = ast.parse(path.read_text())
        type_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
                if node.module == "batchfit":
                    names = [f"batchfit.{a.name}" for a in node.names]
            for name in names:
                there = _unit(name) if name.startswith("batchfit.") else ""
                if here and there and there != here:
                    edges[here].add(there)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_packages():
    assert _cycles(_import_graph()) == []


def test_each_package_imports_only_lower_layers():
    level = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    wrong = [
        f"{a} -> {b}"
        for a, targets in sorted(_import_graph().items())
        for b in sorted(targets)
        if a in level and b in level and level[b] > level[a]
    ]
    assert wrong == []
