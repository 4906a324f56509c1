"""Sub-workflows (docs/sub-workflows.md): a Workflow as a node -- inputs, output,
errors, depth, cycles, cancellation, durable child runs on every store (resuming the
parent resumes the child), SIGKILL in the middle of a child, pictures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from stores import StoreKit

import flowrt
from flowrt import RunStatus, Status

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


def _payment(calls: list[str] | None = None, fail: bool = False) -> flowrt.Workflow:
    child = flowrt.Workflow("payment")

    @child.node
    async def authorize(amount: int, ctx: flowrt.Context, currency: str = "EUR") -> str:
        if calls is not None:
            calls.append(f"authorize {ctx.run_id}")
        return f"auth {amount} {currency}"

    @child.node
    async def capture(authorize: str, ctx: flowrt.Context) -> str:
        if calls is not None:
            calls.append(f"capture {ctx.run_id}")
        if fail:
            raise ConnectionError("card declined")
        return f"captured ({authorize})"

    return child


def _order(child: flowrt.Workflow, **options: Any) -> flowrt.Workflow:
    wf = flowrt.Workflow("order")

    @wf.node
    async def total(order_id: str) -> int:
        return 42

    wf.add("pay", child, inputs={"amount": "total"}, **options)

    @wf.node
    async def receipt(pay: str) -> str:
        return f"receipt: {pay}"

    return wf


async def test_inputs_bind_by_name_and_the_output_is_the_single_sink() -> None:
    calls: list[str] = []
    result = await _order(_payment(calls)).run({"order_id": "A1"}, run_id="o1")
    assert result.ok
    assert result["pay"] == "captured (auth 42 EUR)"
    assert result["receipt"] == "receipt: captured (auth 42 EUR)"
    # the child run's id is parent/node
    assert calls == ["authorize o1/pay", "capture o1/pay"]


async def test_an_optional_child_input_takes_the_parents_value_or_keeps_its_default() -> None:
    wf = _order(_payment())
    given = await wf.run({"order_id": "A1", "currency": "CHF"})
    assert given["pay"] == "captured (auth 42 CHF)"
    plan = wf.compile()
    assert plan.required_inputs == ("order_id",)
    assert "currency" in plan.optional_inputs


async def test_output_picks_another_node() -> None:
    result = await _order(_payment(), output="authorize").run({"order_id": "A1"})
    assert result["pay"] == "auth 42 EUR"


def test_bad_outputs_are_refused_when_adding() -> None:
    with pytest.raises(flowrt.GraphError, match="did you mean 'authorize'"):
        _order(_payment(), output="authorise")
    two = flowrt.Workflow("two")
    two.add("a", lambda: 1)
    two.add("b", lambda: 2)
    wf = flowrt.Workflow("p")
    with pytest.raises(flowrt.GraphError, match=r"2 sinks \('a', 'b'\).*output="):
        wf.add("two", two)
    wf.add("two", two, output="b")
    assert wf.run_sync()["two"] == 2
    with pytest.raises(flowrt.GraphError, match="output= is for a sub-workflow"):
        wf.add("f", lambda: 1, output="x")


async def test_a_failed_child_fails_the_node_with_the_childs_errors() -> None:
    result = await _order(_payment(fail=True)).run({"order_id": "A1"}, run_id="o2")
    assert result.status is RunStatus.FAILED
    assert result.nodes["receipt"].status is Status.SKIPPED
    error = result.errors["pay"]
    assert isinstance(error, flowrt.SubWorkflowFailed)
    assert error.run_id == "o2/pay" and error.workflow == "payment"
    assert error.status == "failed"
    assert isinstance(error.errors["capture"], ConnectionError)
    assert "capture: ConnectionError: card declined" in str(error)
    with pytest.raises(flowrt.NodeFailed):
        result["pay"]


def test_a_workflow_that_contains_itself_is_a_cycle_error() -> None:
    wf = flowrt.Workflow("loop")
    wf.add("a", lambda: 1)
    with pytest.raises(flowrt.CycleError, match="'loop' contains itself") as caught:
        wf.add("me", wf)
    assert caught.value.cycle == ["loop", "loop"]
    inner = flowrt.Workflow("inner")
    inner.add("x", lambda: 1)
    wf.add("inner", inner)
    with pytest.raises(flowrt.CycleError) as caught:
        inner.add("outer", wf)
    assert caught.value.cycle == ["inner", "loop", "inner"]
    assert "me" not in wf and "outer" not in inner  # refused nodes are not added


def test_nesting_is_limited_to_16_levels() -> None:
    wf = flowrt.Workflow("w0")
    wf.add("leaf", lambda: 0)
    for depth in range(1, 17):
        parent = flowrt.Workflow(f"w{depth}")
        parent.add("child", wf)
        wf = parent
    assert wf.run_sync()["child"] == 0  # 16 levels run
    too_deep = flowrt.Workflow("w17")
    with pytest.raises(flowrt.GraphError, match="nests 17 levels deep; the limit is 16"):
        too_deep.add("child", wf)


async def test_cancelling_the_parent_cancels_the_child() -> None:
    store = flowrt.MemoryStore()
    child = flowrt.Workflow("slow")
    started = anyio.Event()

    @child.node
    async def wait() -> None:
        started.set()
        await anyio.sleep(30)

    parent = flowrt.Workflow("parent")
    parent.add("slow", child)
    result = await parent.run(store=store, run_id="p", timeout=0.2)
    assert started.is_set()
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["slow"].status is Status.CANCELLED
    assert store.get_run("p/slow").status == "cancelled"
    assert store.load("p/slow").nodes["wait"].status == "cancelled"

    with anyio.move_on_after(0.2) as scope:  # from an outer scope
        await parent.run(store=store, run_id="q")
    assert scope.cancelled_caught
    assert store.load("q/slow").nodes["wait"].status == "cancelled"


async def test_events_of_the_child_carry_its_run_id() -> None:
    seen: list[tuple[str, str, str | None]] = []
    await _order(_payment()).run({"order_id": "A"}, run_id="e",
                                 on_event=lambda e: seen.append((e.run_id, str(e.kind),
                                                                 e.node)))
    assert ("e/pay", "succeeded", "capture") in seen
    assert ("e", "succeeded", "pay") in seen


async def test_a_child_rolls_itself_back_and_the_parent_too() -> None:
    undone: list[str] = []
    child = flowrt.Workflow("child")
    child.add("reserve", lambda: "seat", compensate=lambda out: undone.append("child " + out))

    def fail(reserve: str) -> None:
        raise RuntimeError("no")

    child.add("fail", fail)
    parent = flowrt.Workflow("parent")
    parent.add("charge", lambda: "card", compensate=lambda out: undone.append("parent " + out))
    parent.add("child", child, after=["charge"])
    result = await parent.run()
    assert undone == ["child seat", "parent card"]
    assert result.compensation == {"charge": Status.COMPENSATED}


def test_the_child_is_recorded_in_the_same_store_and_resumed_with_the_parent(
        any_store: Any) -> None:
    calls: list[str] = []
    broken = [True]
    child = flowrt.Workflow("payment")

    @child.node
    def authorize(amount: int) -> str:
        calls.append("authorize")
        return f"auth {amount}"

    @child.node
    def capture(authorize: str) -> str:
        calls.append("capture")
        if broken[0]:
            raise ConnectionError("timeout")
        return f"captured ({authorize})"

    wf = _order(child)
    first = wf.run_sync({"order_id": "A1"}, store=any_store, run_id="o")
    assert first.status is RunStatus.FAILED and calls == ["authorize", "capture"]
    stored = any_store.load("o/pay")
    assert stored.record.workflow == "payment" and stored.record.status == "failed"
    assert stored.nodes["authorize"].status == "succeeded"
    broken[0] = False
    calls.clear()
    second = wf.run_sync(store=any_store, run_id="o")
    assert second.ok and second["receipt"] == "receipt: captured (auth 42)"
    assert calls == ["capture"]  # the child's recorded node did not run again
    assert second.nodes["total"].restored
    calls.clear()
    third = wf.run_sync(store=any_store, run_id="o")  # finished: nothing runs
    assert third.ok and calls == []
    assert {r.run_id for r in any_store.runs()} == {"o", "o/pay"}


def test_a_child_that_succeeded_is_not_run_again_when_the_parent_resumes(
        any_store: Any) -> None:
    calls: list[str] = []
    broken = [True]
    wf = _order(_payment(calls))

    def after(receipt: str) -> str:
        if broken[0]:
            raise RuntimeError("printer jam")
        return receipt.upper()

    wf.add("print", after)
    assert not wf.run_sync({"order_id": "A1"}, store=any_store, run_id="p").ok
    assert len(calls) == 2
    broken[0] = False
    result = wf.run_sync(store=any_store, run_id="p")
    assert result.ok and len(calls) == 2 and result.nodes["pay"].restored


def test_the_decorator_free_form() -> None:
    inner = flowrt.Workflow("double")
    inner.add("twice", lambda x: 2 * x)
    outer = flowrt.Workflow("outer")
    outer.add("x", lambda: 21)
    assert outer.subworkflow(inner) == "double"
    assert outer.subworkflow(inner, name="again") == "again"
    result = outer.run_sync()
    assert result["double"] == result["again"] == 42


def test_pictures_show_the_child_nested() -> None:
    wf = _order(_payment())
    mermaid = wf.to_mermaid()
    assert 'subgraph n1["pay (sub-workflow payment)"]' in mermaid
    assert 'n1_n0["authorize"]' in mermaid and "n1_n0 --> n1_n1" in mermaid
    assert "n0 --> n1" in mermaid and "n1 --> n2" in mermaid
    dot = wf.to_dot()
    assert "pay [shape=component];" in dot
    assert 'subgraph cluster_pay {' in dot and '"pay/authorize" -> "pay/capture";' in dot
    assert 'pay -> "pay/authorize" [style=dashed' in dot


# -- real processes -------------------------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_in_the_middle_of_a_child_then_resume(shared_kit: StoreKit, tmp_path: Path,
                                                      seed: int) -> None:
    """A real process is killed (SIGKILL) inside a child run; a second one resumes the
    parent: no node recorded in the parent or in the child runs again."""
    backend = ("asyncio", "trio")[seed % 2]
    log = tmp_path / "log"
    shared_kit.make().close()

    def worker(kill: bool) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(HERE / "saga_worker.py"), "sub", shared_kit.spec, "p",
             str(log), backend, str(seed), "kill" if kill else "-"],
            capture_output=True, text=True, timeout=60)

    first = worker(kill=True)
    assert first.returncode == -signal.SIGKILL, first.stderr
    store = shared_kit.make()
    recorded = {f"p:{n}" for n, r in store.load("p").nodes.items() if r.status == "succeeded"}
    recorded |= {f"p/child:{n}" for n, r in store.load("p/child").nodes.items()
                 if r.status == "succeeded"}
    assert "p:base" in recorded and "p/child:c0" in recorded
    before = len(log.read_text().splitlines())
    second = worker(kill=False)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["succeeded", "1230"]
    ran_again = {line.split()[1] for line in log.read_text().splitlines()[before:]}
    assert ran_again.isdisjoint(recorded), ran_again & recorded
    assert "p:after" in ran_again


def test_show_lists_the_child_runs(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    assert _order(_payment()).run_sync({"order_id": "A1"}, store=db, run_id="o1").ok
    proc = subprocess.run([sys.executable, "-m", "flowrt", "show", "o1", "--store", db],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "child run" in proc.stdout
    assert any(line.split()[:3] == ["o1/pay", "payment", "succeeded"]
               for line in proc.stdout.splitlines())


def test_a_child_grown_too_deep_after_it_was_added_fails_at_run_time() -> None:
    innermost = flowrt.Workflow("w0")
    innermost.add("leaf", lambda: 0)
    wf = innermost
    for depth in range(1, 17):
        parent = flowrt.Workflow(f"w{depth}")
        parent.add("child", wf)
        wf = parent
    deeper = flowrt.Workflow("deeper")
    deeper.add("leaf", lambda: 1)
    innermost.add("more", deeper, after=["leaf"])  # 17 levels now: w0 was checked before
    result = wf.run_sync()
    assert not result.ok
    error: BaseException = result.errors["child"]
    depth = 0
    while isinstance(error, flowrt.SubWorkflowFailed):
        error = next(iter(error.errors.values()))
        depth += 1
    assert depth == 16
    assert isinstance(error, RecursionError) and "deeper than 16 levels" in str(error)


async def test_a_worker_runs_the_child_in_its_own_runtime_and_store(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    wf = _order(_payment())
    async with flowrt.Runtime(store=db, workflows=[wf]) as rt:
        run_id = await rt.submit(wf, {"order_id": "A1"}, run_id="q1")
        assert await rt.serve(until_idle=True) == 1
        assert rt.store is not None
        assert rt.store.get_run(run_id).status == "succeeded"
        child = rt.store.load("q1/pay")
        assert child is not None and child.record.status == "succeeded"
        assert child.nodes["capture"].status == "succeeded"
