"""Branches and merges (design.md, "Control flow"; issue 13): BYPASSED vs SKIPPED through
every trigger rule, merges, nested branches, BranchError, missing outputs, durable
choices (every store, and SIGKILL), cancellation, and a property test over random DAGs.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import StoreKit
from subproc import run_program
from worker_kit import start_worker, starts

import flowrt
from flowrt import EventKind, RunStatus, Status, Trigger
from flowrt.data._workflow_data import MISSING

HERE = Path(__file__).parent
S, F, SK, BY, C = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.BYPASSED,
                   Status.CANCELLED)
RAN = "ran"  # the node ran (and succeeded)


def statuses(result: flowrt.RunResult) -> dict[str, str]:
    return {name: str(node.status) for name, node in result.nodes.items()}


# -- bypass vs skip through every trigger rule (a table) ---------------------------------

#: the two dependencies of the node under test: what each of them ended as
COMBOS = {
    "S+BY": (S, BY), "F+BY": (F, BY), "SK+BY": (SK, BY), "BY+BY": (BY, BY),
    "S+S": (S, S), "S+F": (S, F), "S+SK": (S, SK),
}
#: trigger -> combo -> how the node under test ends (issue 13, "Precisely": all-bypassed
#: is BYPASSED whatever the rule; ALL_SUCCESS with a bypassed input is BYPASSED unless a
#: failure cascade reached it; other rules ignore bypassed inputs)
TABLE: dict[Trigger, dict[str, Any]] = {
    Trigger.ALL_SUCCESS: {"S+BY": BY, "F+BY": SK, "SK+BY": SK, "BY+BY": BY,
                          "S+S": RAN, "S+F": SK, "S+SK": SK},
    Trigger.ALL_DONE: {"S+BY": RAN, "F+BY": RAN, "SK+BY": RAN, "BY+BY": BY,
                       "S+S": RAN, "S+F": RAN, "S+SK": RAN},
    Trigger.ONE_SUCCESS: {"S+BY": RAN, "F+BY": SK, "SK+BY": SK, "BY+BY": BY,
                          "S+S": RAN, "S+F": RAN, "S+SK": RAN},
    Trigger.ONE_FAILED: {"S+BY": SK, "F+BY": RAN, "SK+BY": SK, "BY+BY": BY,
                         "S+S": SK, "S+F": RAN, "S+SK": SK},
    Trigger.NONE_FAILED: {"S+BY": RAN, "F+BY": SK, "SK+BY": RAN, "BY+BY": BY,
                          "S+S": RAN, "S+F": SK, "S+SK": RAN},
    Trigger.ALL_FAILED: {"S+BY": SK, "F+BY": RAN, "SK+BY": SK, "BY+BY": BY,
                         "S+S": SK, "S+F": SK, "S+SK": SK},
    Trigger.NONE_FAILED_MIN_ONE_SUCCESS: {"S+BY": RAN, "F+BY": SK, "SK+BY": SK, "BY+BY": BY,
                                          "S+S": RAN, "S+F": SK, "S+SK": RAN},
}


def test_the_table_covers_every_trigger_rule() -> None:
    assert set(TABLE) == set(Trigger)
    assert all(set(row) == set(COMBOS) for row in TABLE.values())


def _source_of(status: Status, second: bool) -> str:
    """The node of the table workflow that ends with ``status``."""
    return {S: "ok_b" if second else "ok_a", F: "bad", SK: "skip",
            BY: "off_b" if second else "off_a"}[status]


def _table_workflow() -> flowrt.Workflow:
    wf = flowrt.Workflow("table")
    wf.add("ok_a", lambda: "A")
    wf.add("ok_b", lambda: "B")

    def bad() -> None:
        raise RuntimeError("bad")

    wf.add("bad", bad)
    wf.add("skip", lambda: "never", after=["bad"])  # ALL_SUCCESS after a failure: SKIPPED
    wf.add("route", lambda: "on", branch=True)
    wf.add("on", lambda: "on", after=["route"])
    wf.add("off_a", lambda: "never", after=["route"])  # not chosen: BYPASSED
    wf.add("off_b", lambda: "never", after=["route"])
    for trigger in Trigger:
        for combo, (first, second) in COMBOS.items():
            name = f"{trigger}:{combo}"

            def under_test(a: Any = None, b: Any = "default") -> tuple[Any, Any]:
                return a, b

            wf.add(name, under_test, inputs={"a": _source_of(first, False),
                                             "b": _source_of(second, True)},
                   trigger=trigger)
            # ALL_DONE below it: runs after a SKIPPED node, is BYPASSED after a BYPASSED one
            wf.add(f"{name}:below", lambda: "below", after=[name], trigger=Trigger.ALL_DONE)
    return wf


@pytest.mark.anyio
async def test_bypass_and_skip_propagate_through_every_trigger_rule() -> None:
    result = await _table_workflow().run()
    got = result.statuses()
    assert (got["bad"], got["skip"], got["on"], got["off_a"], got["off_b"]) == (
        F, SK, S, BY, BY)
    wrong = []
    for trigger, row in TABLE.items():
        for combo, expected in row.items():
            name = f"{trigger}:{combo}"
            status = got[name]
            if expected == RAN:
                first, second = COMBOS[combo]
                # a dependency without an output gives the parameter's default, else None
                want = ("A" if first is S else None, "B" if second is S else "default")
                if status is not S or result[name] != want:
                    wrong.append(f"{name}: {status} {result.get(name)!r}, expected {want!r}")
            elif status is not expected:
                wrong.append(f"{name}: {status}, expected {expected}")
            below = got[f"{name}:below"]
            want_below = BY if status is BY else S
            if below is not want_below:
                wrong.append(f"{name}:below: {below}, expected {want_below}")
    assert not wrong, "\n".join(wrong)
    # a run whose only trouble is bypassed nodes is ok; here "bad" failed
    assert result.status is RunStatus.FAILED


# -- branch and merge ----------------------------------------------------------------------


def _order_flow() -> flowrt.Workflow:
    wf = flowrt.Workflow("orders")

    @wf.branch
    def route(order: dict[str, int]) -> str:
        return "express" if order["total"] > 100 else "standard"

    @wf.node(after=[route])
    async def express(order: dict[str, int]) -> str:
        return f"express {order['total']}"

    @wf.node(after=[route])
    async def standard(order: dict[str, int]) -> str:
        return f"standard {order['total']}"

    @wf.node
    def label(express: str) -> str:  # only below express: bypassed with it
        return express.upper()

    @wf.node(trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    async def ship(express: str | None = None, standard: str | None = None) -> str:
        return express or standard or "nothing"

    return wf


@pytest.mark.anyio
@pytest.mark.parametrize(("total", "taken", "bypassed"), [
    (250, "express", {"standard"}), (20, "standard", {"express", "label"})])
async def test_a_merge_after_a_branch(total: int, taken: str, bypassed: set[str]) -> None:
    events: list[flowrt.Event] = []
    result = await _order_flow().run({"order": {"total": total}}, on_event=events.append)
    assert result.ok
    assert result["route"] == taken  # the branch's output: the name it chose
    assert result["ship"] == f"{taken} {total}"
    assert {n for n, s in result.statuses().items() if s is BY} == bypassed
    assert {e.node for e in events if e.kind is EventKind.BYPASSED} == bypassed
    assert not {e.node for e in events if e.kind is EventKind.STARTED} & bypassed
    with pytest.raises(flowrt.NoOutput, match="bypassed"):
        result[next(iter(bypassed))]
    assert result.counts()["bypassed"] == len(bypassed)


@pytest.mark.anyio
async def test_a_direct_successor_also_below_the_chosen_path_is_a_merge() -> None:
    # Airflow's "join" case: route -> a -> join and route -> join directly; route takes a.
    wf = flowrt.Workflow("join")
    wf.add("route", lambda: "a", branch=True)
    wf.add("a", lambda: 1, after=["route"])
    wf.add("join", lambda a=None: a, after=["route", "a"],
           trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    wf.add("strict", lambda a: a, after=["route"])  # ALL_SUCCESS: a bypassed edge
    result = await wf.run()
    assert result["join"] == 1
    assert result.nodes["strict"].status is BY


@pytest.mark.anyio
async def test_a_branch_inside_a_branch() -> None:
    wf = flowrt.Workflow("nested")
    wf.add("outer", lambda kind: kind, branch=True)
    wf.add("parcel", lambda: "parcel", after=["outer"])
    wf.add("letter", lambda: "letter", after=["outer"])
    wf.add("inner", lambda size: "big" if size > 5 else "small", after=["parcel"],
           branch=True)
    wf.add("big", lambda: "big box", after=["inner"])
    wf.add("small", lambda: "small box", after=["inner"])
    wf.add("parcel_done", lambda big=None, small=None: big or small, after=["big", "small"],
           trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    wf.add("done", lambda parcel_done=None, letter=None: parcel_done or letter,
           trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    r = await wf.run({"kind": "parcel", "size": 9})
    assert r["done"] == "big box"
    assert {n for n, s in r.statuses().items() if s is BY} == {"letter", "small"}
    r = await wf.run({"kind": "letter", "size": 9})
    assert r["done"] == "letter"
    # everything under the untaken outer path is bypassed, the inner branch included
    assert {n for n, s in r.statuses().items() if s is BY} == {
        "parcel", "inner", "big", "small", "parcel_done"}
    assert r.ok


@pytest.mark.anyio
async def test_what_a_branch_may_return() -> None:
    def build(choice: Any) -> flowrt.Workflow:
        wf = flowrt.Workflow("choices")

        async def a() -> str:
            return "a"

        async def b() -> str:
            return "b"

        @wf.branch
        def route() -> Any:
            return choice

        wf.node(after=[route])(a)
        wf.node(after=[route])(b)
        wf.add("c", lambda: "c", after=["route"])
        return wf

    async def taken(choice: Any) -> tuple[Any, set[str]]:
        r = await build(choice).run()
        assert r.ok
        return r["route"], {n for n in "abc" if r.nodes[n].status is S}

    assert await taken("b") == ("b", {"b"})
    assert await taken(["a", "c", "a"]) == (["a", "c"], {"a", "c"})  # repeats once
    assert await taken(("c", "b")) == (["c", "b"], {"b", "c"})
    assert await taken({"c", "a"}) == (["a", "c"], {"a", "c"})  # a set: in plan order
    assert await taken(None) == ([], set())  # takes nothing: all bypassed
    assert await taken([]) == ([], set())

    # a node's function stands for its node
    def first() -> int:
        return 1

    def second() -> int:
        return 2

    wf2 = flowrt.Workflow("by function")
    wf2.add("route", lambda: second, branch=True)
    wf2.node(after=["route"])(first)
    wf2.node(after=["route"])(second)
    r = await wf2.run()
    assert r["route"] == "second"
    assert r.nodes["first"].status is BY and r["second"] == 2


@pytest.mark.anyio
async def test_a_branch_error_names_the_choices_and_runs_no_successor() -> None:
    wf = flowrt.Workflow("typo")
    calls: list[str] = []

    @wf.branch(retries=3)  # a BranchError is not retried
    def route() -> str:
        calls.append("route")
        return "expres"

    wf.add("express", lambda: calls.append("express"), after=["route"])
    wf.add("standard", lambda: calls.append("standard"), after=["route"])
    # rules that would run after a plain failure do not run after a BranchError
    wf.add("cleanup", lambda: calls.append("cleanup"), after=["route"],
           trigger=Trigger.ALL_DONE)
    wf.add("alert", lambda: calls.append("alert"), after=["route"],
           trigger=Trigger.ONE_FAILED)
    # below them the usual rules go on: a cleanup after skipped nodes runs
    wf.add("final", lambda: calls.append("final"), after=["cleanup"],
           trigger=Trigger.ALL_DONE)
    result = await wf.run()
    assert result.status is RunStatus.FAILED
    assert calls == ["route", "final"]
    error = result.errors["route"]
    assert isinstance(error, flowrt.BranchError)
    assert isinstance(error, ValueError)
    assert error.node == "route" and error.successors == [
        "express", "standard", "cleanup", "alert"]
    message = str(error)
    assert "'expres'" in message and "did you mean 'express'?" in message
    assert "'standard'" in message and "'cleanup'" in message
    assert {n: str(s) for n, s in result.statuses().items()} == {
        "route": "failed", "express": "skipped", "standard": "skipped",
        "cleanup": "skipped", "alert": "skipped", "final": "succeeded"}
    assert result.nodes["route"].attempts == 1


@pytest.mark.anyio
async def test_a_branch_error_for_what_is_no_node() -> None:
    wf = flowrt.Workflow("w")
    wf.add("route", lambda: 42, branch=True)
    wf.add("elsewhere", lambda: 0)  # a node, but no successor of route
    wf.add("a", lambda: 0, after=["route"])
    wf.add("route2", lambda: "elsewhere", branch=True)
    wf.add("b", lambda: 0, after=["route2"])
    wf.add("lonely", lambda: "a", branch=True)  # no dependents at all
    r = await wf.run()
    assert "chose 42" in str(r.errors["route"]) and "it may choose 'a'" in str(
        r.errors["route"])
    assert "chose 'elsewhere'" in str(r.errors["route2"])
    assert "none: it has no dependents" in str(r.errors["lonely"])
    assert r.nodes["a"].status is SK and r.nodes["elsewhere"].status is S


def test_branch_options_are_checked() -> None:
    wf = flowrt.Workflow("w")
    with pytest.raises(flowrt.GraphError, match="branch= must be True or False"):
        wf.add("x", lambda: 0, branch="yes")
    with pytest.raises(TypeError, match="did you mean branch="):
        wf.add("x", lambda: 0, brnach=True)
    with pytest.raises(TypeError, match="no branch= option"):
        wf.branch(lambda: 0, name="y", branch=False)
    assert not wf.nodes or "x" not in wf.nodes
    wf.add("x", lambda: 0, branch=True)
    assert wf.nodes["x"].options.branch is True
    assert wf.compile().branch[0] == 1


def test_branch_changes_the_fingerprint_only_of_plans_with_branches() -> None:
    def build(branch: bool) -> flowrt.Workflow:
        wf = flowrt.Workflow("w")
        wf.add("a", lambda: "b", branch=branch)
        wf.add("b", lambda: 0, after=["a"])
        return wf

    assert build(True).compile().fingerprint != build(False).compile().fingerprint


@pytest.mark.anyio
async def test_a_sync_branch_in_a_thread_and_an_async_one_with_a_timeout() -> None:
    wf = flowrt.Workflow("w")

    def sync_route() -> str:
        return "a"

    async def async_route() -> list[str]:
        await anyio.sleep(0)
        return ["b"]

    wf.add("sync_route", sync_route, branch=True)
    wf.add("a", lambda: 1, after=["sync_route"])
    wf.add("x", lambda: 1, after=["sync_route"])
    wf.add("async_route", async_route, branch=True, timeout=5)
    wf.add("b", lambda: 1, after=["async_route"])
    wf.add("y", lambda: 1, after=["async_route"])
    r = await wf.run()
    assert (r["sync_route"], r["async_route"]) == ("a", ["b"])
    assert {n for n, s in r.statuses().items() if s is BY} == {"x", "y"}


@pytest.mark.anyio
async def test_a_failed_branch_fails_like_any_node() -> None:
    wf = flowrt.Workflow("w")

    def route() -> str:
        raise KeyError("no route")

    wf.add("route", route, branch=True)
    wf.add("a", lambda: 1, after=["route"])
    wf.add("cleanup", lambda: "cleaned", after=["route"], trigger=Trigger.ALL_DONE)
    r = await wf.run()
    assert r.nodes["a"].status is SK and r["cleanup"] == "cleaned"


# -- missing outputs: every way a dependency ends without one ------------------------------


@pytest.mark.anyio
async def test_a_dependency_without_output_gives_the_default_or_none() -> None:
    wf = flowrt.Workflow("missing")

    def bad() -> None:
        raise RuntimeError("x")

    wf.add("bad", bad)  # FAILED
    wf.add("skip", lambda bad: bad)  # SKIPPED
    wf.add("route", lambda: [], branch=True)
    wf.add("off", lambda: 1, after=["route"])  # BYPASSED

    async def slow() -> int:
        await anyio.sleep(30)
        return 1

    seen: dict[str, Any] = {}

    def collect(bad: Any = "d-bad", skip: Any = None, off: Any = 7, ok: Any = None) -> str:
        seen.update(bad=bad, skip=skip, off=off, ok=ok)
        return "collected"

    wf.add("ok", lambda: "fine")
    wf.add("collect", collect, trigger=Trigger.ALL_DONE)
    r = await wf.run()
    assert r["collect"] == "collected"
    assert seen == {"bad": "d-bad", "skip": None, "off": 7, "ok": "fine"}
    assert not any(v is MISSING for v in seen.values())

    # CANCELLED: a node cancelled by fail_fast elsewhere... is final without output; a
    # merge reading it never runs (the run is stopping), so the result says so
    wf2 = flowrt.Workflow("cancelled")
    wf2.add("slow", slow)
    wf2.add("bad", bad)
    wf2.add("after_all", lambda slow=None: slow, trigger=Trigger.ALL_DONE)
    r2 = await wf2.run(fail_fast=True)
    assert r2.nodes["slow"].status is C
    assert r2.nodes["after_all"].status is C
    with pytest.raises(flowrt.NoOutput):
        r2["after_all"]


# -- pictures ------------------------------------------------------------------------------


def test_mermaid_and_dot_draw_branches() -> None:
    wf = _order_flow()
    plan = wf.compile()
    mermaid = wf.to_mermaid()
    route = plan.index["route"]
    assert f'n{route}{{"route"}}' in mermaid  # a rhombus
    assert "-.->" not in mermaid  # no run: nothing is untaken
    assert "route [shape=diamond];" in wf.to_dot()

    result = _order_flow().run_sync({"order": {"total": 250}})
    from flowrt.tools.viz import COLOURS, to_dot, to_mermaid

    st_ = result.statuses()
    mermaid = to_mermaid(plan, st_)
    ix = plan.index
    assert f"n{ix['route']} -.-> n{ix['standard']}" in mermaid  # untaken: dashed
    assert f"n{ix['standard']} -.-> n{ix['ship']}" in mermaid
    assert f"n{ix['route']} --> n{ix['express']}" in mermaid
    assert f"classDef bypassed fill:{COLOURS[BY]}" in mermaid
    dot = to_dot(plan, st_)
    assert "route -> standard [style=dashed];" in dot
    assert "route -> express;" in dot
    assert f'standard [fillcolor="{COLOURS[BY]}", tooltip="bypassed"' in dot


def test_the_report_draws_untaken_edges_dashed_and_bypassed_nodes_grey() -> None:
    from flowrt.tools import report
    from flowrt.tools.viz import COLOURS

    result = _order_flow().run_sync({"order": {"total": 20}})
    page = report.render(result)
    assert page.count('class="untaken"') == 3  # route->express, express->label, ->ship
    assert 'data-status="bypassed"' in page
    assert COLOURS[BY] in page
    assert ">bypassed</span>" in page  # in the legend


def test_progress_counts_bypassed_nodes() -> None:
    from flowrt.tools._progress import RunProgress

    progress = RunProgress("orders", "r", 5, 0.0)
    for e in [flowrt.Event(EventKind.SUCCEEDED, "orders", "r", "route"),
              flowrt.Event(EventKind.BYPASSED, "orders", "r", "standard"),
              flowrt.Event(EventKind.SUCCEEDED, "orders", "r", "express")]:
        progress.apply(e)
    assert progress.done == 3
    assert progress.summary() == "5 nodes: 2 succeeded, 1 bypassed"


# -- durable: a branch's choice is recorded and never asked again --------------------------


def _fickle(calls: list[str], fail_once: set[str]) -> flowrt.Workflow:
    """A branch that takes "a" the first time it is asked and "b" afterwards; node a fails
    on its first attempt of the process (``fail_once``)."""
    wf = flowrt.Workflow("fickle")

    @wf.branch
    def route() -> str:
        calls.append("route")
        return "a" if calls.count("route") == 1 else "b"

    def a() -> str:
        calls.append("a")
        if "a" in fail_once:
            fail_once.discard("a")
            raise RuntimeError("a fails once")
        return "A"

    wf.add("a", a, after=["route"])
    wf.add("b", lambda: calls.append("b") or "B", after=["route"])
    wf.add("below_b", lambda b: b, trigger=Trigger.ALL_DONE)
    wf.add("merge", lambda a=None, b=None: a or b,
           trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    return wf


def test_a_branch_choice_is_recorded_and_not_asked_again_on_resume(any_store: Any) -> None:
    calls: list[str] = []
    wf = _fickle(calls, {"a"})
    first = wf.run_sync(store=any_store, run_id="r1")
    assert first.status is RunStatus.FAILED and calls == ["route", "a"]
    stored = any_store.load("r1")
    assert stored.nodes["route"].status == "succeeded"
    assert {n: r.status for n, r in stored.nodes.items() if n != "route"} == {
        "a": "failed", "b": "bypassed", "below_b": "bypassed", "merge": "skipped"}
    assert stored.outputs()["route"] == "a"

    second = wf.run_sync(store=any_store, run_id="r1")  # resume
    assert second.ok, second.errors
    assert calls == ["route", "a", "a"]  # the branch was not asked again
    assert second["route"] == "a" and second["merge"] == "A"
    assert second.nodes["route"].restored
    assert {n for n, s in second.statuses().items() if s is BY} == {"b", "below_b"}
    stored = any_store.load("r1")
    assert stored.record.status == "succeeded"
    assert stored.nodes["b"].status == "bypassed"

    third = wf.run_sync(store=any_store, run_id="r1")  # a finished run: its stored result
    assert third["merge"] == "A" and third.nodes["b"].status is BY
    assert calls == ["route", "a", "a"]


def test_a_branch_that_chose_several_is_restored(any_store: Any) -> None:
    calls: list[str] = []
    wf = flowrt.Workflow("several")
    wf.add("route", lambda: calls.append("route") or ["a", "b"], branch=True)
    wf.add("a", lambda: "A", after=["route"])
    wf.add("b", lambda: "B", after=["route"])
    wf.add("c", lambda: "C", after=["route"])

    def boom(a: str, b: str) -> str:
        if len(calls) == 1:
            calls.append("boom")
            raise RuntimeError("once")
        return a + b

    wf.add("both", boom)
    assert not wf.run_sync(store=any_store, run_id="s").ok
    r = wf.run_sync(store=any_store, run_id="s")
    assert r.ok and r["both"] == "AB" and r["route"] == ["a", "b"]
    assert calls.count("route") == 1 and r.nodes["c"].status is BY


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_after_a_branch_chose_then_resume_does_not_ask_again(
        shared_kit: StoreKit, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    backend = "trio" if seed % 2 else "asyncio"
    log = tmp_path / "starts.log"
    reader = shared_kit.make()  # the store exists before the worker starts
    proc = start_worker("branch_worker.py", shared_kit.spec, "crash", log, backend)
    deadline = time.monotonic() + 60
    # kill it once the store has the branch's choice, at a random moment of "slow"
    while proc.poll() is None and time.monotonic() < deadline:
        stored = reader.load("crash")
        if stored is not None and "route" in stored.nodes:
            break
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    stored = reader.load("crash")
    assert stored is not None and stored.nodes["route"].status == "succeeded"
    assert stored.record.status == "running"  # it died
    assert starts(log).count("route") == 1

    rerun = start_worker("branch_worker.py", shared_kit.spec, "crash", log, backend)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    assert out.decode().strip() == "succeeded"
    again = starts(log, rerun.pid)
    assert "route" not in again and "order" not in again  # recorded: not run again
    assert "fast" not in starts(log)  # the other path was never taken
    stored = reader.load("crash")
    assert stored is not None and stored.record.status == "succeeded"
    assert stored.outputs()["ship"] == "slow 250"
    assert stored.nodes["fast"].status == "bypassed"


# -- cancellation of runs with branches (subprocesses with a deadline) ---------------------

BACKENDS = ["asyncio", "trio"]

_CANCEL_PROGRAM = '''
    import random
    import anyio
    import flowrt
    from flowrt import Status, Trigger

    rng = random.Random(5)
    started = []

    async def work(ctx: flowrt.Context):
        started.append(ctx.node)
        await anyio.sleep(rng.uniform(0, 0.004))
        if rng.random() < FAIL_RATE:
            raise RuntimeError(ctx.node)
        return ctx.node

    def build():
        wf = flowrt.Workflow("cancel-branches")
        for k in range(12):
            async def route(k=k):
                await anyio.sleep(rng.uniform(0, 0.002))
                return f"a{k}" if k % 2 else [f"a{k}", f"b{k}"]

            wf.add(f"r{k}", route, branch=True)
            wf.add(f"a{k}", work, after=[f"r{k}"])
            wf.add(f"b{k}", work, after=[f"r{k}"])
            wf.add(f"c{k}", work, after=[f"b{k}"])
            wf.add(f"m{k}", work, after=[f"a{k}", f"c{k}"],
                   trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
        return wf

    wf = build()
    FINAL = {Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED,
             Status.BYPASSED}

    def check(result_statuses):
        assert set(result_statuses.values()) <= FINAL, result_statuses
        for node, status in result_statuses.items():
            if status is Status.BYPASSED:
                assert node not in started, node

    async def main():
        for trial in range(TRIALS):
            started.clear()
            MODE_RUN = MODE
            if MODE_RUN == "scope":
                data = flowrt.WorkflowData()
                with anyio.move_on_after(rng.uniform(0, 0.01)):
                    await wf.run(data=data)
                check(data.node_statuses())
            elif MODE_RUN == "timeout":
                result = await wf.run(timeout=rng.uniform(0.0005, 0.01))
                check(result.statuses())
                assert result.status in (flowrt.RunStatus.CANCELLED,
                                         flowrt.RunStatus.SUCCEEDED), (
                    result.status, result.errors)
            else:  # fail_fast
                result = await wf.run(fail_fast=True)
                check(result.statuses())
                if result.errors:
                    assert result.status is flowrt.RunStatus.FAILED
        print("ok")

    anyio.run(main, backend=BACKEND)
'''


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["scope", "timeout", "fail_fast"])
def test_runs_with_branches_cancelled_many_times(backend: str, mode: str) -> None:
    # 150 runs per case: cancelled by an outer scope, by the run's timeout, by fail_fast
    # (a random node fails); every node ends final and no bypassed node ever started.
    source = (f"TRIALS = 150\nMODE = {mode!r}\nFAIL_RATE = "
              f"{0.05 if mode == 'fail_fast' else 0.0}\n") + _dedent(_CANCEL_PROGRAM)
    out = run_program(source, backend=backend, timeout=120)
    assert out.strip() == "ok"


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


# -- the property: random DAGs, random branch choices, random failures ---------------------


@dataclass
class Spec:
    deps: list[int]
    trigger: Trigger
    fails: bool
    branch: bool
    picks: list[int]  # positions among the direct successors a branch takes
    sleep: float


@dataclass
class Seen:
    final: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@st.composite
def branchy_dags(draw: Any) -> list[Spec]:
    n = draw(st.integers(1, 16))
    specs = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        specs.append(Spec(
            deps=deps,
            trigger=draw(st.sampled_from(list(Trigger))),
            fails=draw(st.integers(0, 9)) == 0,
            branch=draw(st.integers(0, 2)) == 0,
            picks=draw(st.lists(st.integers(0, 5), max_size=3)),
            sleep=draw(st.sampled_from([0.0, 0.0, 0.0005])),
        ))
    return specs


def _oracle(specs: list[Spec]) -> dict[str, Status]:
    """The statuses the rules give (insertion order is topological here)."""
    succ: dict[int, list[int]] = {i: [] for i in range(len(specs))}
    for i, spec in enumerate(specs):
        for d in spec.deps:
            succ[d].append(i)
    out: dict[int, Status] = {}
    edge: dict[tuple[int, int], Status] = {}  # what a dependency tells a dependent
    for i, spec in enumerate(specs):
        told = [edge[(d, i)] for d in spec.deps]
        deps = len(told)
        ok = told.count(S)
        failed = told.count(F)
        bypassed = told.count(BY)
        if not deps:
            status = F if spec.fails else S
        elif bypassed == deps:
            status = BY
        elif bypassed and spec.trigger is Trigger.ALL_SUCCESS:
            status = BY if ok + bypassed == deps else SK
        elif spec.trigger.holds(deps - bypassed, ok, failed):
            status = F if spec.fails else S
        else:
            status = SK
        out[i] = status
        chosen = _chosen(spec, succ[i]) if spec.branch else None
        for s in succ[i]:
            if status is S and chosen is not None:
                edge[(i, s)] = S if s in chosen else BY
            else:
                edge[(i, s)] = status
    return {f"n{i}": s for i, s in out.items()}


def _chosen(spec: Spec, successors: list[int]) -> set[int]:
    return {successors[p % len(successors)] for p in spec.picks} if successors else set()


def _build_random(specs: list[Spec], seen: Seen, check_order: bool) -> flowrt.Workflow:
    wf = flowrt.Workflow("prop-branches")
    succ: dict[int, list[int]] = {i: [] for i in range(len(specs))}
    for i, spec in enumerate(specs):
        for d in spec.deps:
            succ[d].append(i)
    for i, spec in enumerate(specs):
        deps = [f"n{d}" for d in spec.deps]
        choice = sorted(f"n{s}" for s in _chosen(spec, succ[i])) if spec.branch else None

        async def node(ctx: flowrt.Context, spec: Spec = spec, deps: list[str] = deps,
                       choice: list[str] | None = choice) -> Any:
            with seen.lock:
                seen.started.add(ctx.node)
                missing = [d for d in deps if d not in seen.final] if check_order else []
                if missing:
                    seen.violations.append(f"{ctx.node} started before {missing} were final")
            if spec.sleep:
                await anyio.sleep(spec.sleep)
            if spec.fails:
                raise RuntimeError(ctx.node)
            return choice if choice is not None else ctx.node

        wf.add(f"n{i}", node, after=deps, trigger=spec.trigger, branch=spec.branch)
    return wf


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("hooked", [True, False])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=branchy_dags())
def test_scheduler_invariants_with_random_branches(backend: str, hooked: bool,
                                                   specs: list[Spec]) -> None:
    # hooked: every node end is an event, checked against the starts; not hooked: the
    # runtime bypasses whole regions in one sweep (Plan.bypass_region), checked by the
    # statuses alone
    seen = Seen()
    wf = _build_random(specs, seen, check_order=hooked)
    finals = {EventKind.SUCCEEDED, EventKind.FAILED, EventKind.SKIPPED, EventKind.CANCELLED,
              EventKind.BYPASSED}

    def on_event(event: flowrt.Event) -> None:
        if event.kind in finals:
            assert event.node is not None
            with seen.lock:
                seen.final.add(event.node)

    result = wf.run_sync(backend=backend, on_event=on_event if hooked else None)
    assert seen.violations == []
    got = result.statuses()
    assert all(s.final for s in got.values())
    assert got == _oracle(specs)
    for name, status in got.items():
        if status in (BY, SK):  # bypassed (and skipped) nodes never run
            assert name not in seen.started and result.nodes[name].attempts == 0
    failed = any(s is F for s in got.values())
    assert result.status is (RunStatus.FAILED if failed else RunStatus.SUCCEEDED)


def test_a_bypassed_region_is_swept_and_its_edges_out_are_told() -> None:
    # route -> off -> {x, y}; y -> z; z and w (outside) feed merge. Without hooks the
    # region below "off" is bypassed in one sweep; the merge still hears of it.
    wf = flowrt.Workflow("sweep")
    wf.add("route", lambda: "on", branch=True)
    wf.add("on", lambda: "on", after=["route"])
    wf.add("off", lambda: 0, after=["route"])
    wf.add("x", lambda off: off)
    wf.add("y", lambda off: off)
    wf.add("z", lambda x, y: x + y)
    wf.add("w", lambda: "w")
    wf.add("merge", lambda z=None, w=None, on=None: (z, w, on),
           trigger=Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    wf.add("strict", lambda z, w: (z, w))  # ALL_SUCCESS with a bypassed input
    plan = wf.compile()
    region, boundary = plan.bypass_region(plan.index["off"])
    assert sorted(plan.names[i] for i in region) == ["x", "y", "z"]
    assert sorted(plan.names[i] for i in boundary) == ["merge", "strict"]
    for hooks in ([], [lambda e: None]):
        r = wf.run_sync(on_event=hooks)
        assert r.ok and r["merge"] == (None, "w", "on")
        assert {n for n, s in r.statuses().items() if s is BY} == {
            "off", "x", "y", "z", "strict"}


def test_show_and_runs_tell_bypassed_nodes(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from flowrt.tools.cli import main

    db = str(tmp_path / "runs.db")
    assert _order_flow().run_sync({"order": {"total": 20}}, store=db, run_id="o1").ok
    assert main(["show", "o1", "--store", db]) == 0
    out = capsys.readouterr().out
    assert "2 bypassed" in out
    assert any(line.split()[:2] == ["express", "bypassed"] for line in out.splitlines())
    assert main(["runs", "--store", db]) == 0
    assert "o1" in capsys.readouterr().out
