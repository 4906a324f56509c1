"""Mermaid and Graphviz DOT export of a plan, optionally coloured by a run's statuses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._types import Status
from ..workflow._subworkflow import SubWorkflow

if TYPE_CHECKING:
    from ..workflow import Plan

__all__ = ["to_dot", "to_mermaid"]

#: fill colour per status (SVG / DOT / Mermaid all take CSS colours)
COLOURS: Mapping[Status, str] = {
    Status.PENDING: "#e0e0e0",
    Status.READY: "#fff3b0",
    Status.RUNNING: "#9ecbff",
    Status.SUCCEEDED: "#a6e3a1",
    Status.FAILED: "#f38ba8",
    Status.SKIPPED: "#f5f5f5",
    Status.CANCELLED: "#fab387",
    # -- saga compensation --
    Status.COMPENSATED: "#cba6f7",
    Status.COMPENSATION_FAILED: "#eba0ac",
}


def _mermaid_id(i: int) -> str:
    return f"n{i}"


def _label(name: str) -> str:
    # Mermaid entity codes (#quot; #35; ...); '#' first, or the codes would be mangled.
    # A newline would end the statement.
    return (name.replace("#", "#35;").replace('"', "#quot;")
            .replace("<", "#lt;").replace(">", "#gt;").replace("\n", "#10;"))


def _children(plan: Plan) -> dict[int, Plan]:
    """The sub-workflow nodes of ``plan``: node id -> the child's plan."""
    return {i: fn.workflow.compile() for i, fn in enumerate(plan.fns)
            if type(fn) is SubWorkflow}


def _mermaid_nodes(plan: Plan, prefix: str, indent: str, lines: list[str]) -> None:
    """``plan``'s nodes and edges; a sub-workflow node is a subgraph of its child's."""
    children = _children(plan)
    for i, name in enumerate(plan.names):
        child = children.get(i)
        node_id = f"{prefix}{_mermaid_id(i)}"
        if child is None:
            lines.append(f'{indent}{node_id}["{_label(name)}"]')
            continue
        label = _label(f"{name} (sub-workflow {child.workflow})")
        lines.append(f'{indent}subgraph {node_id}["{label}"]')
        _mermaid_nodes(child, f"{node_id}_", indent + "    ", lines)
        lines.append(f"{indent}end")
    for dep, node in plan.edges():
        lines.append(f"{indent}{prefix}{_mermaid_id(plan.index[dep])} --> "
                     f"{prefix}{_mermaid_id(plan.index[node])}")


def to_mermaid(plan: Plan, statuses: Mapping[str, Status] | None = None) -> str:
    """A Mermaid ``flowchart TD`` of ``plan``; nodes coloured by ``statuses`` if given.

    A sub-workflow node is drawn as a subgraph (a nested box) holding its child's nodes.
    """
    lines = ["flowchart TD"]
    _mermaid_nodes(plan, "", "    ", lines)
    if statuses:
        for status in Status:
            ids = [_mermaid_id(plan.index[n]) for n, s in statuses.items()
                   if s == status and n in plan.index]
            if ids:
                lines.append(f"    classDef {status} fill:{COLOURS[status]},stroke:#555")
                lines.append(f"    class {','.join(ids)} {status}")
    return "\n".join(lines) + "\n"


_DOT_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: DOT's keywords (case-insensitive) cannot be bare ids.
_DOT_KEYWORDS = frozenset({"node", "edge", "graph", "digraph", "subgraph", "strict"})


def _dot_id(name: str) -> str:
    if _DOT_ID.match(name) and name.lower() not in _DOT_KEYWORDS:
        return name
    # A newline becomes DOT's line break escape, so that a statement stays on one line.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(plan: Plan, statuses: Mapping[str, Status] | None = None) -> str:
    """A Graphviz ``digraph`` of ``plan``; nodes filled by ``statuses`` if given.

    A sub-workflow node is drawn as a component linked (dashed) to a cluster holding
    its child's nodes, named ``node/child_node``.
    """
    lines = [f"digraph {_dot_id(plan.workflow)} {{", "    rankdir=TB;",
             '    node [shape=box, style="rounded,filled", fillcolor="#ffffff"];']
    _dot_nodes(plan, "", "    ", lines, statuses)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_nodes(plan: Plan, prefix: str, indent: str, lines: list[str],
               statuses: Mapping[str, Status] | None) -> None:
    children = _children(plan)
    for i, name in enumerate(plan.names):
        extra = []
        if statuses and name in statuses:
            status = statuses[name]
            extra.append(f'fillcolor="{COLOURS[status]}", tooltip="{status}"')
        if i in children:
            extra.append("shape=component")
        attrs = f" [{', '.join(extra)}]" if extra else ""
        lines.append(f"{indent}{_dot_id(prefix + name)}{attrs};")
    for dep, node in plan.edges():
        lines.append(f"{indent}{_dot_id(prefix + dep)} -> {_dot_id(prefix + node)};")
    for i, child in children.items():
        name = prefix + plan.names[i]
        lines.append(f"{indent}subgraph {_dot_id('cluster_' + name)} {{")
        lines.append(f'{indent}    label={_dot_id(f"{name}: sub-workflow {child.workflow}")};')
        lines.append(f'{indent}    style="rounded,dashed";')
        _dot_nodes(child, name + "/", indent + "    ", lines, None)
        lines.append(f"{indent}}}")
        for root in child.names:
            if not child.deps(root):
                lines.append(f"{indent}{_dot_id(name)} -> {_dot_id(name + '/' + root)} "
                             "[style=dashed, arrowhead=empty];")
