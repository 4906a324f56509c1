"""Mermaid and Graphviz DOT export of a plan, optionally coloured by a run's statuses.

Branch nodes are drawn as diamonds; given a run's statuses, the edges nothing went down
(into or out of a BYPASSED node: a path a branch did not take) are dashed and the
bypassed nodes grey.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._types import Status

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


def to_mermaid(plan: Plan, statuses: Mapping[str, Status] | None = None) -> str:
    """A Mermaid ``flowchart TD`` of ``plan``; nodes coloured by ``statuses`` if given."""
    lines = ["flowchart TD"]
    branch = plan.branch
    for i, name in enumerate(plan.names):
        if branch[i]:  # a rhombus: a decision
            lines.append(f'    {_mermaid_id(i)}{{"{_label(name)}"}}')
        else:
            lines.append(f'    {_mermaid_id(i)}["{_label(name)}"]')
    for dep, node in plan.edges():
        arrow = "-.->" if _untaken(dep, node, statuses) else "-->"
        lines.append(f"    {_mermaid_id(plan.index[dep])} {arrow} "
                     f"{_mermaid_id(plan.index[node])}")
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
    """A Graphviz ``digraph`` of ``plan``; nodes filled by ``statuses`` if given."""
    lines = [f"digraph {_dot_id(plan.workflow)} {{", "    rankdir=TB;",
             '    node [shape=box, style="rounded,filled", fillcolor="#ffffff"];']
    for i, name in enumerate(plan.names):
        attrs = []
        if plan.branch[i]:
            attrs.append("shape=diamond")
        if statuses and name in statuses:
            status = statuses[name]
            attrs += [f'fillcolor="{COLOURS[status]}"', f'tooltip="{status}"']
            if status == Status.BYPASSED:
                attrs.append('fontcolor="#57606a"')
        shown = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {_dot_id(name)}{shown};")
    for dep, node in plan.edges():
        style = " [style=dashed]" if _untaken(dep, node, statuses) else ""
        lines.append(f"    {_dot_id(dep)} -> {_dot_id(node)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"
