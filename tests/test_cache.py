"""Cached nodes: keys (arguments, version, key functions), ttl on the fake clock, refresh,
what is never cached, unhashable arguments, and the cache in every store -- in memory,
SQLite (across processes) and PostgreSQL.

Runtime tests run on both anyio backends (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from stores import StoreKit
from subproc import run_program

import flowrt
from flowrt import Cache, RunStatus, Status
from flowrt._engine.cache import Unhashable, cache_key, canonical, code_version
from flowrt.testing import FakeClock

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


def _counted(calls: list[Any], cache: Cache | None = None) -> flowrt.Workflow:
    wf = flowrt.Workflow("cached")

    @wf.node(cache=cache or Cache())
    def square(x: Any) -> Any:
        calls.append(x)
        return {"x": x, "n": len(calls)}

    @wf.node
    def after(square: Any) -> Any:
        return square["x"]

    return wf


# -- keys ---------------------------------------------------------------------------------


def test_equal_values_hash_equal_whatever_the_order_of_dicts_and_sets() -> None:
    def key(value: Any) -> str:
        return cache_key("n", "v", canonical(value))

    assert key({"a": 1, "b": {2, 3, 1}}) == key({"b": {1, 3, 2}, "a": 1})
    assert key({1: "x", "1": "y"}) == key({"1": "y", 1: "x"})
    assert key(frozenset({"a", "b"})) == key({"b", "a"})
    assert key([1, 2]) != key([2, 1])  # a list's order counts
    assert key((1, 2)) == key([1, 2])  # JSON: a tuple is a list
    assert key({"a": 1}) != key({"a": 2})
    assert key(float("nan")) == key(float("nan"))

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    assert key(Point(1, 2)) == key(Point(1, 2)) != key(Point(2, 1))
    with pytest.raises(Unhashable, match="object has no JSON form"):
        canonical({"a": [object()]})
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(Unhashable, match="contains itself"):
        canonical(loop)


def test_code_version_follows_the_code() -> None:
    def f(x: int) -> int:
        return x + 1

    def g(x: int) -> int:
        return x + 2

    assert code_version(f) == code_version(f)
    assert code_version(f) != code_version(g)


async def test_a_hit_ends_cached_with_the_same_output_and_runs_nothing() -> None:
    calls: list[Any] = []
    wf = _counted(calls)
    events: list[tuple[str, str | None]] = []
    async with flowrt.Runtime() as rt:
        first = await rt.run(wf, {"x": {"k": [1, 2], "s": {1, 2}}})
        second = await rt.run(wf, {"x": {"s": {2, 1}, "k": [1, 2]}},
                              on_event=lambda e: events.append((str(e.kind), e.node)))
        assert first.statuses()["square"] is Status.SUCCEEDED
        assert second.statuses() == {"square": Status.CACHED, "after": Status.SUCCEEDED}
        assert second.ok and second["square"] == first["square"]
        assert second.outputs["square"] == first["square"] and len(second.outputs) == 2
        assert second.nodes["square"].attempts == 0
        assert second.counts() == {"succeeded": 1, "cached": 1}
        assert ("cached", "square") in events and ("started", "square") not in events
        assert len(calls) == 1
        # other arguments: a miss
        third = await rt.run(wf, {"x": {"k": [2, 1], "s": {1, 2}}})
        assert third.statuses()["square"] is Status.SUCCEEDED and len(calls) == 2


async def test_a_new_version_misses_and_a_pinned_one_hits() -> None:
    calls: list[int] = []

    def build(version: str | None, bump: int) -> flowrt.Workflow:
        wf = flowrt.Workflow("versions")
        if bump:
            def compute(x: int) -> int:
                calls.append(x)
                return x * 10
        else:
            def compute(x: int) -> int:
                calls.append(x)
                return x * 100
        wf.add("compute", compute, cache=Cache(version=version))
        return wf

    async with flowrt.Runtime() as rt:
        assert (await rt.run(build(None, 0), {"x": 1}))["compute"] == 100
        assert (await rt.run(build(None, 1), {"x": 1}))["compute"] == 10  # new code
        assert len(calls) == 2
        assert (await rt.run(build("v1", 0), {"x": 1}))["compute"] == 100
        pinned = await rt.run(build("v1", 1), {"x": 1})  # same version: a hit
        assert pinned.statuses()["compute"] is Status.CACHED and pinned["compute"] == 100
        assert len(calls) == 3


async def test_ttl_runs_on_the_runtimes_clock() -> None:
    calls: list[Any] = []
    wf = _counted(calls, Cache(ttl=60))
    clock = FakeClock()
    async with flowrt.Runtime(clock=clock) as rt:
        await rt.run(wf, {"x": 1})
        clock.advance(59)
        assert (await rt.run(wf, {"x": 1})).statuses()["square"] is Status.CACHED
        clock.advance(1)
        assert (await rt.run(wf, {"x": 1})).statuses()["square"] is Status.SUCCEEDED
        assert len(calls) == 2
        assert (await rt.run(wf, {"x": 1})).statuses()["square"] is Status.CACHED


async def test_refresh_recomputes_and_replaces() -> None:
    calls: list[Any] = []
    wf = _counted(calls)
    async with flowrt.Runtime() as rt:
        first = await rt.run(wf, {"x": 1})
        fresh = await rt.run(wf, {"x": 1}, refresh=True)
        assert fresh.statuses()["square"] is Status.SUCCEEDED
        assert fresh["square"] == {"x": 1, "n": 2} != first["square"]
        after = await rt.run(wf, {"x": 1})
        assert after.statuses()["square"] is Status.CACHED
        assert after["square"] == {"x": 1, "n": 2}  # the replaced entry


async def test_a_failed_node_is_never_cached() -> None:
    calls: list[int] = []
    wf = flowrt.Workflow("fails")

    @wf.node(cache=Cache(), retries=1)
    def boom(x: int) -> int:
        calls.append(x)
        raise ValueError("no")

    async with flowrt.Runtime() as rt:
        for _ in range(2):
            result = await rt.run(wf, {"x": 1})
            assert result.status is RunStatus.FAILED
    assert len(calls) == 4  # two attempts per run, nothing ever read from the cache


async def test_resources_and_context_are_never_part_of_the_key() -> None:
    calls: list[int] = []
    wf = flowrt.Workflow("res")

    @wf.node(cache=Cache())
    def fetch(x: int, http: object, ctx: flowrt.Context) -> int:
        calls.append(x)
        return x

    async with flowrt.Runtime() as rt:
        await rt.run(wf, {"x": 1}, resources={"http": object()})
        again = await rt.run(wf, {"x": 1}, resources={"http": object()})
        assert again.statuses()["fetch"] is Status.CACHED and calls == [1]


async def test_a_key_function_replaces_the_arguments_hash() -> None:
    calls: list[str] = []
    wf = flowrt.Workflow("keyed")

    @wf.node(cache=Cache(key=lambda args: args["url"].lower()))
    def fetch(url: str, attempt_note: str) -> str:
        calls.append(url)
        return url

    async with flowrt.Runtime() as rt:
        await rt.run(wf, {"url": "HTTP://A", "attempt_note": "1"})
        hit = await rt.run(wf, {"url": "http://a", "attempt_note": "2"})
        assert hit.statuses()["fetch"] is Status.CACHED and hit["fetch"] == "HTTP://A"
        assert calls == ["HTTP://A"]


async def test_an_unhashable_input_fails_the_run_before_any_node_starts() -> None:
    started: list[str] = []
    wf = flowrt.Workflow("unhashable")
    wf.add("first", lambda: started.append("first"))

    @wf.node(cache=Cache())
    def load(first: Any, config: dict[str, Any]) -> int:
        return 1

    async with flowrt.Runtime() as rt:
        with pytest.raises(flowrt.CacheKeyError) as info:
            await rt.run(wf, {"config": {"handler": object()}})
        assert info.value.node == "load" and info.value.parameter == "config"
        assert "node 'load': argument 'config'" in str(info.value)
        assert started == []



async def test_an_unhashable_input_leaves_no_trace_in_the_store(store_kit: StoreKit) -> None:
    wf = _counted([])
    store = store_kit.make()
    async with flowrt.Runtime(store=store, workflows=[wf]) as rt:
        with pytest.raises(flowrt.CacheKeyError, match="argument 'x'"):
            await rt.run(wf, {"x": {"f": len}}, run_id="refused")
        with pytest.raises(flowrt.CacheKeyError, match="argument 'x'"):
            await rt.submit(wf, {"x": [len]}, run_id="refused-too")
    assert store.runs() == []


async def test_an_unhashable_output_fails_the_cached_node_it_feeds_without_retry() -> None:
    wf = flowrt.Workflow("unhashable-dep")
    wf.add("make", lambda: object())
    calls: list[int] = []

    @wf.node(cache=Cache(), retries=3)
    def use(make: object) -> int:
        calls.append(1)
        return 1

    async with flowrt.Runtime() as rt:
        result = await rt.run(wf)
    assert result.statuses()["use"] is Status.FAILED and calls == []
    error = result.errors["use"]
    assert isinstance(error, flowrt.CacheKeyError) and error.parameter == "make"
    assert result.nodes["use"].attempts == 1


async def test_bad_cache_options_are_refused() -> None:
    with pytest.raises(ValueError, match="ttl"):
        Cache(ttl=0)
    with pytest.raises(TypeError, match="key"):
        Cache(key="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="version"):
        Cache(version=2)  # type: ignore[arg-type]
    wf = flowrt.Workflow("w")
    with pytest.raises(flowrt.GraphError, match=r"must be a flowrt\.Cache"):
        wf.add("a", lambda: 1, cache=True)
    with pytest.raises(TypeError, match="did you mean cache="):
        wf.add("a", lambda: 1, cahce=Cache())


async def test_a_cached_node_that_waited_for_a_slot_gives_it_back() -> None:
    """Run B's node misses, then waits for the limit's only slot while run A's node
    computes the same key; handed the slot, it runs (it looked up once) and the slot
    comes back: a hit there would have kept it."""
    import anyio

    gate = anyio.Event()
    calls: list[int] = []
    wf = flowrt.Workflow("slot")

    @wf.node(cache=Cache(), limit="one")
    async def work(x: int) -> int:
        calls.append(x)
        await gate.wait()
        return x

    async with flowrt.Runtime(limits={"one": 1}) as rt:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, {"x": 1}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(run)
            while rt.limit_usage()["one"].waiting < 1:
                await anyio.sleep(0.005)
            gate.set()
        assert all(r.ok and r["work"] == 1 for r in results)
        assert rt.limit_usage()["one"] == flowrt.LimitUsage(1, 0, 0)
        again = await rt.run(wf, {"x": 1})
        assert again.statuses()["work"] is Status.CACHED
        assert rt.limit_usage()["one"] == flowrt.LimitUsage(1, 0, 0)


# -- in a store ---------------------------------------------------------------------------


def test_every_store_keeps_cached_outputs(store_kit: StoreKit) -> None:
    store = store_kit.make()
    assert store.get_cached("k", 100.0) is None
    store.put_cached("k", b"1", "json", 100.0, 160.0)
    store.put_cached("forever", b"[2]", "json", 100.0, None)
    store.flush()
    assert store.get_cached("k", 159.0) == (b"1", "json")
    assert store.get_cached("k", 160.0) is None  # expired
    store.put_cached("k", b"3", "json", 200.0, None)  # replaced
    store.flush()
    assert store.get_cached("k", 10_000.0) == (b"3", "json")
    assert store.get_cached("forever", 1e12) == (b"[2]", "json")
    assert store.clear_cache() == 2
    assert store.get_cached("forever", 0.0) is None


def test_every_store_sweeps_expired_entries(store_kit: StoreKit) -> None:
    """Expired entries are never returned, but they stayed in the table for ever before
    ``prune_cache`` (decision 021 said so); it deletes exactly those."""
    store = store_kit.make()
    store.put_cached("old", b"1", "json", 100.0, 160.0)
    store.put_cached("due-now", b"2", "json", 100.0, 200.0)
    store.put_cached("later", b"3", "json", 100.0, 300.0)
    store.put_cached("forever", b"4", "json", 100.0, None)
    assert store.prune_cache(200.0) == 2  # SQLite: entries still queued are swept too
    assert store.get_cached("later", 200.0) == (b"3", "json")
    assert store.get_cached("forever", 200.0) == (b"4", "json")
    assert store.prune_cache(200.0) == 0
    assert store.prune_cache(1e12) == 1  # 'forever' never expires
    assert store.get_cached("forever", 1e12) == (b"4", "json")
    assert store.clear_cache() == 1


@pytest.mark.parametrize("with_store", [False, True])
async def test_a_runtime_prunes_on_its_own_clock(with_store: bool, tmp_path: Path) -> None:
    calls: list[Any] = []
    wf = _counted(calls, Cache(ttl=60))
    clock = FakeClock(1000.0)
    store = str(tmp_path / "c.db") if with_store else None
    async with flowrt.Runtime(clock=clock, store=store) as rt:
        await rt.run(wf, {"x": 1})
        await rt.run(wf, {"x": 2})
        clock.advance(30)
        await rt.run(wf, {"x": 3})
        assert await rt.prune_cache() == 0
        clock.advance(40)  # x=1 and x=2 expired at 1060, x=3 expires at 1090
        assert await rt.prune_cache() == 2
        again = await rt.run(wf, {"x": 3})
        assert again.statuses()["square"] is Status.CACHED and len(calls) == 3
    with pytest.raises(RuntimeError, match="async with"):
        await rt.prune_cache()


def test_the_cli_prunes_and_clears_a_stores_cache(tmp_path: Path) -> None:
    import time

    path = tmp_path / "c.db"
    with flowrt.SQLiteStore(path) as store:
        now = time.time()
        store.put_cached("gone", b"1", "json", now - 100, now - 1)
        store.put_cached("kept", b"2", "json", now, now + 3600)
    out = run_program(f"""
        from flowrt.tools import cli
        cli.main(["cache", "prune", "--store", {str(path)!r}])
        cli.main(["cache", "prune", "--store", {str(path)!r}])
        cli.main(["cache", "clear", "--store", {str(path)!r}])
        print(cli.main(["cache", "prune", "--store", {str(path / "missing.db")!r}]))
    """, timeout=60)
    assert out.splitlines() == ["1 expired cache entry deleted",
                                "0 expired cache entries deleted",
                                "1 cache entry deleted", "2"]


async def test_durable_runs_read_the_stores_cache_and_record_cached_nodes(
        store_kit: StoreKit) -> None:
    calls: list[Any] = []
    wf = _counted(calls)
    store = store_kit.make()
    async with flowrt.Runtime(store=store) as rt:
        first = await rt.run(wf, {"x": [1, {"a": 2}]}, run_id="one")
        second = await rt.run(wf, {"x": [1, {"a": 2}]}, run_id="two")
    assert first["square"] == second["square"] == {"x": [1, {"a": 2}], "n": 1}
    assert second.statuses()["square"] is Status.CACHED and len(calls) == 1
    stored = store.load("two")
    assert stored is not None and stored.nodes["square"].status == "cached"
    assert stored.outputs()["square"] == {"x": [1, {"a": 2}], "n": 1}
    # run "two" again: its stored result, nothing runs
    async with flowrt.Runtime(store=store) as rt:
        replay = await rt.run(wf, run_id="two")
    assert replay.ok and replay["after"] == [1, {"a": 2}] and len(calls) == 1


async def test_typed_outputs_come_back_typed_from_a_stores_cache(store_kit: StoreKit) -> None:
    @dataclasses.dataclass
    class Total:
        amount: int

    wf = flowrt.Workflow("typed")

    @wf.node(cache=Cache())
    def total(x: int) -> Total:
        return Total(x)

    store = store_kit.make()
    async with flowrt.Runtime(store=store) as rt:
        await rt.run(wf, {"x": 3}, run_id="a")
        hit = await rt.run(wf, {"x": 3}, run_id="b")
    assert hit.statuses()["total"] is Status.CACHED and hit["total"] == Total(3)


def test_the_cache_outlives_the_process_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    program = f"""
        import json, anyio, flowrt

        wf = flowrt.Workflow("across")

        @wf.node(cache=flowrt.Cache(version="1"))
        def expensive(n: int) -> dict:
            print("RAN")
            return {{"n": n, "square": n * n}}

        async def main():
            async with flowrt.Runtime(store={str(db)!r}) as rt:
                result = await rt.run(wf, {{"n": 12}})
                print(json.dumps([str(result.statuses()["expensive"]), result["expensive"]]))

        anyio.run(main, backend=BACKEND)
    """
    first = run_program(program, timeout=60)
    second = run_program(program, backend="trio", timeout=60)
    assert "RAN" in first and "RAN" not in second
    assert json.loads(first.strip().splitlines()[-1]) == ["succeeded", {"n": 12, "square": 144}]
    assert json.loads(second.strip().splitlines()[-1]) == ["cached", {"n": 12, "square": 144}]


async def test_a_store_of_schema_3_gains_the_cache_and_its_runs_resume(tmp_path: Path) -> None:
    """tests/data/store-v3.db: written by flowrt before caching (a run 'old' of workflow
    'chain', n0 -> n1, succeeded)."""
    db = tmp_path / "v3.db"
    shutil.copyfile(HERE / "data" / "store-v3.db", db)
    wf = flowrt.Workflow("chain")
    wf.add("n0", lambda: 1, cache=Cache(version="1"))
    wf.add("n1", lambda n0: n0 + 1)
    async with flowrt.Runtime(store=str(db)) as rt:
        old = await rt.run(wf, run_id="old")
        assert old.ok and old["n1"] == 2
        await rt.run(wf, run_id="new")
        cached = await rt.run(wf, run_id="newer")
        assert cached.statuses()["n0"] is Status.CACHED
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(flowrt.durable._sqlite.SCHEMA_VERSION),)
        assert conn.execute("SELECT count(*) FROM cache").fetchone() == (1,)
    finally:
        conn.close()


# -- what the tools show ------------------------------------------------------------------


def test_progress_show_and_report_tell_cached_nodes(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from flowrt.tools import report
    from flowrt.tools._progress import RunProgress
    from flowrt.tools.cli import main
    from flowrt.tools.viz import COLOURS

    db = str(tmp_path / "runs.db")
    wf = _counted([])
    wf.run_sync({"x": 5}, store=db, run_id="first")
    progress = RunProgress("cached", "second", 2, 0.0)
    result = wf.run_sync({"x": 5}, store=db, run_id="second", on_event=progress.apply)
    assert result.statuses()["square"] is Status.CACHED
    assert progress.summary() == "2 nodes: 1 succeeded, 1 cached"

    capsys.readouterr()
    assert main(["show", "second", "--store", db]) == 0
    out = capsys.readouterr().out
    assert "1 succeeded" in out and "1 cached" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[6:] if line}
    assert rows["square"][1:3] == ["cached", "0"]

    page = report.render(result)
    assert "cached" in page and COLOURS[Status.CACHED] in page
    with flowrt.SQLiteStore(db) as store:
        stored = store.load("second")
        assert stored is not None
        assert "cached" in report.render(stored)


# -- with branches --


async def test_a_cached_branch_applies_its_stored_choice() -> None:
    calls: list[str] = []
    wf = flowrt.Workflow("route")

    @wf.node(branch=True, cache=Cache())
    def route(kind: str) -> str:
        calls.append(kind)
        return "big" if kind == "large" else "small"

    wf.add("big", lambda route: "B")
    wf.add("small", lambda route: "S")
    async with flowrt.Runtime() as rt:
        first = await rt.run(wf, {"kind": "large"})
        second = await rt.run(wf, {"kind": "large"})
    assert calls == ["large"]
    assert second.statuses() == {"route": Status.CACHED, "big": Status.SUCCEEDED,
                                 "small": Status.BYPASSED}
    assert first["big"] == second["big"] == "B" and second.ok
