"""Running workflows: outputs, sync and async nodes, context, inputs, results.

Every test runs on both anyio backends (asyncio and trio).
"""

from __future__ import annotations

import inspect
import sys
import threading
import uuid
from typing import Any

import anyio
import pytest
from subproc import run_program

import flowrt
from flowrt import RunStatus, Status

pytestmark = pytest.mark.anyio


async def test_outputs_flow_along_edges() -> None:
    wf = flowrt.Workflow("arith")

    @wf.node
    async def x(seed: int) -> int:
        return seed + 1

    @wf.node
    def y(x: int) -> int:  # sync: runs in a worker thread
        return x * 10

    wf.add("total", lambda a, b: a + b, deps=["x", "y"])

    result = await wf.run({"seed": 1})
    assert result.ok and result.status is RunStatus.SUCCEEDED
    assert result["x"] == 2 and result["y"] == 20 and result["total"] == 22
    assert dict(result.outputs) == {"x": 2, "y": 20, "total": 22}
    assert result.nodes["total"].status is Status.SUCCEEDED
    assert result.nodes["total"].attempts == 1
    assert result.nodes["total"].duration is not None


async def test_sync_nodes_run_in_worker_threads_and_loop_executor_in_loop() -> None:
    wf = flowrt.Workflow("threads")
    main = threading.get_ident()

    @wf.node
    def in_thread() -> int:
        return threading.get_ident()

    @wf.node(executor="loop")
    def in_loop() -> int:
        return threading.get_ident()

    result = await wf.run()
    assert result["in_thread"] != main
    assert result["in_loop"] == main


@pytest.mark.parametrize("executor", ["thread", "loop"])
async def test_sync_node_returning_a_coroutine_is_its_output_not_awaited(executor: str) -> None:
    """design.md: a sync callable's return value is its output as is. On both backends,
    in a thread or the loop (trio refuses a coroutine result of a worker thread on its
    own: flowrt carries it across boxed)."""
    wf = flowrt.Workflow("coro")
    awaited = []

    async def inner() -> int:
        awaited.append(True)
        return 1

    wf.add("make", lambda: inner(), executor=executor)
    result = await wf.run()
    assert result.ok
    value = result["make"]
    assert inspect.iscoroutine(value) and not awaited
    value.close()


async def test_context_is_injected() -> None:
    wf = flowrt.Workflow("ctx")
    seen = {}

    @wf.node
    async def first(ctx: flowrt.Context) -> str:
        seen["first"] = (ctx.run_id, ctx.node, ctx.attempt)
        ctx.data.set("note", "hello")
        return "x"

    @wf.node
    def second(first: str, ctx: flowrt.Context) -> str:
        ctx.log.info("working", value=first)
        return ctx.data["note"] + first

    result = await wf.run(run_id="run-1")
    assert seen["first"] == ("run-1", "first", 1)
    assert result["second"] == "hellox"
    assert result.data["note"] == "hello"


async def test_missing_inputs_fail_before_any_node_runs() -> None:
    wf = flowrt.Workflow("inputs")
    ran = []

    @wf.node
    async def a() -> None:
        ran.append("a")

    @wf.node
    async def b(customer: str, region: str = "eu") -> str:
        ran.append("b")
        return customer + region

    with pytest.raises(flowrt.MissingInputError, match=r"'customer'.*needed by 'b'") as info:
        await wf.run({})
    assert info.value.missing == {"customer": ["b"]}
    assert ran == []

    result = await wf.run({"customer": "c", "region": "us"})
    assert result["b"] == "cus"
    result = await wf.run({"customer": "c"})
    assert result["b"] == "ceu"


async def test_inputs_are_readable_in_data_and_inputs_mapping() -> None:
    wf = flowrt.Workflow("in")

    @wf.node(inputs={"value": "source"})
    async def doubled(value: int) -> int:
        return value * 2

    @wf.node
    async def source(n: int) -> int:
        return n

    result = await wf.run({"n": 4})
    assert result["doubled"] == 8
    assert result.data["n"] == 4


async def test_node_output_reachable_through_data_by_name() -> None:
    wf = flowrt.Workflow("data")
    wf.add("a", lambda: {"k": 1})
    result = await wf.run()
    assert result.data["a"] == {"k": 1}


async def test_data_reused_across_runs() -> None:
    wf = flowrt.Workflow("reuse")
    wf.add("a", lambda n: n + 1, deps={"n": "n0"})
    wf.add("n0", lambda seed: seed)
    data = flowrt.WorkflowData()
    first = await wf.run({"seed": 1}, data=data)
    assert first["a"] == 2
    capacity = data.capacity
    data.reset()
    second = await wf.run({"seed": 5}, data=data)
    assert second["a"] == 6
    assert first["a"] == 2  # a result keeps its own outputs
    assert data.capacity == capacity


@pytest.mark.skipif(not hasattr(__import__("inspect"), "markcoroutinefunction"),
                    reason="inspect.markcoroutinefunction is Python 3.12+")
async def test_awaitable_that_is_not_a_coroutine() -> None:
    import inspect

    wf = flowrt.Workflow("awaitable")

    class Later:
        def __await__(self):  # type: ignore[no-untyped-def]
            yield from anyio.sleep(0).__await__()
            return 7

    def node() -> Later:
        return Later()

    inspect.markcoroutinefunction(node)  # type: ignore[attr-defined]
    wf.add("a", node)
    result = await wf.run()
    assert result["a"] == 7


async def test_result_views() -> None:
    wf = flowrt.Workflow("views")
    wf.add("ok", lambda: 1)

    def boom() -> None:
        raise ValueError("boom")

    wf.add("bad", boom)
    wf.add("after_bad", lambda b: b, deps=["bad"])
    result = await wf.run()
    assert not result.ok and result.status is RunStatus.FAILED
    assert result["ok"] == 1
    with pytest.raises(flowrt.NodeFailed) as failed:
        result["bad"]
    assert isinstance(failed.value.__cause__, ValueError)
    assert isinstance(failed.value, flowrt.NoOutput)
    assert isinstance(failed.value, LookupError)
    with pytest.raises(flowrt.NoOutput, match="skipped"):
        result["after_bad"]
    assert result.get("after_bad", "default") == "default"
    assert set(result.errors) == {"bad"}
    with pytest.raises(flowrt.WorkflowFailed) as wf_failed:
        result.raise_for_status()
    assert set(wf_failed.value.errors) == {"bad"}
    assert result.counts() == {"succeeded": 1, "failed": 1, "skipped": 1}
    metrics = result.metrics
    assert metrics.nodes == 3 and metrics.attempts == 2 and metrics.retries == 0
    assert "classDef failed" in result.to_mermaid()
    assert "fillcolor" in result.to_dot()
    with pytest.raises(KeyError):
        result.nodes["nope"]


def test_run_sync_on_both_backends() -> None:
    wf = flowrt.Workflow("sync")
    wf.add("a", lambda: 1)

    @wf.node
    async def b(a: int) -> int:
        await anyio.sleep(0)
        return a + 1

    assert wf.run_sync().get("b") == 2
    assert wf.run_sync(backend="trio")["b"] == 2


def test_run_sync_on_uvloop() -> None:
    pytest.importorskip("uvloop")
    import asyncio

    wf = flowrt.Workflow("fast loop")

    @wf.node
    async def loop_type() -> str:
        await anyio.sleep(0.001)
        return type(asyncio.get_running_loop()).__module__

    result = wf.run_sync(backend_options={"use_uvloop": True}, max_concurrency=2)
    assert result.ok and result["loop_type"].startswith("uvloop")
    assert wf.run_sync()["loop_type"].startswith("asyncio")  # the default loop otherwise


def test_run_sync_says_what_is_wrong_with_its_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    wf = flowrt.Workflow("w")
    wf.add("a", lambda: 1)
    with pytest.raises(ValueError, match="backend must be 'asyncio' or 'trio', got 'curio'"):
        wf.run_sync(backend="curio")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"needs uvloop: pip install 'flowrt\[uvloop\]'"):
        wf.run_sync(backend_options={"use_uvloop": True})


async def test_empty_workflow() -> None:
    result = await flowrt.Workflow("empty").run()
    assert result.ok and len(result.nodes) == 0


async def test_metrics_off_and_sampled() -> None:
    wf = flowrt.Workflow("m")
    for i in range(20):
        wf.add(f"n{i}", lambda: None)
    async with flowrt.Runtime(metrics=False) as rt:
        result = await rt.run(wf)
    assert result.nodes["n0"].duration is None
    assert result.metrics.timed_nodes == 0
    async with flowrt.Runtime(metrics=0.25) as rt:
        result = await rt.run(wf)
    assert result.metrics.timed_nodes == 5


async def test_runtime_must_be_opened() -> None:
    wf = flowrt.Workflow("closed")
    wf.add("a", lambda: 1)
    with pytest.raises(RuntimeError, match="async with"):
        await flowrt.Runtime().run(wf)


async def test_invalid_run_arguments() -> None:
    wf = flowrt.Workflow("args")
    wf.add("a", lambda: 1)
    with pytest.raises(ValueError, match="max_concurrency"):
        await wf.run(max_concurrency=0)
    with pytest.raises(ValueError, match="timeout"):
        await wf.run(timeout=0)
    with pytest.raises(ValueError, match="limit 'x'"):
        await wf.run(limits={"x": 0})


async def test_context_variables_set_by_a_node_stay_in_that_node() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    wf = flowrt.Workflow("cv")

    @wf.node
    async def setter() -> str:
        var.set("from setter")
        await anyio.sleep(0)
        return var.get()

    @wf.node
    async def reader(setter: str) -> str:
        return var.get()

    @wf.node
    def sync_reader(setter: str) -> str:
        return var.get()

    var.set("caller")
    result = await wf.run()
    assert result["setter"] == "from setter"
    assert result["reader"] == "caller"  # nodes see the caller's values, not each other's
    assert result["sync_reader"] == "caller"
    assert var.get() == "caller"


async def test_nodes_that_return_suspend_and_raise_mixed_in_one_runner() -> None:
    """A runner steps coroutines with a stepper (decision 027): one that suspends keeps
    its stepper until it ends, one that raises ends it, and the nodes after either run
    on a new one -- with their own outputs, errors and context variables."""
    import contextvars
    import gc

    var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=-1)
    wf = flowrt.Workflow("mixed")

    def make(kind: str, i: int) -> Any:
        async def returns(*_: object) -> int:
            var.set(i)
            gc.collect()  # a stepper dropped too early would close a suspended node here
            return i * 10 + var.get() - i

        async def suspends(*_: object) -> int:
            var.set(i)
            await anyio.sleep(0.001 * (i % 3))
            return i * 10 + var.get() - i

        async def raises(*_: object) -> int:
            raise ValueError(f"node {i}")

        return {"returns": returns, "suspends": suspends, "raises": raises}[kind]

    kinds = ["returns", "suspends", "returns", "raises", "returns", "suspends", "suspends",
             "raises"]
    for i in range(64):
        kind = kinds[i % len(kinds)]
        deps = [f"n{i - 1}"] if i % 4 and kind != "raises" else []
        wf.add(f"n{i}", make(kind, i), deps=deps)
    with anyio.fail_after(30):  # a node closed under its runner hangs the run
        result = await wf.run(fail_fast=False)
    for i in range(64):
        node = result.nodes[f"n{i}"]
        if kinds[i % len(kinds)] == "raises":
            assert node.status is Status.FAILED
            assert str(node.error) == f"node {i}"
        elif node.status is Status.SUCCEEDED:
            assert result[f"n{i}"] == i * 10
        else:  # after a failed dependency
            assert node.status is Status.SKIPPED
    assert sum(n.status is Status.SUCCEEDED for n in result.nodes.values()) > 32
    assert var.get() == -1  # nothing a node set leaked into the caller


async def test_long_inline_stretches_let_the_loop_run() -> None:
    wf = flowrt.Workflow("chain")

    async def step(*_: object) -> None:
        return None

    for i in range(5000):
        wf.add(f"n{i}", step, deps=[f"n{i - 1}"] if i else [])
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await anyio.sleep(0)
        before = ticks
        result = await wf.run()
        tg.cancel_scope.cancel()
    assert result.ok
    assert ticks - before >= 4  # the loop ran during the run, not only after it


# -- scale (issue 18): ready nodes are taken in id order, whatever order they were added --
@pytest.mark.parametrize("order", ["added_first", "added_last", "shuffled"])
async def test_every_node_runs_after_its_dependencies_whatever_the_insertion_order(
        order: str) -> None:
    """Ready nodes are taken in id (insertion) order where they can be; a node added
    before its dependencies becomes ready behind that order and must still run, once,
    after them -- with nodes that suspend in the mix, so runners take turns."""
    import random

    rng = random.Random(18)
    n = 400
    graph = {f"n{i}": [f"n{j}" for j in rng.sample(range(i), min(i, rng.randint(1, 3)))]
             for i in range(n)}
    names = list(graph)
    if order == "added_last":
        names.reverse()
    elif order == "shuffled":
        rng.shuffle(names)
    ran: list[str] = []
    wf = flowrt.Workflow("order")
    for name in names:
        async def node(*_: object, name: str = name) -> str:
            if int(name[1:]) % 7 == 0:
                await anyio.sleep(0)  # suspends: another runner takes the queue
            ran.append(name)
            return name
        wf.add(name, node, deps=graph[name])
    result = await wf.run()
    assert result.ok
    assert sorted(ran) == sorted(graph)  # every node once
    position = {name: k for k, name in enumerate(ran)}
    for name, deps in graph.items():
        for dep in deps:
            assert position[dep] < position[name], (dep, name)


@pytest.mark.parametrize("fan_in", [3, 300])
async def test_a_skip_reached_by_a_success_cascades_whatever_the_in_degree(fan_in: int) -> None:
    """A node whose last dependency to end succeeds (settled inline by the runner) but
    another failed: its rule decides (ALL_SUCCESS: SKIPPED, and so are its dependents;
    ALL_DONE: it runs). With more than 255 dependencies the run counts them in lists
    instead of bytes."""
    wf = flowrt.Workflow("fan_in")

    async def boom() -> None:
        raise RuntimeError("boom")

    async def ok(*_: object) -> int:
        return 1

    wf.add("bad", boom)  # added (so run) first: it fails before the others succeed
    ups = [f"up{i}" for i in range(fan_in)]
    for name in ups:
        wf.add(name, ok)
    wf.add("strict", ok, deps=["bad", *ups])
    wf.add("after_strict", ok, deps=["strict"])
    wf.add("lenient", ok, after=["bad", *ups], trigger=flowrt.Trigger.ALL_DONE)
    wf.add("after_lenient", ok, deps=["lenient"])
    result = await wf.run()
    statuses = result.statuses()
    assert statuses["bad"] is Status.FAILED
    assert statuses["strict"] is Status.SKIPPED and statuses["after_strict"] is Status.SKIPPED
    assert statuses["lenient"] is Status.SUCCEEDED and result["after_lenient"] == 1
    assert result.status is RunStatus.FAILED


async def test_a_run_without_run_id_gets_a_new_uuid4_hex() -> None:
    wf = flowrt.Workflow("ids")
    wf.add("a", lambda: 1, executor="loop")
    ids = [(await wf.run()).run_id for _ in range(50)]
    assert len(set(ids)) == 50
    for run_id in ids:
        parsed = uuid.UUID(hex=run_id)
        assert parsed.hex == run_id and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_failed_run_is_freed_with_its_result_not_by_the_garbage_collector(
        backend: str) -> None:
    """A node's error holds a traceback, hence a runner's frame and the run's supervisor.
    Nothing of the run may hold the error back (a cycle): then a service whose runs
    fail is freed run by run, by reference counting, instead of piling them up for
    the garbage collector (16 failing runs at once left ~50 objects each on trio,
    ~20 on asyncio). In a fresh interpreter under ``anyio.run``: under pytest's runner
    one of the cycles (a failing future kept by a frame) did not show."""
    out = run_program('''
        import gc
        import anyio, flowrt

        async def fetch() -> int:
            await anyio.sleep(0)
            return 1

        async def charge(fetch: int) -> int:
            await anyio.sleep(0)
            raise ValueError("card declined")

        fails = flowrt.Workflow("fails")
        fails.add("fetch", fetch)
        fails.add("charge", charge)
        shapes = [fails]

        if BACKEND == "asyncio":  # a node that waits on a future that fails
            import asyncio

            def call():
                loop = asyncio.get_running_loop()
                future = loop.create_future()
                loop.call_soon(future.set_exception, TimeoutError("gateway timeout"))
                return future

            async def order() -> int:
                return 1

            async def request(order: int) -> int:
                await anyio.sleep(0)  # the future comes at a later step
                return await call()

            async def request_now(order: int) -> int:
                return await call()  # the future comes at the first step

            calls = flowrt.Workflow("calls")
            calls.add("order", order)
            calls.add("request", request)
            calls.add("request_now", request_now)
            shapes.append(calls)

        async def main() -> None:
            for wf in shapes:
                assert not (await wf.run()).ok  # made once: caches, the backend's set-up
            gc.collect()
            gc.disable()
            for wf in shapes:
                async def one() -> None:
                    assert not (await wf.run()).ok

                async with anyio.create_task_group() as tg:
                    for _ in range(16):
                        tg.start_soon(one)
                if BACKEND == "asyncio":  # tasks whose result is the run's result
                    results = await asyncio.gather(*(wf.run() for _ in range(16)))
                    assert not any(r.ok for r in results)
                    del results
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = sorted({type(o).__name__ for o in gc.garbage
                           if type(o).__module__.startswith("flowrt")})
            print("cyclic garbage of flowrt types:", ours)

        anyio.run(main, backend=BACKEND)
    ''', backend=backend, timeout=60)
    assert out.strip().endswith("cyclic garbage of flowrt types: []")
