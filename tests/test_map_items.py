"""What a mapped node does per item beyond running it (issue 13): caching each item,
compensating each succeeded item on rollback, mapped sub-workflows (a child run per
item) and maps nested through them -- in memory and durable on every store, resumed,
and cancelled (outer scope, run timeout, fail_fast) on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from subproc import run_program

import flowrt
from flowrt import RunStatus, Status
from flowrt.testing import Crash, FakeClock, crash_at

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


# -- caching per item (docs/caching.md, "Mapped nodes") ----------------------------------


def _cached_map(calls: list[int], **options: Any) -> flowrt.Workflow:
    wf = flowrt.Workflow("cached-map")
    wf.add("numbers", lambda numbers_in: list(numbers_in))

    def square(n: int, factor: int) -> int:
        calls.append(n)
        return n * n * factor

    wf.add("square", square, map={"n": "numbers"}, cache=flowrt.Cache(**options))
    wf.add("total", lambda square: sum(square))
    return wf


def _statuses(result: flowrt.RunResult, name: str) -> list[str]:
    return [str(item.status) for item in result.items(name)]


@pytest.mark.anyio
async def test_each_item_is_cached_on_its_own() -> None:
    calls: list[int] = []
    wf = _cached_map(calls)
    async with flowrt.Runtime() as rt:
        first = await rt.run(wf, {"numbers_in": [1, 2, 3], "factor": 1})
        assert first.ok and first["square"] == [1, 4, 9] and sorted(calls) == [1, 2, 3]
        assert _statuses(first, "square") == ["succeeded"] * 3
        calls.clear()
        # a longer list: the three known items are hits, only the new one runs
        second = await rt.run(wf, {"numbers_in": [3, 1, 2, 4], "factor": 1})
        assert second.ok and second["square"] == [9, 1, 4, 16] and calls == [4]
        assert _statuses(second, "square") == ["cached", "cached", "cached", "succeeded"]
        assert [i.attempts for i in second.items("square")] == [0, 0, 0, 1]
        # the mapped node itself ran (its items were looked up): SUCCEEDED
        assert second.nodes["square"].status is Status.SUCCEEDED
        assert second["total"] == 30
        calls.clear()
        # another value of a fixed argument is another key for every item
        third = await rt.run(wf, {"numbers_in": [1, 2], "factor": 2})
        assert third["square"] == [2, 8] and sorted(calls) == [1, 2]
        calls.clear()
        fresh = await rt.run(wf, {"numbers_in": [1, 2], "factor": 2}, refresh=True)
        assert fresh["square"] == [2, 8] and sorted(calls) == [1, 2]
        assert _statuses(fresh, "square") == ["succeeded"] * 2


@pytest.mark.anyio
async def test_an_item_key_is_the_key_of_the_same_call_unmapped() -> None:
    """An item's key is the node's name, version and the item's arguments: a run of the
    same node over a list hits what another run computed for one of its items."""
    calls: list[int] = []
    wf = _cached_map(calls)
    async with flowrt.Runtime() as rt:
        await rt.run(wf, {"numbers_in": [5], "factor": 3})
        calls.clear()
        again = await rt.run(wf, {"numbers_in": [5, 5, 6], "factor": 3})
        assert again["square"] == [75, 75, 108] and calls.count(5) == 0


@pytest.mark.anyio
async def test_cached_items_expire_and_failed_items_are_not_cached() -> None:
    clock = FakeClock()
    calls: list[int] = []
    wf = flowrt.Workflow("ttl-map")
    wf.add("numbers", lambda: [1, 0, 2])

    def invert(n: int) -> float:
        calls.append(n)
        return 1 / n

    wf.add("invert", invert, map={"n": "numbers"}, partial=True,
           cache=flowrt.Cache(ttl=60))
    async with flowrt.Runtime(clock=clock) as rt:
        first = await rt.run(wf)
        assert first["invert"] == [1.0, None, 0.5]
        calls.clear()
        second = await rt.run(wf)
        assert calls == [0]  # the failed item was not cached: it runs again
        assert _statuses(second, "invert") == ["cached", "failed", "cached"]
        clock.advance(61)
        calls.clear()
        await rt.run(wf)
        assert sorted(calls) == [0, 1, 2]


@pytest.mark.anyio
async def test_a_chained_map_caches_each_level() -> None:
    calls: list[tuple[str, int]] = []
    wf = flowrt.Workflow("chain")
    wf.add("numbers", lambda: [1, 2, 3])

    @wf.map(n="numbers", cache=flowrt.Cache())
    def fetch(n: int) -> int:
        calls.append(("fetch", n))
        return n * 10

    @wf.map(page="fetch", cache=flowrt.Cache())
    def parse(page: int) -> int:
        calls.append(("parse", page))
        return page + 1

    async with flowrt.Runtime() as rt:
        first = await rt.run(wf)
        assert first["parse"] == [11, 21, 31] and len(calls) == 6
        calls.clear()
        again = await rt.run(wf)
        assert again["parse"] == [11, 21, 31] and calls == []
        assert _statuses(again, "parse") == ["cached"] * 3


@pytest.mark.anyio
async def test_an_unhashable_item_fails_that_item() -> None:
    wf = flowrt.Workflow("bad-item")
    wf.add("things", lambda: [1, object(), 3])
    wf.add("use", lambda t: str(t), map={"t": "things"}, cache=flowrt.Cache(),
           partial=True)
    result = await wf.run()
    items = result.items("use")
    assert [i.status for i in items] == [Status.SUCCEEDED, Status.FAILED, Status.SUCCEEDED]
    error = items[1].error
    assert isinstance(error, flowrt.CacheKeyError)
    assert (error.node, error.parameter) == ("use", "t")


def test_cached_items_are_durable_on_every_store(any_store: Any) -> None:
    calls: list[int] = []
    wf = _cached_map(calls)
    first = wf.run_sync({"numbers_in": [1, 2, 3], "factor": 1}, store=any_store,
                        run_id="a")
    assert first.ok and sorted(calls) == [1, 2, 3]
    calls.clear()
    second = wf.run_sync({"numbers_in": [1, 2, 3, 4], "factor": 1}, store=any_store,
                         run_id="b")
    assert second["square"] == [1, 4, 9, 16] and calls == [4]
    stored = any_store.load("b")
    assert stored.item_counts("square") == {"cached": 3, "succeeded": 1}
    assert {i: r.status for i, r in stored.items["square"].items() if i >= 0} == {
        0: "cached", 1: "cached", 2: "cached", 3: "succeeded"}
    # replayed from the store: the cached items are still CACHED
    calls.clear()
    replay = wf.run_sync({"numbers_in": [1, 2, 3, 4], "factor": 1}, store=any_store,
                         run_id="b")
    assert calls == [] and _statuses(replay, "square") == ["cached"] * 3 + ["succeeded"]
    # refresh=True recomputes every item and replaces the entries
    fresh = wf.run_sync({"numbers_in": [1, 2, 3, 4], "factor": 1}, store=any_store,
                        run_id="c", refresh=True)
    assert sorted(calls) == [1, 2, 3, 4] and _statuses(fresh, "square") == ["succeeded"] * 4


def test_a_resumed_map_keeps_its_cached_items(any_store: Any) -> None:
    calls: list[int] = []
    broken = {3}
    wf = flowrt.Workflow("resume-cached")
    wf.add("numbers", lambda: [1, 2, 3, 4])

    def square(n: int) -> int:
        calls.append(n)
        if n in broken:
            raise ConnectionError(n)
        return n * n

    wf.add("square", square, map={"n": "numbers"}, cache=flowrt.Cache())
    assert wf.run_sync(store=any_store, run_id="warm", inputs=None).status is RunStatus.FAILED
    calls.clear()
    # a new run: items 1, 2, 4 are hits; 3 still fails
    failed = wf.run_sync(store=any_store, run_id="r")
    assert failed.status is RunStatus.FAILED and calls == [3]
    assert _statuses(failed, "square") == ["cached", "cached", "failed", "cached"]
    broken.clear()
    calls.clear()
    resumed = wf.run_sync(store=any_store, run_id="r")
    assert resumed.ok and resumed["square"] == [1, 4, 9, 16] and calls == [3]
    assert _statuses(resumed, "square") == ["cached", "cached", "succeeded", "cached"]


# -- compensating a mapped node item by item (docs/compensation.md, "Mapped nodes") -------


def _charges(undone: list[Any], *, declined: set[int], fail_after: bool = False,
             refund_fails: set[int] | None = None, is_async: bool = False,
             cards: int = 5) -> flowrt.Workflow:
    wf = flowrt.Workflow("charges")
    wf.add("cards", lambda: list(range(cards)))

    def charge(card: int) -> str:
        if card in declined:
            raise RuntimeError(f"card {card} declined")
        return f"ch{card}"

    def refund(charge: str, ctx: flowrt.Context) -> None:
        undone.append((charge, ctx.item, ctx.node))
        if refund_fails and ctx.item in refund_fails:
            raise ConnectionError(f"refund of {charge} failed")

    async def refund_async(charge: str, ctx: flowrt.Context) -> None:
        await anyio.sleep(0)
        refund(charge, ctx)

    wf.add("charge", charge, map={"card": "cards"},
           compensate=refund_async if is_async else refund)

    def ship(charge: list[str]) -> str:
        if fail_after:
            raise RuntimeError("no courier")
        return "shipped"

    wf.add("ship", ship)
    return wf


@pytest.mark.anyio
@pytest.mark.parametrize("is_async", [False, True])
async def test_each_succeeded_item_is_compensated_last_item_first(is_async: bool) -> None:
    undone: list[Any] = []
    result = await _charges(undone, declined=set(), fail_after=True, is_async=is_async).run()
    assert result.status is RunStatus.FAILED
    assert undone == [(f"ch{k}", k, "charge") for k in (4, 3, 2, 1, 0)]
    # a map that succeeded is undone as any node: COMPENSATED, and so is each item
    assert result.nodes["charge"].status is Status.COMPENSATED
    assert result.compensation == {"charge": Status.COMPENSATED}
    assert _statuses(result, "charge") == ["compensated"] * 5


@pytest.mark.anyio
async def test_a_failed_map_undoes_the_items_that_succeeded() -> None:
    undone: list[Any] = []
    events: list[flowrt.Event] = []
    result = await _charges(undone, declined={2}, refund_fails={3}).run(
        on_event=events.append)
    assert result.status is RunStatus.FAILED
    # each item's compensation is an event with the item's index
    assert [(str(e.kind), e.item) for e in events if e.item is not None
            and "compensat" in str(e.kind)] == [
        ("compensating", 4), ("compensated", 4), ("compensating", 3),
        ("compensation_failed", 3), ("compensating", 1), ("compensated", 1),
        ("compensating", 0), ("compensated", 0)]
    # every succeeded item is undone, one failing compensation does not stop the others
    assert [k for _, k, _ in undone] == [4, 3, 1, 0]
    # the map keeps its own status (it is what failed); its items say what was undone
    assert result.nodes["charge"].status is Status.FAILED
    assert _statuses(result, "charge") == [
        "compensated", "compensated", "failed", "compensation_failed", "compensated"]
    assert isinstance(result.items("charge")[3].error, ConnectionError)
    assert result.compensation == {"charge": Status.COMPENSATION_FAILED}
    assert result.nodes["ship"].status is Status.SKIPPED


@pytest.mark.anyio
async def test_cached_items_and_compensate_false_are_not_undone() -> None:
    undone: list[Any] = []
    wf = flowrt.Workflow("cached-charges")
    wf.add("cards", lambda cards_in: list(cards_in))
    wf.add("charge", lambda card: f"ch{card}", map={"card": "cards"},
           cache=flowrt.Cache(), compensate=lambda c: undone.append(c))

    def ship(charge: list[str]) -> None:
        raise RuntimeError("no courier")

    wf.add("ship", ship)
    async with flowrt.Runtime() as rt:
        await rt.run(wf, {"cards_in": [1, 2]}, compensate=False)
        assert undone == []
        result = await rt.run(wf, {"cards_in": [1, 2, 3]})
        # items 1 and 2 came from the cache: this run did not do them
        assert undone == ["ch3"]
        assert _statuses(result, "charge") == ["cached", "cached", "compensated"]


def test_item_compensations_are_durable_and_a_rolled_back_map_is_over(
        any_store: Any) -> None:
    undone: list[Any] = []
    wf = _charges(undone, declined={2})
    first = wf.run_sync(store=any_store, run_id="r")
    assert first.status is RunStatus.FAILED and len(undone) == 4
    stored = any_store.load("r")
    assert stored.item_counts("charge") == {"compensated": 4, "failed": 1}
    assert stored.nodes["charge"].status == "failed"
    undone.clear()
    again = wf.run_sync(store=any_store, run_id="r")
    assert undone == [] and again.status is RunStatus.FAILED
    assert _statuses(again, "charge") == _statuses(first, "charge")
    # a map that failed keeps its status: its undone items say the run is over, and a
    # resume is refused naming them (the dashboard and `flowrt resume` share the rule)
    before = any_store.get_run("r")
    with pytest.raises(flowrt.RunRolledBack, match=r"run 'r' was rolled back \(failed; "
                       r"undone: charge\[0\], charge\[1\], charge\[3\], charge\[4\]\)"):
        flowrt.durable.control.resume(any_store, "r")
    assert any_store.get_run("r") == before
    assert again.compensation == {"charge": Status.COMPENSATED}


_KILLED_ROLLBACK = """
import os, signal, sys, time
import flowrt
from stores import open_spec

def refund(charge, ctx: flowrt.Context):
    with open(LOG, "a") as log:
        log.write(f"{ctx.item}\\n")
    if KILL and ctx.item == 2:
        time.sleep(0.3)  # the items undone before are on disk by now
        os.kill(os.getpid(), signal.SIGKILL)

def charge(card):
    if card == 5:
        raise RuntimeError("declined")
    return f"ch{card}"

wf = flowrt.Workflow("killed-rollback")
wf.add("cards", lambda: list(range(6)))
wf.add("charge", charge, map={"card": "cards"}, compensate=refund)
store = open_spec(SPEC)
result = wf.run_sync(store=store, run_id="r")
print(result.status, [str(i.status) for i in result.items("charge")])
store.close()
"""


def test_sigkill_while_items_are_undone_then_resume(shared_kit: Any, tmp_path: Path) -> None:
    """Killed while undoing item 2 of 5: the resumed rollback does not undo items 4 and
    3 again, undoes 2 (it was running: at least once), 1 and 0, and nothing runs
    forward."""
    log = tmp_path / "undone.log"
    head = f"SPEC = {shared_kit.spec!r}\nLOG = {str(log)!r}\n"
    run_program(head + "KILL = True\n" + _KILLED_ROLLBACK, timeout=60, expect_exit=-9)
    assert log.read_text().split() == ["4", "3", "2"]
    out = run_program(head + "KILL = False\n" + _KILLED_ROLLBACK, timeout=60)
    assert log.read_text().split() == ["4", "3", "2", "2", "1", "0"]
    assert out.strip() == "failed " + str(["compensated"] * 5 + ["failed"])


# -- mapped sub-workflows, and maps nested through them (docs/sub-workflows.md) -----------


def _row_workflow(calls: list[Any], broken: set[tuple[int, int]]) -> flowrt.Workflow:
    """A child that maps over the cells of its row: a map inside each item."""
    row_wf = flowrt.Workflow("row")
    row_wf.add("cells", lambda row: list(range(row)))

    def cell(c: int, row: int) -> int:
        calls.append((row, c))
        if (row, c) in broken:
            raise ConnectionError(f"cell {row}.{c}")
        return row * 10 + c

    row_wf.add("cell", cell, map={"c": "cells"})
    row_wf.add("total", lambda cell: sum(cell))
    return row_wf


def _grid(calls: list[Any], broken: set[tuple[int, int]], **options: Any) -> flowrt.Workflow:
    wf = flowrt.Workflow("grid")
    wf.add("rows", lambda: [1, 2, 3])
    wf.add("per_row", _row_workflow(calls, broken), map={"row": "rows"}, **options)
    wf.add("grand", lambda per_row: sum(per_row))
    return wf


@pytest.mark.anyio
async def test_a_mapped_sub_workflow_runs_one_child_run_per_item() -> None:
    child = flowrt.Workflow("double")
    child.add("twice", lambda x: 2 * x)
    wf = flowrt.Workflow("parent")
    wf.add("xs", lambda: [1, 2, 3])
    wf.add("per", child, map={"x": "xs"})
    events: list[flowrt.Event] = []
    result = await wf.run(run_id="p", on_event=events.append)
    assert result.ok and result["per"] == [2, 4, 6]
    assert _statuses(result, "per") == ["succeeded"] * 3
    child_runs = {e.run_id for e in events if e.node == "twice"}
    assert child_runs == {"p/per/0", "p/per/1", "p/per/2"}


@pytest.mark.anyio
async def test_maps_nest_through_a_mapped_sub_workflow() -> None:
    calls: list[Any] = []
    result = await _grid(calls, set()).run(run_id="g")
    assert result.ok
    assert result["per_row"] == [10, 20 + 21, 30 + 31 + 32]
    assert result["grand"] == 10 + 41 + 93
    assert sorted(calls) == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]


@pytest.mark.anyio
async def test_a_failed_inner_item_fails_its_outer_item_with_the_childs_errors() -> None:
    calls: list[Any] = []
    result = await _grid(calls, {(2, 1)}, partial=True).run(run_id="g")
    assert result["per_row"] == [10, None, 93]
    error = result.items("per_row")[1].error
    assert isinstance(error, flowrt.SubWorkflowFailed) and error.run_id == "g/per_row/1"
    assert isinstance(error.errors["cell"], ConnectionError)


def test_mapped_sub_workflows_are_recorded_and_resume_only_unrecorded_items(
        any_store: Any) -> None:
    """Each item's child run is recorded in the same store (``parent/node/index``); a
    resume re-runs only the outer items not recorded, and in them only the inner items
    not recorded."""
    calls: list[Any] = []
    broken = {(3, 1)}
    failed = _grid(calls, broken).run_sync(store=any_store, run_id="g")
    assert failed.status is RunStatus.FAILED
    assert _statuses(failed, "per_row") == ["succeeded", "succeeded", "failed"]
    assert sorted(r.run_id for r in any_store.runs()) == [
        "g", "g/per_row/0", "g/per_row/1", "g/per_row/2"]
    assert any_store.load("g/per_row/2").item_counts("cell") == {
        "succeeded": 2, "failed": 1}
    assert any_store.load("g").item_counts("per_row") == {"succeeded": 2, "failed": 1}
    broken.clear()
    calls.clear()
    resumed = _grid(calls, broken).run_sync(store=any_store, run_id="g")
    assert resumed.ok and resumed["grand"] == 10 + 41 + 93
    assert calls == [(3, 1)]  # one inner item of one outer item
    assert _statuses(resumed, "per_row") == ["succeeded"] * 3
    assert any_store.load("g/per_row/2").item_counts("cell") == {"succeeded": 3}


def test_nesting_through_mapped_sub_workflows_is_limited_to_16_levels() -> None:
    wf = flowrt.Workflow("w0")
    wf.add("leaf", lambda x: x + 1)
    for depth in range(1, 17):
        parent = flowrt.Workflow(f"w{depth}")
        parent.add("xs", lambda x: [x + 1])
        parent.add("child", wf, map={"x": "xs"})
        parent.add("out", lambda child: child[0])
        wf = parent
    result = wf.run_sync({"x": 0}, run_id="deep")
    assert result.ok and result["out"] == 17  # 16 levels of maps of sub-workflows ran
    too_deep = flowrt.Workflow("w17")
    too_deep.add("xs", lambda: [1])
    with pytest.raises(flowrt.GraphError, match="nests 17 levels deep; the limit is 16"):
        too_deep.add("child", wf, map={"x": "xs"})
    inner = flowrt.Workflow("inner")
    inner.add("x_", lambda x: [x])
    outer = flowrt.Workflow("outer")
    outer.add("xs", lambda: [1])
    outer.add("per", inner, map={"x": "xs"})
    with pytest.raises(flowrt.CycleError) as caught:
        inner.add("back", outer, map={"unused": "x_"})
    assert caught.value.cycle == ["inner", "outer", "inner"]


# -- cancellation: outer scope, run timeout, fail_fast, both backends -----------------------

_CANCEL_PROGRAM = """
import random
import anyio, flowrt
from flowrt import Status

undone = []

def build():
    row_wf = flowrt.Workflow("row")
    row_wf.add("cells", lambda row: list(range(row)))

    @row_wf.map(c="cells", cache=flowrt.Cache(), retry=flowrt.Retry(attempts=3, delay=0.001))
    async def cell(c: int, row: int) -> int:
        await anyio.sleep(random.uniform(0, 0.003))
        if random.random() < 0.1:
            raise ConnectionError("flaky")
        return row * 10 + c

    row_wf.add("total", lambda cell: sum(cell))

    async def undo(total: int, ctx: flowrt.Context) -> None:
        await anyio.sleep(random.uniform(0, 0.002))
        undone.append((ctx.run_id, ctx.item))

    wf = flowrt.Workflow("cancel-nested")
    wf.add("rows", lambda: [1, 2, 3, 4, 5, 6])
    wf.add("per_row", row_wf, map={"row": "rows"}, concurrency=3, compensate=undo)

    @wf.node
    async def other() -> None:
        await anyio.sleep(random.uniform(0, 0.02))
        if MODE == "fail_fast":
            raise RuntimeError("boom")

    return wf

WF = build()

def check(result, run_id):
    items = result.items("per_row")
    statuses = [i.status for i in items]
    assert all(s.final or s is Status.PENDING for s in statuses), statuses
    # exactly the items that had succeeded were undone, each once
    mine = sorted(k for r, k in undone if r == run_id)
    assert len(mine) == len(set(mine)), mine
    compensated = sorted(i.index for i in items
                         if i.status in (Status.COMPENSATED, Status.COMPENSATION_FAILED))
    assert mine == compensated, (mine, compensated, statuses)
    assert Status.SUCCEEDED not in statuses or result.ok, statuses

async def once(trial, store):
    random.seed(trial)
    run_id = f"r{trial}"
    if MODE == "outer":
        with anyio.move_on_after(random.uniform(0, 0.03)):
            result = await WF.run(run_id=run_id, store=store)
            check(result, run_id)
        if store is not None:  # what was recorded is not redone; the rest runs
            stored = store.load(run_id)
            if stored is not None and stored.record.status == "running":
                result = await WF.run(run_id=run_id, store=store, compensate=False)
                assert result.ok, result
        return
    if MODE == "timeout":
        result = await WF.run(run_id=run_id, store=store, timeout=random.uniform(0, 0.03))
    else:
        result = await WF.run(run_id=run_id, store=store, fail_fast=True)
    check(result, run_id)

async def main():
    for trial in range(TRIALS):
        store = flowrt.MemoryStore() if trial % 3 == 2 else None
        await once(trial, store)

anyio.run(main, backend=BACKEND)
print("ok")
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", ["outer", "timeout", "fail_fast"])
def test_cancelled_while_nested_items_run_are_cached_or_rolled_back(backend: str,
                                                                   mode: str) -> None:
    """A mapped sub-workflow whose child maps cached, retried items, with a compensation
    per outer item; cancelled by an outer scope, a run timeout or fail_fast, 40 times
    each (every third durable): no hang, every item final (or never started), and
    exactly the items that succeeded undone, once each."""
    program = f"MODE = {mode!r}\nTRIALS = 40\n" + _CANCEL_PROGRAM
    out = run_program(program, backend=backend, timeout=180)
    assert out.strip().endswith("ok")


# -- the HTML report draws sub-workflows (flowrt/tools/report.py) ------------------------------


def test_the_report_draws_the_child_runs_of_a_stored_run_nested(tmp_path: Path) -> None:
    import subprocess
    import sys

    from flowrt.durable import SQLiteStore
    from flowrt.tools.report import child_views, render

    calls: list[Any] = []
    pay = flowrt.Workflow("pay")
    pay.add("authorize", lambda: "auth-1")
    wf = _grid(calls, {(3, 2)}, partial=True)
    wf.add("pay", pay)
    db = str(tmp_path / "runs.db")
    store = SQLiteStore(db)
    try:
        result = wf.run_sync(store=store, run_id="g")
        assert result["per_row"] == [10, 41, None]  # "grand" fails on the None
        children = child_views(store, "g")
        assert sorted(children) == ["g/pay", "g/per_row/0", "g/per_row/1", "g/per_row/2"]
        page = render(store.load("g"), children=children)
    finally:
        store.close()
    sub = page[page.index('<h2 id="sub-workflows">'):]
    # a sub-workflow's run nested under its node; a mapped one's item runs listed and drawn
    assert "sub-workflow pay" in sub and "mapped sub-workflow row: 3 item runs" in sub
    for rid in ("g/pay", "g/per_row/0", "g/per_row/1", "g/per_row/2"):
        assert f"<code>{rid}</code>" in sub
    assert sub.count('class="nested"') == 4
    assert 'data-node="authorize"' in sub and 'data-node="cell"' in sub
    # the failed item run says so, with its failed inner map
    row2 = sub[sub.index("run <code>g/per_row/2</code> of"):]
    assert row2.index("failed") < 100  # the run's status
    assert "2 ok / 1 failed" in row2.split("</svg>")[0]  # its map's box
    # the nodes link to their part of the page (no link leaves it)
    assert 'href="#sub-g-per_row"' in page and 'id="sub-g-per_row"' in page
    assert 'href="#sub-g-pay"' in page and "http" not in sub
    # without children= the page is as before: no section
    assert "Sub-workflows" not in render(SQLiteStore(db).load("g"))
    # flowrt report reads the child runs from the store
    out = tmp_path / "g.html"
    proc = subprocess.run([sys.executable, "-m", "flowrt", "report", "g", "--store", db,
                           "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "4 child runs" in proc.stdout
    assert out.read_text().count('class="nested"') == 4


@pytest.mark.anyio
async def test_a_cached_mapped_sub_workflow_misses_when_the_child_changes() -> None:
    calls: list[int] = []

    def child(step: Any) -> flowrt.Workflow:
        c = flowrt.Workflow("child")
        c.add("out", step)
        return c

    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    def triple(x: int) -> int:
        calls.append(x)
        return 3 * x

    async with flowrt.Runtime() as rt:
        ran = []
        for step in (double, double, triple):
            wf = flowrt.Workflow("parent")
            wf.add("xs", lambda: [1, 2])
            wf.add("per", child(step), map={"x": "xs"}, cache=flowrt.Cache())
            calls.clear()
            result = await rt.run(wf)
            ran.append((result["per"], sorted(calls), _statuses(result, "per")))
    assert ran == [([2, 4], [1, 2], ["succeeded"] * 2),
                   ([2, 4], [], ["cached"] * 2),  # the same child: hits
                   ([3, 6], [1, 2], ["succeeded"] * 2)]  # its node's code changed


_KILLED_NESTED = """
import os, signal, sys, time
import anyio, flowrt
from stores import open_spec

def cell(c: int, ctx: flowrt.Context) -> int:
    with open(LOG, "a") as log:
        log.write(f"{ctx.run_id}:{c}\\n")
    if KILL:
        with open(LOG) as log:
            if len(log.read().split()) >= 7:
                time.sleep(0.3)  # the items that ended before are on disk by now
                os.kill(os.getpid(), signal.SIGKILL)
    return c

row = flowrt.Workflow("row")
row.add("cells", lambda row: list(range(3)))
row.add("cell", cell, map={"c": "cells"}, concurrency=1)
row.add("total", lambda cell, row: row * 100 + sum(cell))
grid = flowrt.Workflow("grid")
grid.add("rows", lambda: [1, 2, 3, 4])
grid.add("per_row", row, map={"row": "rows"}, concurrency=2)

async def main():
    store = open_spec(SPEC)
    result = await grid.run(store=store, run_id="g")
    print(result.status, result["per_row"])
    store.close()

anyio.run(main, backend=BACKEND)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sigkill_in_the_middle_of_a_map_of_maps_then_resume(shared_kit: Any, tmp_path: Path,
                                                           backend: str) -> None:
    """A real process is killed (SIGKILL) while inner items of a mapped sub-workflow run;
    a second one resumes the parent: no inner item recorded as succeeded runs again, and
    the result is whole."""
    log = tmp_path / "cells.log"
    head = f"SPEC = {shared_kit.spec!r}\nLOG = {str(log)!r}\n"
    run_program(head + "KILL = True\n" + _KILLED_NESTED, backend=backend, timeout=60,
                expect_exit=-9)
    store = shared_kit.make()
    recorded = set()
    for record in store.runs():
        if record.run_id.startswith("g/per_row/"):
            items = store.load(record.run_id).items.get("cell") or {}
            recorded |= {f"{record.run_id}:{i}" for i, r in items.items()
                         if i >= 0 and r.status == "succeeded"}
    store.close()
    assert len(recorded) >= 3, recorded
    before = len(log.read_text().split())
    out = run_program(head + "KILL = False\n" + _KILLED_NESTED, backend=backend, timeout=60)
    assert out.split("\n")[0] == "succeeded [103, 203, 303, 403]"
    ran_again = set(log.read_text().split()[before:])
    assert ran_again and ran_again.isdisjoint(recorded), ran_again & recorded


_CANCEL_ROLLBACK = """
import anyio, flowrt
from flowrt import Status
from flowrt._engine import saga

undone = []
HANG = False
SHIPPING = [None]

async def refund(charge: str, ctx: flowrt.Context) -> None:
    undone.append(ctx.item)
    if HANG and ctx.item == 2:
        await anyio.sleep(3600)  # cut off by the grace
    await anyio.sleep(0.005)

def build():
    wf = flowrt.Workflow("cancel-rollback")
    wf.add("cards", lambda: list(range(5)))
    wf.add("charge", lambda card: f"ch{card}", map={"card": "cards"}, compensate=refund)

    async def ship(charge: list) -> None:
        SHIPPING[0].set()  # every item succeeded
        await anyio.sleep(3600)  # the caller gives up while it waits

    wf.add("ship", ship)
    return wf

async def main():
    global HANG
    wf = build()
    store = flowrt.MemoryStore()
    for trial in range(TRIALS):
        undone.clear()
        SHIPPING[0] = anyio.Event()
        # cancelled from outside while ship waits: the rollback undoes every item, all
        # of it shielded from the cancellation, which then propagates
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                async def cancel_soon():
                    await SHIPPING[0].wait()
                    await anyio.sleep(0.002 * (trial % 3))
                    scope.cancel()
                tg.start_soon(cancel_soon)
                await wf.run(run_id=f"r{trial}", store=store)
        assert scope.cancelled_caught
        assert undone == [4, 3, 2, 1, 0], undone
        stored = store.load(f"r{trial}")
        assert stored.item_counts("charge") == {"compensated": 5}, stored.item_counts("charge")
    # a compensation that hangs is cut off when the grace runs out; the items not
    # undone yet are left to a resume of the rollback
    HANG = True
    saga.ROLLBACK_GRACE = 0.05
    undone.clear()
    SHIPPING[0] = anyio.Event()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            async def cancel_when_shipping():
                await SHIPPING[0].wait()
                scope.cancel()
            tg.start_soon(cancel_when_shipping)
            await wf.run(run_id="hang", store=store)
    assert undone == [4, 3, 2], undone
    counts = store.load("hang").item_counts("charge")
    assert counts == {"compensated": 2, "compensation_failed": 1, "succeeded": 2}, counts
    HANG = False
    undone.clear()
    result = await wf.run(run_id="hang", store=store)
    assert undone == [1, 0], undone
    statuses = [str(i.status) for i in result.items("charge")]
    assert statuses == ["compensated"] * 2 + ["compensation_failed"] + ["compensated"] * 2
    assert result.status is flowrt.RunStatus.CANCELLED, result.status
    assert isinstance(result.items("charge")[2].error, Exception)

anyio.run(main, backend=BACKEND)
print("ok")
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_caller_waits_for_the_items_rollback_within_the_grace(
        backend: str) -> None:
    """Cancelled from outside 20 times: every succeeded item is undone (shielded), last
    first, recorded; a hanging item compensation is cut off by the grace and a resume
    undoes the items left."""
    out = run_program("TRIALS = 20\n" + _CANCEL_ROLLBACK, backend=backend, timeout=120)
    assert out.strip().endswith("ok")


def test_a_map_restored_by_a_resume_is_undone_item_by_item(any_store: Any) -> None:
    """The map succeeded before a crash; the resumed run fails later: the rollback undoes
    the items restored from the store, with their stored outputs."""
    undone: list[Any] = []
    wf = _charges(undone, declined=set(), fail_after=True, cards=3)
    with pytest.raises(Crash), crash_at("charge"):
        wf.run_sync(store=any_store, run_id="r")
    assert undone == []
    result = wf.run_sync(store=any_store, run_id="r")
    assert result.status is RunStatus.FAILED
    assert undone == [("ch2", 2, "charge"), ("ch1", 1, "charge"), ("ch0", 0, "charge")]
    assert result.nodes["charge"].status is Status.COMPENSATED
    assert any_store.load("r").item_counts("charge") == {"compensated": 3}


def test_the_progress_line_counts_a_compensated_node_once() -> None:
    from flowrt.tools._progress import RunProgress

    undone: list[Any] = []
    progress = RunProgress("charges", "r", None, 0.0)
    result = _charges(undone, declined=set(), fail_after=True).run_sync(
        run_id="r", on_event=progress.apply)
    assert result.status is RunStatus.FAILED
    # cards succeeded, charge compensated, ship failed: three nodes, each counted once
    assert progress.summary().startswith(
        "3 nodes: 1 succeeded, 1 failed, 1 compensated; 5 items of maps")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 12), declined=st.sets(st.integers(0, 11)),
       refund_fails=st.sets(st.integers(0, 11)), fail_after=st.booleans(),
       partial=st.booleans())
def test_random_maps_undo_exactly_their_succeeded_items_last_first(
        n: int, declined: set[int], refund_fails: set[int], fail_after: bool,
        partial: bool) -> None:
    """Whatever fails: the items undone are exactly the items that succeeded, in
    descending index order, each once, and only when the run did not succeed."""
    undone: list[Any] = []
    wf = flowrt.Workflow("random-charges")
    wf.add("cards", lambda: list(range(n)))

    def charge(card: int) -> str:
        if card in declined:
            raise RuntimeError(card)
        return f"ch{card}"

    def refund(out: str, ctx: flowrt.Context) -> None:
        undone.append(ctx.item)
        if ctx.item in refund_fails:
            raise ConnectionError(out)

    wf.add("charge", charge, map={"card": "cards"}, compensate=refund, partial=partial)

    def ship(charge: list[Any]) -> None:
        if fail_after:
            raise RuntimeError("no courier")

    wf.add("ship", ship)
    result = wf.run_sync()
    succeeded = [k for k in range(n) if k not in declined]
    if result.ok:
        assert undone == [] and not (fail_after or (declined & set(range(n)) and not partial))
        return
    assert undone == sorted(succeeded, reverse=True)
    statuses = [i.status for i in result.items("charge")]
    for k, status in enumerate(statuses):
        if k in declined:
            assert status is Status.FAILED
        else:
            assert status is (Status.COMPENSATION_FAILED if k in refund_fails
                              else Status.COMPENSATED)
