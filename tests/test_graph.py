"""Defining workflows: decorator and builder forms, dependency inference, node options,
and every definition error with its message."""

import copy
import gc
import itertools
import pickle
import re
import weakref
from typing import Any

import pytest

import flowrt
from flowrt import (
    CycleError,
    DuplicateNodeError,
    FlowError,
    GraphError,
    Retry,
    Trigger,
    UnknownNodeError,
    Workflow,
)

# -- decorator and builder forms -----------------------------------------------------------


def test_bare_decorator_adds_the_node_and_returns_the_function_unchanged() -> None:
    wf = Workflow("w")

    def order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    decorated = wf.node(order)
    assert decorated is order
    assert list(wf) == ["order"]
    assert wf.nodes["order"].fn is order
    assert order("A1") == {"id": "A1"}  # still callable on its own


def test_decorator_with_options_returns_the_function_unchanged_and_stores_options() -> None:
    wf = Workflow("w")

    async def charge() -> str:
        return "ok"

    decorated = wf.node(retries=3, timeout=5, limit="payments", trigger=Trigger.ALL_DONE)(charge)
    assert decorated is charge
    opts = wf.nodes["charge"].options
    assert opts.retry == Retry(attempts=4)
    assert opts.attempts == 4
    assert opts.timeout == 5.0 and isinstance(opts.timeout, float)
    assert opts.limit == "payments"
    assert opts.trigger is Trigger.ALL_DONE
    assert opts.executor is None


def test_decorator_with_empty_parentheses_works() -> None:
    wf = Workflow("w")

    @wf.node()
    def a() -> int:
        return 1

    assert "a" in wf
    assert wf.nodes["a"].options == flowrt.workflow.NodeOptions()


def test_name_option_names_the_node() -> None:
    wf = Workflow("w")

    @wf.node(name="renamed")
    def f() -> int:
        return 1

    assert list(wf) == ["renamed"]
    assert "f" not in wf


def test_retry_option_is_stored_and_retries_zero_means_no_retry() -> None:
    wf = Workflow("w")
    policy = Retry(attempts=5, delay=0.5)
    wf.add("a", lambda: 1, retry=policy)
    wf.add("b", lambda: 1, retries=0)
    assert wf.nodes["a"].options.retry == policy
    assert wf.nodes["a"].options.attempts == 5
    assert wf.nodes["b"].options.retry is None
    assert wf.nodes["b"].options.attempts == 1


def test_executor_objects_are_not_kept_alive_by_node_options() -> None:
    wf = Workflow("w")
    ex = flowrt.ThreadExecutor(1)
    wf.add("a", lambda: 1, executor=ex)
    ref = weakref.ref(ex)
    del ex, wf
    gc.collect()
    assert ref() is None


def test_nodes_with_the_same_options_share_one_options_instance() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1, retries=2, timeout=1.0)
    wf.add("b", lambda: 1, retries=2, timeout=1.0)
    wf.add("c", lambda: 1)
    assert wf.nodes["a"].options is wf.nodes["b"].options
    assert wf.nodes["c"].options is flowrt.workflow._options.DEFAULT_OPTIONS


def test_trigger_option_accepts_a_trigger_its_value_or_its_name() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1, trigger=Trigger.ONE_FAILED)
    wf.add("b", lambda: 1, trigger="none_failed")
    wf.add("c", lambda: 1, trigger="ALL_DONE")
    assert wf.nodes["a"].options.trigger is Trigger.ONE_FAILED
    assert wf.nodes["b"].options.trigger is Trigger.NONE_FAILED
    assert wf.nodes["c"].options.trigger is Trigger.ALL_DONE


def test_executor_option_accepts_names_and_executor_objects_for_sync_functions() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1, executor="thread")
    wf.add("b", lambda: 1, executor="process")
    wf.add("c", lambda: 1, executor="loop")
    ex = flowrt.ThreadExecutor(2)
    wf.add("d", lambda: 1, executor=ex)
    assert [wf.nodes[n].options.executor for n in "abcd"] == ["thread", "process", "loop", ex]


def test_the_added_node_has_a_spec() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 1)
    wf.add("y", lambda: 2)

    def total(a: int, b: int) -> int:
        return a + b

    assert wf.add("total", total, deps=["x", "y"]) is None
    spec = wf.nodes["total"]
    assert spec is wf.nodes["total"]  # built once
    assert spec.name == "total"
    assert spec.fn is total
    assert spec.args == ("x", "y")


def test_builder_positional_deps_fill_parameters_in_order() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 10)
    wf.add("y", lambda: 3)
    wf.add("diff", lambda a, b: a - b, deps=["x", "y"])
    wf.add("rdiff", lambda a, b: a - b, deps=("y", "x"))
    plan = wf.compile()
    assert plan.deps("diff") == ["x", "y"]
    assert plan.required_inputs == ()
    result = wf.run_sync()
    assert result["diff"] == 7
    assert result["rdiff"] == -7


def test_builder_mapping_deps_bind_parameters_by_name() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 10)
    wf.add("y", lambda: 3)
    wf.add("diff", lambda a, b: a - b, deps={"b": "x", "a": "y"})
    plan = wf.compile()
    assert sorted(plan.deps("diff")) == ["x", "y"]
    assert plan.required_inputs == ()
    assert wf.run_sync()["diff"] == -7


def test_deps_may_be_given_as_decorated_functions() -> None:
    wf = Workflow("w")

    @wf.node(name="source")
    def make() -> int:
        return 5

    wf.add("twice", lambda v: 2 * v, deps=[make])
    wf.add("thrice", lambda v: 3 * v, deps={"v": make})
    plan = wf.compile()
    assert plan.deps("twice") == ["source"]
    assert plan.deps("thrice") == ["source"]
    result = wf.run_sync()
    assert (result["twice"], result["thrice"]) == (10, 15)


# -- dependency inference ----------------------------------------------------------------


def test_parameter_named_after_a_node_receives_its_output() -> None:
    wf = Workflow("w")

    @wf.node
    async def order(order_id: str) -> dict[str, str]:
        return {"id": order_id}

    @wf.node
    def receipt(order: dict[str, str]) -> str:
        return f"receipt for {order['id']}"

    plan = wf.compile()
    assert plan.deps("receipt") == ["order"]
    assert plan.dependents("order") == ["receipt"]
    assert wf.run_sync({"order_id": "A1"})["receipt"] == "receipt for A1"


def test_parameters_that_are_no_node_are_required_or_optional_run_inputs() -> None:
    wf = Workflow("w")

    @wf.node
    def a(customer: str, region: str = "eu") -> str:
        return f"{customer}@{region}"

    @wf.node
    def b(a: str, customer: str, verbose: bool = False) -> str:
        return a

    plan = wf.compile()
    assert plan.required_inputs == ("customer",)
    assert set(plan.optional_inputs) == {"region", "verbose"}
    assert plan.input_users("customer") == ["a", "b"]
    assert plan.input_users("region") == ["a"]
    assert plan.input_users("nothing") == []
    assert plan.missing_inputs({}) == {"customer": ["a", "b"]}
    assert plan.missing_inputs({"customer": "x"}) == {}
    assert wf.run_sync({"customer": "c1"})["a"] == "c1@eu"
    assert wf.run_sync({"customer": "c1", "region": "us"})["a"] == "c1@us"


def test_parameter_with_a_default_named_after_a_node_takes_the_node_output() -> None:
    wf = Workflow("w")
    wf.add("limit", lambda: 7)

    @wf.node
    def user(limit: int = 3) -> int:
        return limit

    plan = wf.compile()
    assert plan.deps("user") == ["limit"]
    assert plan.optional_inputs == ()
    assert wf.run_sync()["user"] == 7


def test_parameter_annotated_context_receives_the_context() -> None:
    wf = Workflow("w")
    seen: list[Any] = []

    @wf.node
    def audit(ctx: flowrt.Context) -> str:
        seen.append(ctx)
        return ctx.node

    plan = wf.compile()
    assert plan.required_inputs == ()
    assert plan.deps("audit") == []
    assert wf.run_sync()["audit"] == "audit"
    assert isinstance(seen[0], flowrt.Context)
    assert seen[0].attempt == 1


@pytest.mark.parametrize("annotation", ["flowrt.Context", "Context"])
def test_context_is_recognised_in_string_annotations(annotation: str) -> None:
    namespace: dict[str, Any] = {}
    source = (
        "from __future__ import annotations\n"
        "import flowrt\n"
        "from flowrt import Context\n"
        f"def audit(order: dict, ctx: {annotation}) -> str:\n"
        "    return f\"{ctx.node}:{order['id']}\"\n"
    )
    exec(compile(source, "<future-annotations>", "exec"), namespace)
    audit = namespace["audit"]
    assert audit.__annotations__["ctx"] == annotation  # really a string annotation
    wf = Workflow("w")
    wf.add("order", lambda: {"id": "A1"})
    wf.node(audit)
    plan = wf.compile()
    assert plan.required_inputs == ()
    assert plan.deps("audit") == ["order"]
    assert wf.run_sync()["audit"] == "audit:A1"


def test_after_names_ordering_only_dependencies() -> None:
    wf = Workflow("w")
    wf.add("charge", lambda: "charged")

    @wf.node(after=["charge"])
    def audit() -> str:  # takes no output of charge
        return "audited"

    plan = wf.compile()
    assert plan.deps("audit") == ["charge"]
    assert plan.topological().index("charge") < plan.topological().index("audit")
    assert wf.run_sync()["audit"] == "audited"


def test_after_accepts_decorated_functions() -> None:
    wf = Workflow("w")

    @wf.node(name="payment")
    def charge() -> str:
        return "charged"

    @wf.node
    def ship() -> str:
        return "shipped"

    @wf.node(after=[charge, ship])
    def audit() -> str:
        return "audited"

    assert wf.compile().deps("audit") == ["payment", "ship"]


def test_after_rejects_a_single_string() -> None:
    wf = Workflow("w")
    wf.add("charge", lambda: 1)
    with pytest.raises(TypeError, match="node 'audit': after= takes a list of node names"):
        wf.add("audit", lambda: 2, after="charge")


def test_inputs_maps_a_parameter_to_a_differently_named_node() -> None:
    wf = Workflow("w")

    @wf.node
    def fetch_user() -> str:
        return "ada"

    @wf.node(inputs={"user": "fetch_user"})
    def greet(user: str) -> str:
        return f"hello {user}"

    plan = wf.compile()
    assert plan.deps("greet") == ["fetch_user"]
    assert plan.required_inputs == ()
    assert wf.run_sync()["greet"] == "hello ada"


def test_inputs_may_name_a_decorated_function() -> None:
    wf = Workflow("w")

    @wf.node(name="users")
    def fetch() -> list[str]:
        return ["ada"]

    @wf.node(inputs={"people": fetch})
    def count(people: list[str]) -> int:
        return len(people)

    assert wf.compile().deps("count") == ["users"]
    assert wf.run_sync()["count"] == 1


def test_inputs_to_a_function_taking_kwargs_are_bound_and_checked() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 1)

    def collect(**kw: int) -> dict[str, int]:
        return kw

    wf.add("c", collect, inputs={"a": "x"})
    assert wf.compile().deps("c") == ["x"]
    assert wf.run_sync()["c"] == {"a": 1}
    wf.add("d", collect, inputs={"a": "nowhere"})
    with pytest.raises(UnknownNodeError, match="node 'd' maps parameter 'a' to 'nowhere'"):
        wf.compile()


def test_keyword_only_parameters_after_star_args_are_still_inferred() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 1)
    wf.add("y", lambda: 2)
    wf.add("scale", lambda: 10)

    def total(*values: int, scale: int) -> int:
        return scale * sum(values)

    wf.add("total", total, deps=["x", "y"])
    plan = wf.compile()
    assert sorted(plan.deps("total")) == ["scale", "x", "y"]
    assert wf.run_sync()["total"] == 30


def test_nodes_may_be_added_before_their_dependencies() -> None:
    wf = Workflow("w")

    @wf.node
    def c(b: int) -> int:  # b is added later
        return b + 1

    wf.add("b", lambda v: v * 2, deps=["a"])  # a is added later
    wf.add("d", lambda: 0, after=["e"])  # e too
    wf.add("a", lambda: 5)
    wf.add("e", lambda: 0)
    plan = wf.compile()
    assert plan.deps("c") == ["b"]
    assert plan.deps("b") == ["a"]
    assert plan.deps("d") == ["e"]
    assert plan.required_inputs == ()
    order = plan.topological()
    assert order.index("a") < order.index("b") < order.index("c")
    assert order.index("e") < order.index("d")
    assert wf.run_sync()["c"] == 11


def test_a_parameter_becomes_a_node_output_once_that_node_is_added() -> None:
    wf = Workflow("w")

    @wf.node
    def report(region: str) -> str:
        return region

    assert wf.compile().required_inputs == ("region",)
    wf.add("region", lambda: "eu")
    plan = wf.compile()
    assert plan.required_inputs == ()
    assert plan.deps("report") == ["region"]


# -- option validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "node 'a': option retries= must be an int >= 0, got -1"),
        ({"retries": 1.5}, "node 'a': option retries= must be an int >= 0, got 1.5"),
        ({"retries": True}, "node 'a': option retries= must be an int >= 0, got True"),
        ({"retries": 2, "retry": Retry()}, "node 'a': give retries= or retry=, not both"),
        ({"retry": 3}, "node 'a': option retry= must be a flowrt.Retry, got 3"),
        ({"timeout": 0}, "node 'a': option timeout= must be a number of seconds > 0, got 0"),
        ({"timeout": -1.5}, "node 'a': option timeout= must be a number of seconds > 0, got -1.5"),
        ({"timeout": "5"}, "node 'a': option timeout= must be a number of seconds > 0, got '5'"),
        ({"limit": ""}, "node 'a': option limit= must be the name of a limit"),
        ({"trigger": "sometimes"}, "node 'a': option trigger= must be a flowrt.Trigger"),
        ({"executor": "gpu"}, "node 'a': option executor= must be 'loop', 'thread', 'process'"),
        ({"executor": 42}, "node 'a': option executor= must be 'loop', 'thread', 'process'"),
    ],
)
def test_invalid_options_raise_graph_errors_naming_node_and_option(
    options: dict[str, Any], message: str
) -> None:
    wf = Workflow("w")
    with pytest.raises(GraphError, match=re.escape(message)):
        wf.add("a", lambda: 1, **options)
    with pytest.raises(ValueError, match=re.escape(message)):
        wf.node(name="a", **options)(lambda: 1)
    assert "a" not in wf


def test_trigger_error_lists_the_choices() -> None:
    wf = Workflow("w")
    with pytest.raises(GraphError) as info:
        wf.add("a", lambda: 1, trigger="sometimes")
    for t in Trigger:
        assert t.name in str(info.value)
    assert str(info.value).endswith("got 'sometimes'")


def test_executor_on_an_async_function_is_an_error() -> None:
    wf = Workflow("w")

    async def fetch() -> int:
        return 1

    with pytest.raises(GraphError, match="node 'fetch': option executor= is for sync functions"):
        wf.node(executor="thread")(fetch)
    assert "fetch" not in wf


def test_unknown_option_keyword_is_a_type_error() -> None:
    wf = Workflow("w")
    with pytest.raises(TypeError, match=r"node 'a': unknown options colour=, size="):
        wf.add("a", lambda: 1, size=3, colour="red")
    with pytest.raises(TypeError, match=r"node 'b': unknown option retires="):
        wf.node(name="b", retires=3)(lambda: 1)  # type: ignore[call-overload]


def test_too_many_positional_deps_for_the_function() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 1)
    with pytest.raises(
        GraphError,
        match=re.escape("node 't' has 3 positional deps but its function takes "
                        "2 positional parameters"),
    ):
        wf.add("t", lambda a, b: a + b, deps=["x", "x", "x"])
    with pytest.raises(GraphError, match=r"takes 1 positional parameter\Z"):
        wf.add("u", lambda a: a, deps=["x", "x"])
    # *args takes any number
    wf.add("v", lambda *a: sum(a), deps=["x", "x", "x"])


def test_deps_must_be_a_list_not_a_string() -> None:
    wf = Workflow("w")
    with pytest.raises(TypeError, match="deps= takes a list of node names, not a str"):
        wf.add("a", lambda x: x, deps="x")


def test_node_and_workflow_names_must_be_non_empty_strings() -> None:
    with pytest.raises(ValueError, match="workflow's name must be a non-empty str"):
        Workflow("")
    wf = Workflow("w")
    with pytest.raises(ValueError, match="node's name must be a non-empty str"):
        wf.add("", lambda: 1)
    with pytest.raises(TypeError, match="fn must be callable"):
        wf.add("a", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="@node decorates a callable"):
        wf.node(42)  # type: ignore[call-overload]


def test_positional_only_parameters_must_come_from_positional_deps() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)

    def f(a: int, /) -> int:
        return a

    def g(a: int, n: int = 2, /) -> int:
        return a * n

    wf.add("via_deps", f, deps=["a"])
    wf.add("with_default", g, deps=["a"])  # n: left to its default
    assert wf.compile().optional_inputs == ()
    assert wf.run_sync()["with_default"] == 2
    wf.add("by_name", f)
    with pytest.raises(
        GraphError, match="node 'by_name': positional-only parameter 'a' cannot be filled"
    ):
        wf.compile()


def test_callables_without_a_readable_signature_take_positional_deps() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 3)
    wf.add("y", lambda: 5)
    wf.add("biggest", max, deps=["x", "y"])
    assert wf.compile().deps("biggest") == ["x", "y"]
    assert wf.run_sync()["biggest"] == 5


def test_async_generator_functions_are_refused() -> None:
    wf = Workflow("w")

    async def stream() -> Any:
        yield 1

    with pytest.raises(TypeError, match="async generator function"):
        wf.node(stream)


# -- definition errors -------------------------------------------------------------------


def test_error_hierarchy() -> None:
    for cls in (CycleError, UnknownNodeError, DuplicateNodeError):
        assert issubclass(cls, GraphError)
    assert issubclass(GraphError, ValueError)
    assert issubclass(GraphError, FlowError)
    assert issubclass(flowrt.MissingInputError, FlowError)
    assert issubclass(flowrt.MissingInputError, ValueError)


@pytest.mark.parametrize(
    "error",
    [
        CycleError(["a", "b", "a"]),
        UnknownNodeError("b", "a", "runs after"),
        DuplicateNodeError("a", "w"),
        flowrt.MissingInputError({"customer": ["a", "b"]}),
        flowrt.NoOutput("a", "skipped"),
        flowrt.NodeFailed("a", ValueError("bad")),
        flowrt.WorkflowFailed("w", "failed", {"a": ValueError("bad")}),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_and_copying(error: FlowError) -> None:
    # A process pool sends exceptions back pickled.
    for clone in (pickle.loads(pickle.dumps(error)), copy.deepcopy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert clone.args == error.args
        assert {k: str(v) for k, v in vars(clone).items()} == {
            k: str(v) for k, v in vars(error).items()
        }


def test_duplicate_node_is_refused_at_add_time() -> None:
    wf = Workflow("shop")
    wf.add("a", lambda: 1)
    with pytest.raises(DuplicateNodeError, match="workflow 'shop' already has a node named 'a'"):
        wf.add("a", lambda: 2)

    with pytest.raises(DuplicateNodeError) as info:

        @wf.node
        def a() -> int:
            return 3

    assert info.value.node == "a"
    assert wf.nodes["a"].fn() == 1  # the first definition stays


def test_unknown_dependency_in_deps() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda x, y: x, deps=["a", "ghost"])
    with pytest.raises(UnknownNodeError) as info:
        wf.compile()
    assert info.value.node == "b"
    assert info.value.missing == "ghost"
    assert str(info.value) == "node 'b' depends on 'ghost', which is not a node of the workflow"


def test_unknown_dependency_in_after() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1, after=["ghost"])
    with pytest.raises(UnknownNodeError) as info:
        wf.compile()
    assert (info.value.node, info.value.missing) == ("a", "ghost")
    assert str(info.value) == "node 'a' runs after 'ghost', which is not a node of the workflow"


def test_unknown_dependency_in_inputs() -> None:
    wf = Workflow("w")

    @wf.node(inputs={"user": "fetch_user"})
    def greet(user: str) -> str:
        return user

    with pytest.raises(UnknownNodeError) as info:
        wf.compile()
    assert (info.value.node, info.value.missing) == ("greet", "fetch_user")
    assert str(info.value) == (
        "node 'greet' maps parameter 'user' to 'fetch_user', which is not a node of the workflow"
    )


def test_inputs_naming_a_parameter_the_function_does_not_take() -> None:
    wf = Workflow("w")
    wf.add("x", lambda: 1)
    wf.add("a", lambda v: v, inputs={"w": "x"})
    with pytest.raises(GraphError, match="node 'a': inputs= names parameter 'w'"):
        wf.compile()


def _assert_real_cycle(wf: Workflow, cycle: list[str]) -> None:
    """Each node of ``cycle`` depends on the next one; the first is repeated at the end."""
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for node, dep in itertools.pairwise(cycle):
        spec = wf.nodes[node]
        params = {p.name for p in flowrt.workflow._signature.Signature.of(spec.fn).params}
        declared = {*spec.args, *spec.after, *(spec.inputs or {}).values(), *params}
        assert dep in declared, (node, dep)


def test_cycle_error_names_one_cycle_in_dependency_order() -> None:
    wf = Workflow("w")
    wf.add("start", lambda: 0)
    wf.add("a", lambda s, c: 0, deps=["start", "c"])
    wf.add("b", lambda a: 0, deps=["a"])
    wf.add("c", lambda b: 0, deps=["b"])
    wf.add("end", lambda c: 0, deps=["c"])
    with pytest.raises(CycleError) as info:
        wf.compile()
    cycle = info.value.cycle
    _assert_real_cycle(wf, cycle)
    assert set(cycle) == {"a", "b", "c"}
    # a depends on c, c on b, b on a
    start = cycle.index("a")
    rotated = cycle[start:-1] + cycle[:start] + ["a"]
    assert rotated == ["a", "c", "b", "a"]
    assert str(info.value) == "dependency cycle: " + " -> ".join(cycle)


def test_two_node_cycle_through_parameter_names() -> None:
    wf = Workflow("w")

    @wf.node
    def ping(pong: int) -> int:
        return pong

    @wf.node
    def pong(ping: int) -> int:
        return ping

    with pytest.raises(CycleError) as info:
        wf.compile()
    assert info.value.cycle in (["ping", "pong", "ping"], ["pong", "ping", "pong"])
    assert "ping" in str(info.value) and "pong" in str(info.value)


def test_cycle_through_after() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 0, after=["b"])
    wf.add("b", lambda: 0, after=["a"])
    with pytest.raises(CycleError) as info:
        wf.compile()
    _assert_real_cycle(wf, info.value.cycle)


@pytest.mark.parametrize("how", ["deps", "after", "param"])
def test_self_loop_is_a_cycle(how: str) -> None:
    wf = Workflow("w")
    wf.add("root", lambda: 0)
    if how == "deps":
        wf.add("loop", lambda x: x, deps=["loop"])
    elif how == "after":
        wf.add("loop", lambda: 0, after=["loop"])
    else:

        @wf.node
        def loop(loop: int) -> int:
            return loop

    with pytest.raises(CycleError) as info:
        wf.compile()
    assert info.value.cycle == ["loop", "loop"]
    assert str(info.value) == "dependency cycle: loop -> loop"


def test_graph_errors_are_value_errors() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 0, after=["a"])
    with pytest.raises(ValueError):
        wf.compile()


# -- reading and removing ----------------------------------------------------------------


def test_workflow_reading_api() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a)
    assert len(wf) == 2
    assert list(wf) == ["a", "b"]
    assert "a" in wf and "zzz" not in wf
    assert repr(wf) == "<Workflow 'w' with 2 nodes>"
    with pytest.raises(TypeError):
        wf.nodes["c"] = wf.nodes["a"]  # type: ignore[index]


def test_remove_returns_the_spec_and_dependents_then_fail_to_compile() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda v: v, deps=["a"])
    spec = wf.remove("a")
    assert spec.name == "a"
    assert list(wf) == ["b"]
    with pytest.raises(UnknownNodeError, match="node 'b' depends on 'a'"):
        wf.compile()
    with pytest.raises(KeyError, match="has no node 'zzz'"):
        wf.remove("zzz")
    wf.add("a", lambda: 2)  # may be added again
    assert wf.compile().deps("b") == ["a"]


# -- retry policy ------------------------------------------------------------------------


def test_retry_defaults_and_attempt_counting() -> None:
    r = Retry()
    assert (r.attempts, r.delay, r.factor, r.max_delay, r.jitter) == (3, 0.1, 2.0, 30.0, 0.1)
    assert r.on == (Exception,)
    assert Retry(attempts=1).attempts == 1  # the first attempt only: no retry
    wf = Workflow("w")
    wf.add("a", lambda: 1, retries=3)  # three more after the first
    assert wf.nodes["a"].options.attempts == 4
    assert wf.compile().attempts == [4]


def test_retry_backoff_grows_by_factor_and_is_capped() -> None:
    r = Retry(attempts=10, delay=0.5, factor=3.0, max_delay=10.0, jitter=0)
    assert [r.backoff(k) for k in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert Retry(delay=0, jitter=0).backoff(5) == 0
    assert Retry(delay=2, factor=1, jitter=0).backoff(7) == 2


def test_retry_backoff_of_a_very_late_attempt_is_the_cap() -> None:
    r = Retry(attempts=5000, delay=1.0, factor=2.0, max_delay=60, jitter=0)
    assert r.backoff(4000) == 60
    assert Retry(attempts=5000, delay=1, factor=2, max_delay=60, jitter=0).backoff(4000) == 60
    assert Retry(attempts=5000, delay=0, jitter=0).backoff(4000) == 0


def test_retry_jitter_stays_within_its_bounds() -> None:
    r = Retry(delay=1.0, factor=2.0, max_delay=3.0, jitter=0.25)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 3.0), (9, 3.0)]:
        waits = [r.backoff(attempt) for _ in range(300)]
        assert all(base * 0.75 <= w <= base * 1.25 for w in waits)
        assert max(waits) - min(waits) > 0  # it does vary


def test_retry_on_filters_exceptions() -> None:
    r = Retry(on=(ConnectionError, TimeoutError))
    assert r.retries(ConnectionResetError())  # a subclass
    assert r.retries(TimeoutError())
    assert not r.retries(ValueError())
    assert Retry(on=KeyError).on == (KeyError,)
    assert Retry(on=[KeyError, OSError]).on == (KeyError, OSError)
    assert Retry().retries(ValueError())
    assert not Retry().retries(KeyboardInterrupt())  # BaseException: not by default


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"attempts": 0}, ValueError, "Retry.attempts must be an int >= 1, got 0"),
        ({"attempts": 2.0}, ValueError, "Retry.attempts must be an int >= 1, got 2.0"),
        ({"attempts": True}, ValueError, "Retry.attempts must be an int >= 1, got True"),
        ({"delay": -1}, ValueError, "Retry.delay must be a number >= 0, got -1"),
        ({"delay": float("nan")}, ValueError, "Retry.delay must be a number >= 0, got nan"),
        ({"factor": "2"}, ValueError, "Retry.factor must be a number >= 0, got '2'"),
        ({"max_delay": -0.5}, ValueError, "Retry.max_delay must be a number >= 0, got -0.5"),
        ({"jitter": -0.1}, ValueError, "Retry.jitter must be a number >= 0, got -0.1"),
        ({"jitter": 1.5}, ValueError, "Retry.jitter must be between 0 and 1, got 1.5"),
        ({"on": ValueError()}, TypeError, "Retry(on=...) takes exception types, got ValueError()"),
        ({"on": (ValueError, int)}, TypeError, "takes exception types, got <class 'int'>"),
    ],
)
def test_retry_validation(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        Retry(**kwargs)


def test_retry_is_immutable_and_hashable() -> None:
    r = Retry(attempts=2)
    with pytest.raises(AttributeError):
        r.attempts = 5  # type: ignore[misc]
    assert hash(r) == hash(Retry(attempts=2))
