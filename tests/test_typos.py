"""Typos get a clear error that names the culprit and, when there is one, the near match.

Issue 11, item 14: a parameter close to a node name, run inputs no node takes
(``strict_inputs``), an unknown node option, ``limits=`` that is no mapping, ``run_sync``
inside a running event loop, ``@wf.node`` on a lambda, and ``result[func]``.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import anyio
import pytest

import flowrt
from flowrt import GraphError, MissingInputError, UnknownInputError


def checkout() -> tuple[flowrt.Workflow, list[str]]:
    """A workflow taking the run input ``order_id``, and the list of nodes that ran."""
    ran: list[str] = []
    wf = flowrt.Workflow("checkout")

    @wf.node
    def order(order_id: str) -> dict[str, str]:
        ran.append("order")
        return {"id": order_id}

    @wf.node
    def charge(order: dict[str, str], currency: str = "EUR") -> str:
        ran.append("charge")
        return f"charged {order['id']} in {currency}"

    return wf, ran


# -- a parameter named close to a node -----------------------------------------------------


def test_a_parameter_close_to_a_node_name_gets_did_you_mean_node() -> None:
    wf = flowrt.Workflow("typo")
    wf.add("load2", lambda: 1)
    wf.add("report", lambda lod2: lod2)  # meant the node 'load2': it became a run input
    with pytest.raises(MissingInputError) as caught:
        wf.run_sync()
    assert str(caught.value) == (
        "missing run input: 'lod2' (needed by 'report'; did you mean node 'load2'?)")
    assert caught.value.missing == {"lod2": ["report"]}
    assert caught.value.hints == {"lod2": "did you mean node 'load2'?"}


def test_an_input_that_merely_extends_a_node_name_gets_no_hint() -> None:
    # 'order_id' is the input of node 'order', not a typo of it.
    wf, _ = checkout()
    with pytest.raises(MissingInputError) as caught:
        wf.run_sync()
    assert str(caught.value) == "missing run input: 'order_id' (needed by 'order')"
    assert caught.value.hints == {}


def test_a_missing_input_close_to_a_given_one_says_so() -> None:
    wf, ran = checkout()
    with pytest.raises(MissingInputError, match=(
            r"'order_id' \(needed by 'order'; an input 'ordr_id' was given: a typo\?\)")):
        wf.run_sync({"ordr_id": "A1"}, strict_inputs=False)
    assert ran == []


def test_missing_input_error_with_hints_survives_pickling() -> None:
    error = MissingInputError({"lod2": ["report"]}, {"lod2": "did you mean node 'load2'?"})
    for clone in (pickle.loads(pickle.dumps(error)), copy.deepcopy(error)):
        assert str(clone) == str(error) and clone.hints == error.hints


# -- run inputs no node takes --------------------------------------------------------------


def test_an_input_no_node_takes_is_an_error_with_the_near_match() -> None:
    wf, ran = checkout()
    with pytest.raises(UnknownInputError) as caught:
        wf.run_sync({"order_id": "A1", "curency": "USD"})
    assert str(caught.value) == (
        "run input 'curency' is taken by no node of workflow 'checkout'; did you mean "
        "'currency'? (pass strict_inputs=False to give inputs that nodes read from ctx.data)")
    assert caught.value.unknown == ["curency"] and caught.value.near == {"curency": "currency"}
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, flowrt.FlowError)
    assert ran == []  # refused before any node ran


def test_several_unknown_inputs_are_named_each() -> None:
    wf, _ = checkout()
    with pytest.raises(UnknownInputError) as caught:
        wf.run_sync({"ordr_id": "A1", "zzz": 1})
    assert str(caught.value).startswith(
        "run inputs 'ordr_id', 'zzz' are taken by no node of workflow 'checkout'; "
        "did you mean 'order_id' for 'ordr_id'?")
    error = pickle.loads(pickle.dumps(caught.value))
    assert str(error) == str(caught.value) and error.near == {"ordr_id": "order_id"}


def test_strict_inputs_false_keeps_extra_inputs_in_the_data() -> None:
    wf = flowrt.Workflow("extra")

    @wf.node
    def read(ctx: flowrt.Context) -> Any:
        return ctx.data["tenant"]

    result = wf.run_sync({"tenant": "acme"}, strict_inputs=False)
    assert result["read"] == "acme"
    with pytest.raises(UnknownInputError, match="'tenant' is taken by no node"):
        wf.run_sync({"tenant": "acme"})


def test_an_input_named_like_a_node_still_raises_its_own_error() -> None:
    wf, ran = checkout()
    for strict in (True, False):
        with pytest.raises(ValueError, match="run input 'order' is the name of a node"):
            wf.run_sync({"order_id": "A1", "order": {}}, strict_inputs=strict)
    assert ran == []


@pytest.mark.anyio
async def test_strict_inputs_on_every_way_to_run() -> None:
    wf, ran = checkout()
    bad = {"order_id": "A1", "curency": "USD"}
    with pytest.raises(UnknownInputError):
        await wf.run(bad)
    async with flowrt.Runtime() as rt:
        with pytest.raises(UnknownInputError):
            await rt.run(wf, bad)
        assert (await rt.run(wf, bad, strict_inputs=False)).ok
    with pytest.raises(UnknownInputError):
        await anyio.to_thread.run_sync(lambda: flowrt.runtime.run_sync(wf, bad))
    assert ran == ["order", "charge"]


@pytest.mark.anyio
async def test_a_durable_run_with_an_unknown_input_records_nothing() -> None:
    wf, ran = checkout()
    store = flowrt.MemoryStore()
    with pytest.raises(UnknownInputError):
        await wf.run({"order_id": "A1", "curency": "USD"}, store=store, run_id="r")
    assert store.get_run("r") is None and ran == []
    # Resuming without inputs uses the stored ones, which are not checked again.
    first = await wf.run({"order_id": "A1", "note": "x"}, store=store, run_id="s",
                         strict_inputs=False)
    assert first.ok
    assert (await wf.run(store=store, run_id="s")).ok


# -- node options --------------------------------------------------------------------------


def test_an_unknown_node_option_gets_the_near_match() -> None:
    wf = flowrt.Workflow("w")
    with pytest.raises(TypeError, match=r"^node 'a': unknown option retires= \(did you mean "
                                        r"retries=\?\)$"):
        wf.add("a", lambda: 1, retires=2)
    with pytest.raises(TypeError, match=r"node 'b': unknown option timout= \(did you mean "
                                        r"timeout=\?\)"):
        wf.node(name="b", timout=3)(lambda: 1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"node 'c': unknown option colour=; the options are "
                                        r"name, deps, after, inputs, retries, retry"):
        wf.add("c", lambda: 1, colour="red")
    assert len(wf) == 0


# -- limits= -------------------------------------------------------------------------------


EXPECTED = r"limits= takes a mapping of limit name to capacity, such as \{'api': 3\}, got 3"


def test_runtime_limits_that_are_no_mapping_are_a_type_error() -> None:
    with pytest.raises(TypeError, match=EXPECTED):
        flowrt.Runtime(limits=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limit names as str keys, got 1"):
        flowrt.Runtime(limits={1: 2})  # type: ignore[dict-item]


@pytest.mark.anyio
async def test_run_limits_that_are_no_mapping_are_a_type_error() -> None:
    wf, ran = checkout()
    async with flowrt.Runtime() as rt:
        with pytest.raises(TypeError, match=EXPECTED):
            await rt.run(wf, {"order_id": "A1"}, limits=3)  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match=EXPECTED):
        await wf.run({"order_id": "A1"}, limits=3)  # type: ignore[typeddict-item]
    assert ran == []


def test_run_sync_limits_that_are_no_mapping_are_a_type_error() -> None:
    wf, _ = checkout()
    with pytest.raises(TypeError, match=EXPECTED):
        wf.run_sync({"order_id": "A1"}, limits=3)  # type: ignore[typeddict-item]


# -- run_sync inside a running loop --------------------------------------------------------


@pytest.mark.anyio
async def test_run_sync_inside_a_running_loop_says_to_await_run(anyio_backend: str) -> None:
    wf, ran = checkout()
    with pytest.raises(RuntimeError, match=(
            rf"run_sync\(\) cannot start an event loop inside the running {anyio_backend} "
            r"loop; in async code use 'await wf.run\(...\)'")):
        wf.run_sync({"order_id": "A1"})
    assert ran == []
    # From a worker thread there is no loop in the way: run_sync starts its own.
    result = await anyio.to_thread.run_sync(lambda: wf.run_sync({"order_id": "A1"}))
    assert result.ok


def test_run_sync_inside_an_asyncio_callback_says_to_await_run() -> None:
    import asyncio

    wf, _ = checkout()
    errors: list[BaseException] = []

    def callback() -> None:  # no current task: a plain call_soon callback
        try:
            wf.run_sync({"order_id": "A1"})
        except RuntimeError as e:
            errors.append(e)

    async def main() -> None:
        asyncio.get_running_loop().call_soon(callback)
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(errors) == 1 and "use 'await wf.run(...)'" in str(errors[0])


# -- @wf.node on a lambda ------------------------------------------------------------------


def test_node_decorator_on_a_lambda_requires_a_name() -> None:
    wf = flowrt.Workflow("w")
    with pytest.raises(TypeError, match=r"^@wf.node cannot name a node after a lambda: give the "
                                        r"node a name with @wf.node\(name=...\) or "
                                        r"wf.add\(name, fn\)$"):
        wf.node(lambda: 1)
    with pytest.raises(TypeError, match="after a lambda"):
        wf.node(retries=1)(lambda: 1)
    assert "<lambda>" not in wf and len(wf) == 0
    wf.node(name="one")(lambda: 1)
    wf.add("two", lambda one: one + 1)
    assert wf.run_sync()["two"] == 2


def test_definition_errors_stay_what_they_were() -> None:
    # A bad option value is still a GraphError, not a TypeError.
    wf = flowrt.Workflow("w")
    with pytest.raises(GraphError):
        wf.add("a", lambda: 1, retries=-1)


# -- result[func] --------------------------------------------------------------------------


def test_result_takes_a_node_function_like_deps() -> None:
    wf = flowrt.Workflow("w")

    @wf.node(name="prices")
    def load_prices() -> list[float]:
        return [1.5, 2.5]

    @wf.node
    def total(prices: list[float]) -> float:
        return sum(prices)

    def double(x: float) -> float:  # added with wf.add: found by its __name__, as deps= does
        return 2 * x

    wf.add("double", double, deps=[total])

    @wf.node
    def broken() -> None:
        raise ValueError("no")

    result = wf.run_sync()
    assert result[load_prices] == [1.5, 2.5] == result["prices"]
    assert result[total] == 4.0 and result[double] == 8.0
    assert result.nodes[load_prices].name == "prices"
    assert result.get(total) == 4.0 and result.get(broken, "n/a") == "n/a"
    with pytest.raises(flowrt.NodeFailed, match="node 'broken' failed"):
        result[broken]

    def stranger() -> None: ...

    with pytest.raises(KeyError, match="workflow 'w' has no node 'stranger'"):
        result[stranger]
    with pytest.raises(TypeError, match="a node name or a node's function"):
        result[3]  # type: ignore[index]
