"""Mermaid and Graphviz DOT export: every node and edge, escaping, status colours."""

import itertools
import re

import pytest

from flowrt import Status, Workflow
from flowrt.tools.viz import COLOURS, to_dot, to_mermaid

# A DOT id: a bare identifier that is no keyword, or a double-quoted string (\" escapes).
DOT_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}
DOT_QUOTED = r'"(?:[^"\\]|\\.)*"'
DOT_ID = rf"(?:[A-Za-z_][A-Za-z0-9_]*|{DOT_QUOTED})"
DOT_NODE = re.compile(rf"    ({DOT_ID})(?: \[[^\]]*\])?;\Z")
DOT_EDGE = re.compile(rf"    ({DOT_ID}) -> ({DOT_ID});\Z")
MERMAID_NODE = re.compile(r'    (n\d+)\["([^"]*)"\]\Z')
MERMAID_EDGE = re.compile(r"    (n\d+) --> (n\d+)\Z")


def _dot_name(token: str) -> str:
    if token.startswith('"'):
        return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], token[1:-1])
    assert token.lower() not in DOT_KEYWORDS, f"keyword {token!r} used as a bare id"
    return token


def _parse_dot(text: str) -> tuple[list[str], list[tuple[str, str]], dict[str, str]]:
    """Nodes, edges and node attribute strings of our DOT output; asserts it is valid."""
    lines = text.splitlines()
    assert re.fullmatch(rf"digraph {DOT_ID} \{{", lines[0]), lines[0]
    assert lines[-1] == "}"
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    attrs: dict[str, str] = {}
    for line in lines[1:-1]:
        if line.strip().startswith(("rankdir", "node [")):
            continue
        if m := DOT_EDGE.match(line):
            edges.append((_dot_name(m[1]), _dot_name(m[2])))
        elif m := DOT_NODE.match(line):
            name = _dot_name(m[1])
            nodes.append(name)
            attrs[name] = line
        else:
            raise AssertionError(f"not a valid statement: {line!r}")
    return nodes, edges, attrs


def _mermaid_label(label: str) -> str:
    codes = {"quot": '"', "lt": "<", "gt": ">", "35": "#", "10": "\n"}
    return re.sub(r"#(\w+);", lambda m: codes[m[1]], label)


def _parse_mermaid(text: str) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    names: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    styles: list[str] = []
    for line in lines[1:]:
        if m := MERMAID_NODE.match(line):
            names[m[1]] = _mermaid_label(m[2])
        elif m := MERMAID_EDGE.match(line):
            edges.append((m[1], m[2]))
        elif line.startswith(("    classDef ", "    class ")):
            styles.append(line.strip())
        else:
            raise AssertionError(f"not a valid statement: {line!r}")
    return list(names.values()), [(names[a], names[b]) for a, b in edges], styles


def _shop() -> Workflow:
    wf = Workflow("shop")
    wf.add("order", lambda: 1)
    wf.add("charge", lambda order: 1)
    wf.add("ship", lambda order: 1)
    wf.add("audit", lambda: 1, after=["charge", "ship"])
    return wf


EDGES = [("order", "charge"), ("order", "ship"), ("charge", "audit"), ("ship", "audit")]


def test_mermaid_has_every_node_and_edge() -> None:
    text = _shop().to_mermaid()
    nodes, edges, styles = _parse_mermaid(text)
    assert nodes == ["order", "charge", "ship", "audit"]
    assert sorted(edges) == sorted(EDGES)
    assert styles == []
    assert text.endswith("\n")


def test_dot_has_every_node_and_edge() -> None:
    text = _shop().to_dot()
    assert text.startswith("digraph shop {")
    nodes, edges, _ = _parse_dot(text)
    assert nodes == ["order", "charge", "ship", "audit"]
    assert sorted(edges) == sorted(EDGES)


NASTY = [
    "two words",
    'say "hi"',
    "back\\slash",
    "a->b",
    "x;y",
    "{braces}",
    "[square]",
    "#hash",
    "#quot;",
    "<b>tag</b>",
    "node",
    "Graph",
    "edge",
    "strict",
    "9lives",
    "ünï",
    "trailing\\",
    "two\nlines",
]


def _nasty() -> Workflow:
    wf = Workflow("my flow")
    prev = None
    for name in NASTY:
        wf.add(name, lambda *a: 0, deps=[prev] if prev else [])
        prev = name
    return wf


def test_mermaid_escapes_names_so_the_output_stays_valid() -> None:
    nodes, edges, _ = _parse_mermaid(_nasty().to_mermaid())
    assert nodes == NASTY
    assert edges == list(itertools.pairwise(NASTY))


def test_dot_quotes_names_so_the_output_stays_valid() -> None:
    text = _nasty().to_dot()
    assert text.startswith('digraph "my flow" {')
    nodes, edges, _ = _parse_dot(text)
    assert nodes == NASTY
    assert edges == list(itertools.pairwise(NASTY))


@pytest.mark.parametrize("name", ["graph", "Node", "DIGRAPH"])
def test_dot_quotes_a_workflow_named_like_a_keyword(name: str) -> None:
    wf = Workflow(name)
    wf.add("a", lambda: 0)
    assert wf.to_dot().startswith(f'digraph "{name}" {{')


STATUSES = {"order": Status.SUCCEEDED, "charge": Status.FAILED, "ship": Status.SKIPPED,
            "audit": Status.CANCELLED}


def test_mermaid_colours_nodes_by_status() -> None:
    plan = _shop().compile()
    _, _, styles = _parse_mermaid(to_mermaid(plan, STATUSES))
    ids = {name: f"n{i}" for name, i in plan.index.items()}
    for name, status in STATUSES.items():
        assert f"classDef {status} fill:{COLOURS[status]},stroke:#555" in styles
        assert f"class {ids[name]} {status}" in styles
    assert not any("running" in s for s in styles)  # only statuses in use


def test_mermaid_groups_nodes_with_one_status() -> None:
    plan = _shop().compile()
    text = to_mermaid(plan, dict.fromkeys(plan.names, Status.SUCCEEDED))
    assert "    class n0,n1,n2,n3 succeeded" in text.splitlines()


def test_dot_fills_nodes_by_status() -> None:
    plan = _shop().compile()
    _, _, attrs = _parse_dot(to_dot(plan, {"order": Status.SUCCEEDED,
                                                "charge": Status.FAILED}))
    assert f'fillcolor="{COLOURS[Status.SUCCEEDED]}"' in attrs["order"]
    assert 'tooltip="succeeded"' in attrs["order"]
    assert f'fillcolor="{COLOURS[Status.FAILED]}"' in attrs["charge"]
    assert "fillcolor" not in attrs["ship"]  # no status given: the default fill


def test_statuses_of_unknown_nodes_are_ignored() -> None:
    plan = _shop().compile()
    assert to_mermaid(plan, {"ghost": Status.FAILED}) == to_mermaid(plan)
    assert to_dot(plan, {"ghost": Status.FAILED}) == to_dot(plan)


def test_every_status_has_a_colour() -> None:
    assert set(COLOURS) == set(Status)


def test_a_run_result_exports_its_statuses() -> None:
    wf = Workflow("w")

    @wf.node
    def good() -> int:
        return 1

    @wf.node
    def bad() -> int:
        raise RuntimeError("boom")

    @wf.node
    def after_bad(bad: int) -> int:
        return bad

    result = wf.run_sync()
    _, _, styles = _parse_mermaid(result.to_mermaid())
    assert "class n0 succeeded" in styles
    assert "class n1 failed" in styles
    assert "class n2 skipped" in styles
    _, _, attrs = _parse_dot(result.to_dot())
    assert COLOURS[Status.FAILED] in attrs["bad"]
