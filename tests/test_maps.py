"""Dynamic maps (design.md, "Control flow"; docs/mapping.md): defining them, the edge
cases, per-item options, depth-first chains, the scheduler's invariants under random
maps, durable items (every store, a store of the release before maps, SIGKILL), and
cancellation while items run, hold a limit slot or retry."""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from gauge import Gauge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import StoreKit
from subproc import run_program
from worker_kit import start_worker, starts

import flowrt
from flowrt import EventKind, MapError, RunStatus, Status
from flowrt.durable import ItemRecord, SQLiteStore

HERE = Path(__file__).parent
FIXTURE_V3 = HERE / "data" / "store-v3-maps.db"
FIXTURE_V6 = HERE / "data" / "store-v6-items.db"
import map_worker  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _numbers(wf: flowrt.Workflow, items: list[Any], name: str = "numbers") -> None:
    wf.add(name, lambda: list(items))


# -- defining ------------------------------------------------------------------------------


def test_the_decorator_and_the_builder_define_the_same_map() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 2])

    @wf.map(n="numbers", retries=2, concurrency=3)
    def double(n: int) -> int:
        return 2 * n

    wf.add("triple", lambda n: 3 * n, map={"n": "numbers"}, max_items=10, partial=True)
    spec = wf.nodes["double"].map
    assert spec is not None and spec.params == ("n",) and spec.sources == ("numbers",)
    assert (spec.concurrency, spec.max_items, spec.partial) == (3, 100_000, False)
    assert wf.nodes["double"].options.attempts == 3
    assert wf.nodes["triple"].map.max_items == 10  # type: ignore[union-attr]
    assert wf.nodes["numbers"].map is None
    assert wf.compile().deps("double") == ["numbers"]
    result = wf.run_sync()
    assert result["double"] == [2, 4] and result["triple"] == [3, 6]
    wf.remove("numbers")
    wf.add("numbers", lambda: [5])
    assert wf.run_sync()["double"] == [10]  # remove() kept the maps


@pytest.mark.parametrize(("options", "message"), [
    ({"map": {}}, "at least one parameter"),
    ({"map": {"n": "numbers"}, "max_items": -1}, "max_items= must be an int >= 0"),
    ({"map": {"n": "numbers"}, "concurrency": 0}, "concurrency= must be an int >= 1"),
    ({"map": {"n": "numbers"}, "partial": "yes"}, "partial= must be True or False"),
    ({"map": ["numbers"]}, "map= takes a mapping"),
    ({"concurrency": 2}, "option concurrency= is for mapped nodes"),
    ({"map": {"n": "numbers"}, "inputs": {"n": "other"}}, "mapped over 'numbers'"),
    ({"map": {"n": "numbers"}, "branch": True}, "cannot be a branch"),
])
def test_bad_map_options_name_the_culprit(options: dict[str, Any], message: str) -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1])
    wf.add("other", lambda: [1])
    with pytest.raises(flowrt.GraphError, match=message):
        wf.add("m", lambda n: n, **options)
    assert "m" not in wf


def test_a_typo_gets_the_near_match() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1])
    with pytest.raises(TypeError, match=r"max_item= \(did you mean max_items=\?\)"):
        wf.add("m", lambda n: n, map={"n": "numbers"}, max_item=3)

    def work(number: int) -> int:
        return number

    wf.add("m", work, map={"numbr": "numbers"}, inputs={})
    with pytest.raises(flowrt.GraphError, match="numbr"):
        wf.compile()
    with pytest.raises(flowrt.GraphError, match="param=\"node\""):
        wf.map(retries=1)(work)


def test_map_over_an_unknown_node_is_an_unknown_node_error() -> None:
    wf = flowrt.Workflow("w")
    wf.add("m", lambda n: n, map={"n": "nowhere"})
    with pytest.raises(flowrt.UnknownNodeError, match="nowhere"):
        wf.compile()


# -- running: the edge cases -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("items", [[], [7], list(range(50))])
async def test_empty_one_and_many_items(items: list[int]) -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, items)
    calls: list[int] = []

    @wf.map(n="numbers")
    async def square(n: int) -> int:
        calls.append(n)
        await anyio.sleep(0)
        return n * n

    @wf.node
    def total(square: list[int]) -> int:
        return sum(square)

    result = await wf.run()
    assert result.ok and result["square"] == [n * n for n in items]
    assert result["total"] == sum(n * n for n in items) and sorted(calls) == items
    assert [i.status for i in result.items("square")] == [Status.SUCCEEDED] * len(items)
    assert [i.index for i in result.items("square")] == list(range(len(items)))
    assert all(i.attempts == 1 and i.error is None for i in result.items("square"))
    with pytest.raises(ValueError, match="not a mapped node"):
        result.items("total")


@pytest.mark.anyio
async def test_several_params_zip_and_the_others_are_broadcast() -> None:
    wf = flowrt.Workflow("w")
    wf.add("names", lambda: ["a", "b", "c"])
    wf.add("sizes", lambda: (1, 2, 3))  # any iterable
    wf.add("prefix", lambda: ">")

    @wf.map(map={"name": "names"}, size="sizes")  # name= would name the node
    def label(prefix: str, name: str, size: int, sep: str = ":") -> str:
        return f"{prefix}{name}{sep}{size}"

    result = await wf.run({"sep": "="})
    assert result["label"] == [">a=1", ">b=2", ">c=3"]


@pytest.mark.anyio
async def test_unequal_zip_fails_before_any_item_starts() -> None:
    wf = flowrt.Workflow("w")
    wf.add("xs", lambda: [1, 2, 3])
    wf.add("ys", lambda: [1, 2])
    calls: list[int] = []
    wf.add("pair", lambda x, y: calls.append(x), map={"x": "xs", "y": "ys"})
    result = await wf.run()
    assert result.status is RunStatus.FAILED and calls == []
    error = result.errors["pair"]
    assert isinstance(error, MapError)
    assert "'x' (3 items from 'xs')" in str(error) and "'y' (2 items from 'ys')" in str(error)
    assert result.items("pair") == []


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["abc", 42, None, {"a": 1}.items])
async def test_a_mapped_value_that_is_no_list(value: Any) -> None:
    wf = flowrt.Workflow("w")
    wf.add("xs", lambda: value)
    wf.add("m", lambda x: x, map={"x": "xs"})
    result = await wf.run()
    assert isinstance(result.errors["m"], MapError)
    assert "maps parameter 'x' over the output of 'xs'" in str(result.errors["m"])


@pytest.mark.anyio
async def test_max_items_exceeded_fails_before_any_item_starts() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, list(range(11)))
    calls: list[int] = []
    wf.add("m", lambda n: calls.append(n), map={"n": "numbers"}, max_items=10)
    wf.add("ok", lambda n: n, map={"n": "numbers"}, max_items=11)
    result = await wf.run()
    assert calls == [] and "11 items, more than its max_items=10" in str(result.errors["m"])
    assert result.nodes["ok"].status is Status.SUCCEEDED


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [1, 3])
async def test_concurrency_caps_the_items_in_flight(concurrency: int) -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, list(range(12)))
    gauge = Gauge()

    @wf.map(n="numbers", concurrency=concurrency)
    async def slow(n: int) -> int:
        await gauge.hold(0.002, "items")
        return n

    result = await wf.run()
    assert result["slow"] == list(range(12)) and gauge.peak["items"] == concurrency


@pytest.mark.anyio
async def test_run_limits_apply_to_items_and_the_map_holds_no_slot() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, list(range(8)))
    gauge = Gauge()

    @wf.map(n="numbers", limit="api")
    async def call(n: int) -> int:
        await gauge.hold(0.002, "items")
        return n

    # max_concurrency=1: the map would wait for itself if it held a slot
    result = await wf.run(max_concurrency=1)
    assert result.ok and gauge.peak["items"] == 1
    gauge = Gauge()  # (the item reads this name when it runs)
    result = await wf.run(limits={"api": 2})
    assert result.ok and gauge.peak["items"] == 2


@pytest.mark.anyio
async def test_partial_gives_none_for_failed_items() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 0, 2, 0])
    wf.add("inv", lambda n: 1 / n, map={"n": "numbers"}, partial=True)
    wf.add("strict", lambda n: 1 / n, map={"n": "numbers"})
    result = await wf.run()
    assert result["inv"] == [1.0, None, 0.5, None]
    items = result.items("inv")
    assert [i.status for i in items] == [Status.SUCCEEDED, Status.FAILED] * 2
    assert isinstance(items[1].error, ZeroDivisionError)
    error = result.errors["strict"]
    assert isinstance(error, ZeroDivisionError)  # the first failed item's own error
    assert "item 1 of mapped node 'strict' (2 of 4 items failed" in str(error.__notes__)
    assert result.status is RunStatus.FAILED and result.nodes["inv"].status is Status.SUCCEEDED


@pytest.mark.anyio
async def test_retries_and_timeouts_apply_per_item() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [0, 1, 2, 3])
    tries: dict[int, int] = {}

    @wf.map(n="numbers", retries=2, timeout=0.5)
    async def flaky(n: int, ctx: flowrt.Context) -> int:
        tries[n] = tries.get(n, 0) + 1
        assert ctx.item == n and ctx.node == "flaky" and ctx.attempt == tries[n]
        if n == 3:
            await anyio.sleep(5)  # times out on every attempt
        if tries[n] <= n:  # item n fails n times
            raise ConnectionError(n)
        return n

    events: list[flowrt.Event] = []
    result = await wf.run(on_event=events.append)
    assert tries == {0: 1, 1: 2, 2: 3, 3: 3}
    items = result.items("flaky")
    assert [i.attempts for i in items] == [1, 2, 3, 3]
    assert [i.status for i in items] == [Status.SUCCEEDED] * 3 + [Status.FAILED]
    assert isinstance(items[3].error, TimeoutError)
    retried = [(e.item, e.attempt) for e in events if e.kind is EventKind.RETRYING]
    assert sorted(retried) == [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2)]
    node_events = [e for e in events if e.node == "flaky" and e.item is None]
    assert [str(e.kind) for e in node_events] == ["ready", "started", "failed"]
    assert result.nodes["flaky"].attempts == 1  # the node ran once; its items retried


@pytest.mark.anyio
async def test_sync_items_run_in_threads_and_on_a_named_executor() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, list(range(4)))
    wf.add("threads", lambda n: threading.get_ident(), map={"n": "numbers"})
    wf.add("loop", lambda n: threading.get_ident(), map={"n": "numbers"}, executor="loop")
    result = await wf.run()
    me = threading.get_ident()
    assert me not in result["threads"] and set(result["loop"]) == {me}


def _double(n: int) -> int:
    return 2 * n


def test_items_on_a_process_pool() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, list(range(5)))
    wf.add("double", _double, map={"n": "numbers"}, executor="process")
    assert wf.run_sync()["double"] == [0, 2, 4, 6, 8]


@pytest.mark.anyio
async def test_events_about_items_carry_the_index() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, ["a", "b"])
    wf.add("up", lambda s: s.upper(), map={"s": "numbers"}, executor="loop")
    events: list[flowrt.Event] = []
    await wf.run(on_event=events.append)
    per_item = [(str(e.kind), e.item) for e in events if e.item is not None]
    assert sorted(per_item) == sorted([(k, i) for i in (0, 1)
                                       for k in ("ready", "started", "succeeded")])
    assert all(e.node == "up" for e in events if e.item is not None)


# -- depth-first chains ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_map_over_a_map_runs_depth_first() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [4, 1, 2])
    log: list[tuple[str, int]] = []

    @wf.map(n="numbers")
    async def fetch(n: int, ctx: flowrt.Context) -> int:
        await anyio.sleep(n * 0.02)
        log.append(("fetch", ctx.item))  # type: ignore[arg-type]
        return n

    @wf.map(n="fetch")
    async def parse(n: int, ctx: flowrt.Context) -> int:
        log.append(("parse", ctx.item))  # type: ignore[arg-type]
        return n * 10

    @wf.map(n="parse")
    def store(n: int) -> int:
        return n + 1

    result = await wf.run()
    assert result["parse"] == [40, 10, 20] and result["store"] == [41, 11, 21]
    # item 1 of parse ran as soon as item 1 of fetch was done: before fetch's item 0
    assert log.index(("parse", 1)) < log.index(("fetch", 0))
    assert [i.status for i in result.items("store")] == [Status.SUCCEEDED] * 3


@pytest.mark.anyio
async def test_a_failed_item_skips_the_items_that_map_over_it() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 0, 2])
    wf.add("inv", lambda n: 1 / n, map={"n": "numbers"})
    calls: list[float] = []
    wf.add("use", lambda x: calls.append(x), map={"x": "inv"})
    result = await wf.run()
    assert result.nodes["inv"].status is Status.FAILED
    assert result.nodes["use"].status is Status.SKIPPED
    assert sorted(calls) == [0.5, 1.0]  # the items whose input succeeded ran
    assert [i.status for i in result.items("use")] == [
        Status.SUCCEEDED, Status.SKIPPED, Status.SUCCEEDED]


@pytest.mark.anyio
async def test_a_map_waiting_for_another_dependency_runs_after_the_whole_map() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 2])
    gate = anyio.Event()

    @wf.node
    async def config() -> int:
        await gate.wait()
        return 100

    @wf.map(n="numbers")
    async def first(n: int) -> int:
        return n

    @wf.map(n="first")
    def second(n: int, config: int) -> int:
        return n + config

    @wf.node
    async def release(first: list[int]) -> None:
        gate.set()

    result = await wf.run()
    assert result["second"] == [101, 102]


@pytest.mark.anyio
async def test_a_map_after_a_partial_map_gets_the_nones() -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 0])
    wf.add("inv", lambda n: 1 / n, map={"n": "numbers"}, partial=True)
    wf.add("again", lambda x: x, map={"x": "inv"})
    result = await wf.run()
    assert result["again"] == [1.0, None]


# -- the scheduler's invariants under random maps ------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 12), min_size=1, max_size=3),
       fail=st.sets(st.integers(0, 40)), concurrency=st.sampled_from([None, 1, 2, 5]),
       chained=st.booleans(), partial=st.booleans(), backend=st.sampled_from(["asyncio", "trio"]))
def test_random_maps_keep_the_invariants(sizes: list[int], fail: set[int],
                                         concurrency: int | None, chained: bool,
                                         partial: bool, backend: str) -> None:
    """No item starts before what it depends on is final, every item ends final, each
    item runs once, and the outputs are right."""
    wf = flowrt.Workflow("random")
    events: list[flowrt.Event] = []
    for m, size in enumerate(sizes):
        source = f"list{m}"
        wf.add(source, lambda size=size: list(range(size)))

        async def first(n: int, ctx: flowrt.Context, m: int = m) -> int:
            await anyio.sleep(0.001 * (n % 3))
            if (m * 13 + n) in fail:
                raise ValueError(n)
            return n

        wf.add(f"a{m}", first, map={"n": source}, concurrency=concurrency, partial=partial)
        if chained:
            wf.add(f"b{m}", lambda n: n, map={"n": f"a{m}"}, executor="loop")
    result = wf.run_sync(on_event=events.append, backend=backend)
    done: dict[tuple[str, int | None], int] = {}  # (node, item) -> event index it ended
    for k, e in enumerate(events):
        key = (e.node or "", e.item)
        if e.kind is EventKind.STARTED and e.item is not None:
            if e.node and e.node.startswith("a"):
                assert (f"list{e.node[1:]}", None) in done  # its list was final
            else:
                assert (f"a{e.node[1:]}", e.item) in done  # type: ignore[index]
        if e.kind in (EventKind.SUCCEEDED, EventKind.FAILED, EventKind.SKIPPED,
                      EventKind.CANCELLED):
            assert key not in done, f"{key} ended twice"
            done[key] = k
    for m, size in enumerate(sizes):
        failed = [n for n in range(size) if (m * 13 + n) in fail]
        items = result.items(f"a{m}")
        assert len(items) == size and all(i.status.final for i in items)
        assert all(i.attempts == 1 for i in items)
        assert [n for n in range(size) if items[n].status is Status.FAILED] == failed
        if partial or not failed:
            assert result[f"a{m}"] == [None if n in failed else n for n in range(size)]
        if chained and (partial or not failed):
            assert result[f"b{m}"] == result[f"a{m}"]


# -- durable -----------------------------------------------------------------------------------


def _durable_map(calls: list[int], fail: set[int]) -> flowrt.Workflow:
    wf = flowrt.Workflow("durable-map")
    _numbers(wf, list(range(8)))

    @wf.map(n="numbers", concurrency=3)
    def square(n: int) -> int:
        calls.append(n)
        if n in fail:
            raise ValueError(f"item {n}")
        return n * n

    @wf.map(n="square")
    def plus(n: int) -> int:
        return n + 1

    return wf


def test_resume_runs_only_the_items_not_recorded(any_store: Any) -> None:
    calls: list[int] = []
    result = _durable_map(calls, {2, 5}).run_sync(store=any_store, run_id="r")
    assert result.status is RunStatus.FAILED and sorted(calls) == list(range(8))
    stored = any_store.load("r")
    records = stored.items["square"]
    assert records[-1].status == "listed" and records[-1].attempts == 8
    assert {i: r.status for i, r in records.items() if i >= 0} == {
        i: "failed" if i in (2, 5) else "succeeded" for i in range(8)}
    assert "ValueError: item 2" in (records[2].error or "")
    assert stored.item_counts("square") == {"succeeded": 6, "failed": 2}
    assert stored.item_counts("plus") == {"succeeded": 6, "skipped": 2}

    calls.clear()
    result = _durable_map(calls, set()).run_sync(store=any_store, run_id="r")
    assert result.ok and sorted(calls) == [2, 5]
    assert result["square"] == [n * n for n in range(8)]
    assert result["plus"] == [n * n + 1 for n in range(8)]
    items = result.items("square")
    assert all(i.status is Status.SUCCEEDED for i in items) and items[0].attempts == 1
    # replayed: nothing runs, the items are the store's
    calls.clear()
    again = _durable_map(calls, set()).run_sync(store=any_store, run_id="r")
    assert calls == [] and again["plus"] == result["plus"]
    assert [i.status for i in again.items("square")] == [Status.SUCCEEDED] * 8


def test_an_item_output_the_store_cannot_keep_fails_that_item(any_store: Any) -> None:
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 2])
    wf.add("m", lambda n: object() if n == 2 else n, map={"n": "numbers"}, partial=True)
    result = wf.run_sync(store=any_store, run_id="r")
    assert result["m"] == [1, None]
    assert isinstance(result.items("m")[1].error, flowrt.SerializationError)
    assert "item 1 of node 'm'" in str(result.items("m")[1].error)


def test_a_serializer_that_refuses_none_fails_the_items_that_return_it() -> None:
    """The None a durable run stores for items is its serializer's (made once per run):
    one that refuses None still fails each item that returns it, as it is asked."""

    class NoNone(flowrt.durable.JSONSerializer):
        name = "no-none"

        def dumps(self, value: Any) -> bytes:
            if value is None:
                raise flowrt.SerializationError("None is not welcome here")
            return super().dumps(value)

    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 2, 3])
    wf.add("m", lambda n: None if n == 2 else n, map={"n": "numbers"}, partial=True)
    result = wf.run_sync(store=flowrt.MemoryStore(serializer=NoNone()), run_id="r")
    assert result["m"] == [1, None, 3]
    error = result.items("m")[1].error
    assert isinstance(error, flowrt.SerializationError)
    assert "item 1 of node 'm' returned None is not welcome here" in str(error)


def test_a_store_of_the_release_before_maps_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "v3.db"
    shutil.copyfile(FIXTURE_V3, db)
    sys.path.insert(0, str(HERE / "data"))
    from make_store_v3 import build  # the workflow that wrote it

    wf = build(fail=False)
    with SQLiteStore(db) as store:
        assert {r.run_id: r.status for r in store.runs()} == {"done": "succeeded",
                                                              "half": "failed"}
        assert wf.run_sync(store=store, run_id="half")["sizes"] == [5, 6, 7]
        assert store.load("half").restored("files")  # type: ignore[union-attr]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(flowrt.durable._sqlite.SCHEMA_VERSION),)
        # every step ran, from 3: the cache (4), the runs' trace (5), the items (6),
        # packed per batch (7)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"cache", "item_batches"} <= tables and "items" not in tables
        assert "trace" in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    finally:
        conn.close()
    # the migrated store keeps the items of a workflow with a map
    mapped = flowrt.Workflow("fixture3-mapped")
    mapped.add("files", lambda: ["x", "yy"])
    mapped.add("size", lambda name: len(name), map={"name": "files"})
    with SQLiteStore(db) as store:
        assert mapped.run_sync(store=store, run_id="m")["size"] == [1, 2]
        assert store.load("m").item_counts("size") == {"succeeded": 2}  # type: ignore[union-attr]


def _item_rows(db: Path) -> dict[str, dict[str, dict[int, ItemRecord]]]:
    """The ``items`` rows of a store of schema 6, as records: run -> node -> item."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT run_id, node, item, status, attempts, output, error, "
                            "traceback, started, finished FROM items").fetchall()
    finally:
        conn.close()
    records: dict[str, dict[str, dict[int, ItemRecord]]] = {}
    for run_id, *row in rows:
        records.setdefault(run_id, {}).setdefault(row[0], {})[row[1]] = ItemRecord(*row)
    return records


def test_a_store_of_schema_6_has_its_item_rows_packed_and_its_maps_resume(
        tmp_path: Path) -> None:
    """Schema 7 packs item records per batch (docs/decisions/029-item-batches.md): the
    migration turns the rows of schema 6 into batches, every field as it was; a resume
    runs only the items not recorded as succeeded."""
    db = tmp_path / "v6.db"
    shutil.copyfile(FIXTURE_V6, db)
    before = _item_rows(db)
    assert set(before) == {"done", "half", "empty"}
    assert before["half"]["square"][3].status == "failed"
    assert before["half"]["square"][3].traceback
    with SQLiteStore(db) as store:
        for run_id, items in before.items():
            assert store.load(run_id).items == items, run_id  # type: ignore[union-attr]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == ("7",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "item_batches" in tables and "items" not in tables
        assert conn.execute("SELECT count(*) FROM item_batches").fetchone() == (3,)
    finally:
        conn.close()
    sys.path.insert(0, str(HERE / "data"))
    from make_store_v6 import build  # the workflow that wrote it

    result = build(fail=False).run_sync(store=str(db), run_id="half")
    assert result.ok and result["square"] == [{"n": n, "square": n * n} for n in range(6)]
    with SQLiteStore(db) as store:
        after = store.load("half").items["square"]  # type: ignore[union-attr]
        assert after[3].status == "succeeded" and after[3].attempts == 1
        # the others were not run again: their records are the ones of schema 6
        assert {i: r for i, r in after.items() if i != 3} == {
            i: r for i, r in before["half"]["square"].items() if i != 3}
    replayed = build(fail=True).run_sync(store=str(db), run_id="done")
    assert replayed.ok and [i.attempts for i in replayed.items("square")] == [1, 1, 2, 1, 1, 1]


def test_a_damaged_batch_of_item_records_is_reported(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    wf = flowrt.Workflow("w")
    _numbers(wf, [1, 2, 3])
    wf.add("m", lambda n: n, map={"n": "numbers"})
    assert wf.run_sync(store=str(db), run_id="r").ok
    conn = sqlite3.connect(db)
    conn.execute("UPDATE item_batches SET codes = x'0009'")
    conn.commit()
    conn.close()
    with SQLiteStore(db) as store, pytest.raises(flowrt.StoreError,
                                                  match=r"damaged.*item records of node 'm'"):
        store.load("r")


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_in_the_middle_of_a_map_then_resume(shared_kit: StoreKit, tmp_path: Path,
                                                    seed: int) -> None:
    """No item the store recorded as succeeded runs again; the results are right."""
    rng = random.Random(seed)
    log = tmp_path / "starts.log"
    backend = "trio" if seed % 2 else "asyncio"
    shared_kit.make().close()
    proc = start_worker("map_worker.py", shared_kit.spec, "crash", log, backend)
    deadline = time.monotonic() + 30
    while len(starts(log)) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.003)
    time.sleep(rng.uniform(0, 0.06))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader = shared_kit.make()
    stored = reader.load("crash")
    recorded = set()
    if stored is not None:
        for node, records in stored.items.items():
            recorded |= {f"{node}/{i}" for i, r in records.items()
                         if i >= 0 and r.status == "succeeded"}
    rerun = start_worker("map_worker.py", shared_kit.spec, "crash", log, backend)
    _out, err = rerun.communicate(timeout=90)
    assert rerun.returncode == 0, err.decode()
    again = set(starts(log, rerun.pid))
    assert not recorded & again, sorted(recorded & again)
    stored = reader.load("crash")
    assert stored is not None and stored.record.status == "succeeded"
    assert stored.outputs() == map_worker.expected()
    assert stored.item_counts("score") == {"succeeded": map_worker.N}


# -- cancellation ------------------------------------------------------------------------------

_CANCEL_PROGRAM = """
import anyio, flowrt, random

def build():
    wf = flowrt.Workflow("cancel")
    wf.add("numbers", lambda: list(range(40)))

    @wf.map(n="numbers", retry=flowrt.Retry(attempts=4, delay=0.002), limit="slots",
            concurrency=6)
    async def item(n: int) -> int:
        await anyio.sleep(random.uniform(0, 0.004))
        if n % 5 == 0:
            raise ConnectionError(n)  # retries: cancelled while it waits for a retry
        return n

    @wf.map(n="item")
    def after(n: int) -> int:
        return n

    @wf.node
    async def other() -> None:
        await anyio.sleep(random.uniform(0, 0.01))
        if MODE == "fail_fast":
            raise RuntimeError("boom")

    return wf

WF = build()

async def once(trial):
    random.seed(trial)
    if MODE == "outer":
        with anyio.move_on_after(random.uniform(0, 0.02)):
            await WF.run(limits={"slots": 3})
        return
    if MODE == "timeout":
        result = await WF.run(limits={"slots": 3}, timeout=random.uniform(0, 0.02))
    else:
        result = await WF.run(limits={"slots": 3}, fail_fast=True)
    statuses = [i.status for i in result.items("item")]
    assert all(s.final or s is flowrt.Status.PENDING for s in statuses), statuses
    if result.nodes["item"].status is flowrt.Status.CANCELLED and statuses:
        # cancelled while its items ran: each of them is final, or never started
        assert len(statuses) == 40, statuses
    assert result.status is not flowrt.RunStatus.SUCCEEDED or all(
        s is flowrt.Status.SUCCEEDED for s in statuses)

async def main():
    for trial in range(TRIALS):
        await once(trial)

anyio.run(main, backend=BACKEND)
print("ok")
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", ["outer", "timeout", "fail_fast"])
def test_cancelled_while_items_run_hold_slots_or_retry(backend: str, mode: str) -> None:
    """Cancelled by an outer scope, a run timeout or fail_fast, 60 times each: no hang,
    no error, every item final (or never started)."""
    program = f"MODE = {mode!r}\nTRIALS = 60\n" + _CANCEL_PROGRAM
    out = run_program(program, backend=backend, timeout=120)
    assert out.strip().endswith("ok")


_DURABLE_CANCEL = """
import anyio, flowrt, random, sys
from flowrt.durable import ItemRecord, SQLiteStore

calls = []

def build():
    wf = flowrt.Workflow("cancel-durable")
    wf.add("numbers", lambda: list(range(30)))

    @wf.map(n="numbers", concurrency=5)
    async def item(n: int) -> int:
        calls.append(n)
        await anyio.sleep(0.002)
        return n

    return wf

async def main():
    store = SQLiteStore(sys.argv[1] if len(sys.argv) > 1 else PATH)
    wf = build()
    for trial in range(20):
        calls.clear()
        with anyio.move_on_after(random.uniform(0.002, 0.015)):
            await wf.run(store=store, run_id=f"r{trial}")
        stored = store.load(f"r{trial}")
        done = {i for i, r in (stored.items.get("item") or {}).items()
                if i >= 0 and r.status == "succeeded"} if stored else set()
        calls.clear()
        result = await wf.run(store=store, run_id=f"r{trial}")
        assert result.ok and result["item"] == list(range(30)), result
        assert not done & set(calls), (done & set(calls))
    store.close()

anyio.run(main, backend=BACKEND)
print("ok")
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancelled_durable_map_resumes_without_running_recorded_items(
        backend: str, tmp_path: Path) -> None:
    program = f"PATH = {str(tmp_path / 'runs.db')!r}\n" + _DURABLE_CANCEL
    out = run_program(program, backend=backend, timeout=120)
    assert out.strip().endswith("ok")


# -- pictures and tools -------------------------------------------------------------------------


def _pictured() -> flowrt.Workflow:
    wf = flowrt.Workflow("pictured")
    wf.add("files", lambda: [1, 0, 2])
    wf.add("inv", lambda n: 1 / n, map={"n": "files"}, partial=True)
    wf.add("total", lambda inv: len(inv), deps=["inv"])
    return wf


def test_pictures_draw_a_map_as_one_box_with_its_item_counts(tmp_path: Path,
                                                             capsys: Any) -> None:
    wf = _pictured()
    assert 'n1[["inv<br/>map over files"]]' in wf.to_mermaid()
    assert 'shape=box3d, label="inv\\nmap over files"' in wf.to_dot()
    db = tmp_path / "runs.db"
    result = wf.run_sync(store=str(db), run_id="r")
    counts = "2 ok / 1 failed / 0 running"
    assert f'n1[["inv<br/>items: {counts}"]]' in result.to_mermaid()
    assert f"items: {counts}" in result.to_dot()
    assert result.item_counts("inv") == {"succeeded": 2, "failed": 1}
    assert result.to_dict()["nodes"]["inv"]["items"] == {"succeeded": 2, "failed": 1}
    assert result.to_dict()["nodes"]["total"]["items"] is None
    from flowrt.tools import cli, report

    assert counts in report.render(result)
    with SQLiteStore(db) as store:
        stored = store.load("r")
        assert stored is not None
        assert stored.to_dict()["nodes"]["inv"]["items"] == {"succeeded": 2, "failed": 1}
        assert counts in report.render(stored)
    capsys.readouterr()
    assert cli.main(["show", "r", "--store", str(db)]) == 0
    assert f"succeeded (items: {counts})" in capsys.readouterr().out


def test_progress_counts_items_apart_from_nodes() -> None:
    from flowrt.tools._progress import RunProgress

    wf = _pictured()
    progress = RunProgress("pictured", "r", 3, time.time())
    wf.run_sync(on_event=progress.apply)
    assert progress.done == 3 and progress.items_running == 0
    assert progress.item_counts == {"succeeded": 2, "failed": 1}
    assert progress.summary() == ("3 nodes: 3 succeeded; 3 items of maps: 2 succeeded, "
                                  "1 failed")
    assert progress.errors == [("inv[1]", "ZeroDivisionError: division by zero")]
