"""Mermaid and Graphviz DOT export of a plan, optionally coloured by a run's statuses.

Branch nodes are drawn as diamonds; given a run's statuses, the edges nothing went down
(into or out of a BYPASSED node: a path a branch did not take) are dashed and the
bypassed nodes grey. A sub-workflow node holds its child's nodes: a Mermaid subgraph
(a nested box), a DOT cluster linked to the node. A mapped node is one stacked box
(Mermaid's subroutine shape, DOT's ``box3d``) with what it maps over or its item counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._types import Status
from ..workflow._subworkflow import SubWorkflow
from ._view import items_text

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
    Status.BYPASSED: "#d0d7de",  # branches: grey, on a path not taken
    # -- waits (issue 14): the colour the report gave stored "waiting" nodes before
    Status.WAITING: "#d8b9ff",
    # -- saga compensation: khaki and red, apart from waiting's purple and failed's pink
    Status.COMPENSATED: "#e5c890",
    Status.COMPENSATION_FAILED: "#e78284",
    # -- caching --
    Status.CACHED: "#94e2d5",
}


def _untaken(dep: str, node: str, statuses: Mapping[str, Status] | None) -> bool:
    """Whether nothing went down the edge ``dep -> node`` (an end of it was bypassed)."""
    if not statuses:
        return False
    return Status.BYPASSED in (statuses.get(dep), statuses.get(node))


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


def _map_note(plan: Plan, i: int, items: Mapping[str, Mapping[str, int]] | None) -> str:
    """The second line of a mapped node's box: its item counts, or what it maps over."""
    name = plan.names[i]
    if items is not None and name in items:
        return "items: " + items_text(items[name])
    spec = plan.maps[i]
    return "map over " + ", ".join(dict.fromkeys(spec.sources))


def _mermaid_nodes(plan: Plan, prefix: str, indent: str, lines: list[str],
                   statuses: Mapping[str, Status] | None,
                   items: Mapping[str, Mapping[str, int]] | None) -> None:
    """``plan``'s nodes and edges; a sub-workflow node is a subgraph of its child's."""
    children = _children(plan)
    branch = plan.branch
    for i, name in enumerate(plan.names):
        child = children.get(i)
        node_id = f"{prefix}{_mermaid_id(i)}"
        if child is not None:
            label = _label(f"{name} (sub-workflow {child.workflow})")
            lines.append(f'{indent}subgraph {node_id}["{label}"]')
            _mermaid_nodes(child, f"{node_id}_", indent + "    ", lines, None, None)
            lines.append(f"{indent}end")
        elif i in plan.maps:  # a subroutine box: a mapped node
            note = _label(_map_note(plan, i, items))
            lines.append(f'{indent}{node_id}[["{_label(name)}<br/>{note}"]]')
        elif branch[i]:  # a rhombus: a decision
            lines.append(f'{indent}{node_id}{{"{_label(name)}"}}')
        else:
            lines.append(f'{indent}{node_id}["{_label(name)}"]')
    for dep, node in plan.edges():
        arrow = "-.->" if _untaken(dep, node, statuses) else "-->"
        lines.append(f"{indent}{prefix}{_mermaid_id(plan.index[dep])} {arrow} "
                     f"{prefix}{_mermaid_id(plan.index[node])}")


def to_mermaid(plan: Plan, statuses: Mapping[str, Status] | None = None,
               items: Mapping[str, Mapping[str, int]] | None = None) -> str:
    """A Mermaid ``flowchart TD`` of ``plan``; nodes coloured by ``statuses`` if given.

    A sub-workflow node is drawn as a subgraph (a nested box) holding its child's nodes.
    A mapped node is one box of the subroutine shape (``[[...]]``) whose second line
    says what it maps over or, given ``items`` (node -> items per status), its counts.
    """
    lines = ["flowchart TD"]
    _mermaid_nodes(plan, "", "    ", lines, statuses, items)
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


def to_dot(plan: Plan, statuses: Mapping[str, Status] | None = None,
           items: Mapping[str, Mapping[str, int]] | None = None) -> str:
    """A Graphviz ``digraph`` of ``plan``; nodes filled by ``statuses`` if given.

    A sub-workflow node is drawn as a component linked (dashed) to a cluster holding
    its child's nodes, named ``node/child_node``. A mapped node is one ``box3d`` (a
    stack) labelled with its name and what it maps over or, given ``items`` (node ->
    items per status), its item counts.
    """
    lines = [f"digraph {_dot_id(plan.workflow)} {{", "    rankdir=TB;",
             '    node [shape=box, style="rounded,filled", fillcolor="#ffffff"];']
    _dot_nodes(plan, "", "    ", lines, statuses, items)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_nodes(plan: Plan, prefix: str, indent: str, lines: list[str],
               statuses: Mapping[str, Status] | None,
               items: Mapping[str, Mapping[str, int]] | None) -> None:
    children = _children(plan)
    for i, name in enumerate(plan.names):
        attrs = []
        if plan.branch[i]:
            attrs.append("shape=diamond")
        elif i in children:
            attrs.append("shape=component")
        if statuses and name in statuses:
            status = statuses[name]
            attrs += [f'fillcolor="{COLOURS[status]}"', f'tooltip="{status}"']
            if status == Status.BYPASSED:
                attrs.append('fontcolor="#57606a"')
        if i in plan.maps:  # maps: one stacked box
            label = _dot_id(f"{name}\n{_map_note(plan, i, items)}")
            label = label if label.startswith('"') else f'"{label}"'
            attrs.append(f"shape=box3d, label={label}")
        shown = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"{indent}{_dot_id(prefix + name)}{shown};")
    for dep, node in plan.edges():
        style = " [style=dashed]" if _untaken(dep, node, statuses) else ""
        lines.append(f"{indent}{_dot_id(prefix + dep)} -> {_dot_id(prefix + node)}{style};")
    for i, child in children.items():
        name = prefix + plan.names[i]
        lines.append(f"{indent}subgraph {_dot_id('cluster_' + name)} {{")
        lines.append(f'{indent}    label={_dot_id(f"{name}: sub-workflow {child.workflow}")};')
        lines.append(f'{indent}    style="rounded,dashed";')
        _dot_nodes(child, name + "/", indent + "    ", lines, None, None)
        lines.append(f"{indent}}}")
        for root in child.names:
            if not child.deps(root):
                lines.append(f"{indent}{_dot_id(name)} -> {_dot_id(name + '/' + root)} "
                             "[style=dashed, arrowhead=empty];")
