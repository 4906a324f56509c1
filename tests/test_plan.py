"""Compiled plans: caching, order, structure queries, fingerprints; random-DAG properties."""

import itertools
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowrt
from flowrt import CycleError, MissingInputError, Workflow
from flowrt.workflow import Plan


def _diamond() -> Workflow:
    wf = Workflow("diamond")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    wf.add("c", lambda a: a * 2)
    wf.add("d", lambda b, c: b + c)
    wf.add("lone", lambda: 0)
    return wf


def _assert_topological(plan: Plan) -> None:
    order = plan.topological()
    assert sorted(order) == sorted(plan.names)
    position = {name: i for i, name in enumerate(order)}
    for dep, node in plan.edges():
        assert position[dep] < position[node], (dep, node)


# -- compile and its cache ---------------------------------------------------------------


def test_compile_returns_a_plan() -> None:
    plan = _diamond().compile()
    assert isinstance(plan, Plan)
    assert plan.workflow == "diamond"
    assert len(plan) == 5
    assert list(plan) == ["a", "b", "c", "d", "lone"]
    assert "d" in plan and "zzz" not in plan
    assert plan.index == {"a": 0, "b": 1, "c": 2, "d": 3, "lone": 4}
    assert repr(plan) == "<Plan 'diamond': 5 nodes, 4 edges>"


def test_compile_is_cached_until_the_workflow_changes() -> None:
    wf = _diamond()
    plan = wf.compile()
    assert wf.compile() is plan
    assert wf.compile() is plan

    wf.add("e", lambda d: d)
    plan2 = wf.compile()
    assert plan2 is not plan
    assert "e" in plan2 and "e" not in plan  # the old plan is unchanged
    assert wf.compile() is plan2

    wf.remove("e")
    plan3 = wf.compile()
    assert plan3 is not plan2
    assert "e" not in plan3
    assert wf.compile() is plan3


def test_a_failed_add_keeps_the_cached_plan() -> None:
    wf = _diamond()
    plan = wf.compile()
    with pytest.raises(flowrt.DuplicateNodeError):
        wf.add("a", lambda: 2)
    with pytest.raises(flowrt.GraphError):
        wf.add("x", lambda: 2, retries=-1)
    assert wf.compile() is plan


async def _async_step() -> int:
    return 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fn": lambda: 1, "retries": -1}, flowrt.GraphError),
        ({"fn": lambda: 1, "colour": "red"}, TypeError),
        ({"fn": lambda: 1, "after": "a"}, TypeError),
        ({"fn": lambda: 1, "deps": "a"}, TypeError),
        ({"fn": lambda: 1, "deps": ["a", "b"]}, flowrt.GraphError),
        ({"fn": _async_step, "executor": "thread"}, flowrt.GraphError),
        ({"fn": 42}, TypeError),
    ],
)
def test_a_rejected_node_leaves_no_trace(kwargs: dict[str, Any], error: type[Exception]) -> None:
    wf = _diamond()
    before = dict(wf.nodes)
    with pytest.raises(error):
        wf.add("x", **kwargs)
    assert "x" not in wf and len(wf) == len(before) and dict(wf.nodes) == before
    wf.add("x", lambda d: d, deps=["d"])  # the name is still free
    assert wf.compile().deps("x") == ["d"]


def test_an_invalid_workflow_raises_on_every_compile_until_fixed() -> None:
    wf = Workflow("w")
    wf.add("b", lambda a: a, deps=["a"])
    for _ in range(2):
        with pytest.raises(flowrt.UnknownNodeError):
            wf.compile()
    wf.add("a", lambda: 1)
    assert wf.compile().deps("b") == ["a"]


def test_the_plan_is_immutable_where_it_matters() -> None:
    plan = _diamond().compile()
    with pytest.raises(TypeError, match="frozen"):
        plan.interner.intern("new-node")
    assert isinstance(plan.names, tuple)


# -- structure ---------------------------------------------------------------------------


def test_deps_dependents_edges() -> None:
    plan = _diamond().compile()
    assert plan.deps("a") == []
    assert plan.deps("d") == ["b", "c"]
    assert plan.dependents("a") == ["b", "c"]
    assert plan.dependents("d") == []
    assert plan.dependents("lone") == []
    assert sorted(plan.edges()) == [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    with pytest.raises(KeyError):
        plan.deps("zzz")


def test_a_dependency_listed_twice_is_reported_once() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda x: x, deps=["a"], after=["a"])
    plan = wf.compile()
    assert plan.deps("b") == ["a"]
    assert plan.dependents("a") == ["b"]
    assert list(plan.edges()) == [("a", "b")]
    assert wf.run_sync()["b"] == 1


def test_topological_order_respects_every_edge() -> None:
    plan = _diamond().compile()
    _assert_topological(plan)
    order = plan.topological()
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")


def test_topological_order_when_nodes_were_added_in_reverse() -> None:
    wf = Workflow("w")
    names = [f"n{i}" for i in range(10)]
    for i in reversed(range(10)):  # n{i} depends on n{i-1}, added before it
        wf.add(names[i], lambda *a: 0, deps=[names[i - 1]] if i else [])
    plan = wf.compile()
    assert plan.topological() == names
    _assert_topological(plan)


def test_levels_and_depth() -> None:
    plan = _diamond().compile()
    assert plan.levels == [0, 1, 1, 2, 0]
    assert plan.level("d") == 2
    assert plan.level("lone") == 0
    assert plan.depth == 3
    assert Workflow("empty").compile().depth == 0


def test_levels_take_the_longest_chain() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 0)
    wf.add("b", lambda a: 0)
    wf.add("c", lambda b: 0)
    wf.add("d", lambda a, c: 0)  # a is one level up, c three
    assert wf.compile().level("d") == 3


def test_empty_workflow_compiles() -> None:
    plan = Workflow("empty").compile()
    assert len(plan) == 0
    assert plan.topological() == []
    assert list(plan.edges()) == []
    assert plan.required_inputs == ()


def test_describe() -> None:
    assert _diamond().compile().describe() == {
        "workflow": "diamond",
        "nodes": {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "lone": []},
    }


def test_missing_inputs_and_the_missing_input_error() -> None:
    wf = Workflow("w")
    wf.add("a", lambda customer, region: 0)
    wf.add("b", lambda customer, n=1: 0)
    plan = wf.compile()
    assert plan.required_inputs == ("customer", "region")
    assert plan.optional_inputs == ("n",)
    missing = plan.missing_inputs({"region": "eu"})
    assert missing == {"customer": ["a", "b"]}
    err = MissingInputError(missing)
    assert err.missing == {"customer": ["a", "b"]}
    assert str(err) == "missing run input: 'customer' (needed by 'a', 'b')"
    assert plan.input_users("customer") == ["a", "b"]
    assert plan.input_users("n") == ["b"]
    err2 = MissingInputError(plan.missing_inputs({}))
    assert str(err2) == (
        "missing run inputs: 'customer' (needed by 'a', 'b'); 'region' (needed by 'a')"
    )


def test_an_input_some_nodes_need_and_others_default() -> None:
    wf = Workflow("w")
    wf.add("a", lambda factor=2: factor)
    wf.add("b", lambda factor: factor)
    wf.add("c", lambda: 0)
    plan = wf.compile()
    assert plan.required_inputs == ("factor",)
    assert plan.input_users("factor") == ["a", "b"]
    assert plan.missing_inputs({}) == {"factor": ["b"]}


def test_missing_inputs_fail_the_run_before_any_node_runs() -> None:
    wf = Workflow("w")
    ran: list[str] = []
    wf.add("first", lambda: ran.append("first"))
    wf.add("second", lambda customer: ran.append("second"))
    with pytest.raises(MissingInputError, match="'customer' \\(needed by 'second'\\)"):
        wf.run_sync({})
    assert ran == []


# -- fingerprint -------------------------------------------------------------------------


def test_fingerprint_is_stable_for_identical_workflows() -> None:
    fp = _diamond().compile().fingerprint
    assert isinstance(fp, str) and len(fp) == 32
    assert _diamond().compile().fingerprint == fp
    assert _diamond().compile().fingerprint == fp


def _variant(change: str) -> Workflow:
    wf = Workflow("diamond")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    options: dict[str, Any] = {"retries": 2} if change == "options" else {}
    wf.add("c", lambda a: a * 2, **options)
    if change == "edge":
        wf.add("d", lambda b, c, a: b + c)
    elif change == "rename":
        wf.add("dd", lambda b, c: b + c)
    else:
        wf.add("d", lambda b, c: b + c)
    if change != "drop":
        wf.add("lone", lambda: 0)
    if change == "input":
        wf.add("extra", lambda region: 0)
    return wf


@pytest.mark.parametrize("change", ["edge", "rename", "drop", "input", "options"])
def test_fingerprint_changes_with_the_structure(change: str) -> None:
    assert _variant("none").compile().fingerprint == _diamond().compile().fingerprint
    assert _variant(change).compile().fingerprint != _diamond().compile().fingerprint


# -- properties of random DAGs -----------------------------------------------------------


Dag = tuple[int, list[list[int]], list[int], list[int]]


@st.composite
def random_dags(draw: st.DrawFn) -> Dag:
    """``(n, deps, add_order, how)``: node i depends on a subset of the nodes before it.

    Nodes are added in order or shuffled (so dependencies sometimes come after their
    dependents); ``how[i]`` says how node i names its dependencies (see ``_build``).
    """
    n = draw(st.integers(min_value=1, max_value=25))
    deps = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=min(i, 4)))) if i else []
        for i in range(n)
    ]
    shuffled = draw(st.booleans())
    order = list(draw(st.permutations(range(n)))) if shuffled else list(range(n))
    how = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    return n, deps, order, how


def _build(n: int, deps: list[list[int]], order: list[int], how: list[int]) -> Workflow:
    """Add the nodes in ``order``; their dependencies as positional deps (how 0), as
    ``after=`` (1) or as ``inputs=`` of a ``**kwargs`` function (2)."""
    wf = Workflow("random")
    for i in order:
        names = [f"n{j}" for j in deps[i]]
        if how[i] == 1:
            wf.add(f"n{i}", lambda: None, after=names)
        elif how[i] == 2:
            wf.add(f"n{i}", lambda **kw: None, inputs={f"p{k}": m for k, m in enumerate(names)})
        else:
            wf.add(f"n{i}", lambda *a: None, deps=names)
    return wf


def _descendants(n: int, deps: list[list[int]], i: int) -> set[int]:
    dependents: list[list[int]] = [[] for _ in range(n)]
    for node, ds in enumerate(deps):
        for d in ds:
            dependents[d].append(node)
    seen, stack = set(), [i]
    while stack:
        for j in dependents[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_topological_order_of_random_dags(dag: Dag) -> None:
    n, deps, order, how = dag
    plan = _build(n, deps, order, how).compile()
    topo = plan.topological()
    assert len(topo) == n
    assert sorted(topo) == sorted(f"n{i}" for i in range(n))  # every node exactly once
    position = {name: k for k, name in enumerate(topo)}
    for i, ds in enumerate(deps):
        assert sorted(plan.deps(f"n{i}")) == sorted(f"n{j}" for j in ds)
        for j in ds:
            assert position[f"n{j}"] < position[f"n{i}"]
    for i in range(n):
        ds = deps[i]
        assert plan.level(f"n{i}") == (max(plan.level(f"n{j}") for j in ds) + 1 if ds else 0)


@settings(max_examples=150, deadline=None)
@given(random_dags(), st.data())
def test_a_back_edge_in_a_random_dag_is_reported_as_a_real_cycle(
    dag: Dag, data: st.DataObject
) -> None:
    n, deps, order, how = dag
    # Node i gets to depend on a node reachable from it (or on itself): a cycle.
    i = data.draw(st.integers(0, n - 1), label="i")
    j = data.draw(st.sampled_from(sorted(_descendants(n, deps, i) | {i})), label="j")
    deps = [list(ds) for ds in deps]
    deps[i].append(j)
    wf = _build(n, deps, order, how)
    with pytest.raises(CycleError) as info:
        wf.compile()
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    ids = [int(name[1:]) for name in cycle]
    for a, b in itertools.pairwise(ids):
        assert b in deps[a], f"{cycle}: n{a} does not depend on n{b}"
    assert str(info.value) == "dependency cycle: " + " -> ".join(cycle)


def test_large_random_dag_compiles() -> None:
    rng = random.Random(7)
    n = 2000
    deps = [rng.sample(range(i), min(i, rng.randint(0, 3))) for i in range(n)]
    order = list(range(n))
    rng.shuffle(order)
    plan = _build(n, deps, order, [i % 3 for i in range(n)]).compile()
    _assert_topological(plan)
    assert len(plan.topological()) == n


def test_a_compiled_plan_does_not_change_when_the_workflow_grows() -> None:
    wf = flowrt.Workflow("grow")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a, deps=["a"])
    plan = wf.compile()
    wf.add("c", lambda b: b, deps=["b"])
    assert "c" not in plan.index and len(plan) == 2 and plan.names == ("a", "b")
    bigger = wf.compile()
    assert bigger is not plan and bigger.index["c"] == 2
    wf.remove("c")
    assert wf.compile().names == ("a", "b") and plan.index == {"a": 0, "b": 1}
