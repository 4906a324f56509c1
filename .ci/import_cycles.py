"""Count import cycles between flowrt's modules; exit 1 if there is any.

Every import counts -- module level or inside a function -- except those under
``if TYPE_CHECKING:`` (annotations) and the declared one-line conveniences that
delegate upward (docs/decisions/008-layers.md), which are listed below. Cycles are the
strongly connected components of more than one module (Tarjan's algorithm).

    python .ci/import_cycles.py [--verbose]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "flowrt"
DECLARED = {
    ("flowrt.workflow._workflow", "flowrt.runtime"),
    ("flowrt.workflow._workflow", "flowrt.tools.viz"),
    ("flowrt._engine.result", "flowrt.tools.viz"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):  # the bodies of 'if TYPE_CHECKING:'
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {}
    for p in paths:
        name = module_name(p)
        # A package's __init__ re-exports its modules: that is no dependency of theirs.
        graph[name] = {t for t in imports_of(p, modules)
                       if (name, t) not in DECLARED and name != "flowrt"}
    found = cycles(graph)
    print(f"{len(found)} import cycle(s) among {len(modules)} flowrt modules")
    for c in found:
        print("  " + " <-> ".join(c))
    if "--verbose" in sys.argv:
        for name in sorted(graph):
            print(f"{name}: {', '.join(sorted(graph[name]))}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
