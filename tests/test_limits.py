"""Concurrency limits: max_concurrency, named limits, a Runtime shared by runs."""

from __future__ import annotations

import time

import anyio
import pytest
from gauge import Gauge

import flowrt

pytestmark = pytest.mark.anyio


async def test_max_concurrency_caps_running_nodes() -> None:
    wf = flowrt.Workflow("cap")
    gauge = Gauge()
    for i in range(30):

        async def work() -> None:
            gauge.enter("all")
            await anyio.sleep(0.005)
            gauge.leave("all")

        wf.add(f"n{i}", work)
    result = await wf.run(max_concurrency=4)
    assert result.ok
    assert gauge.peak["all"] == 4


async def test_named_limits_cap_their_nodes_only() -> None:
    wf = flowrt.Workflow("named")
    gauge = Gauge()
    for i in range(12):

        async def api() -> None:
            gauge.enter("api", "all")
            await anyio.sleep(0.005)
            gauge.leave("api", "all")

        async def free() -> None:
            gauge.enter("free", "all")
            await anyio.sleep(0.005)
            gauge.leave("free", "all")

        wf.add(f"api{i}", api, limit="api")
        wf.add(f"free{i}", free)
    result = await wf.run(limits={"api": 3})
    assert result.ok
    assert gauge.peak["api"] == 3
    assert gauge.peak["free"] == 12


async def test_named_limit_and_max_concurrency_together() -> None:
    wf = flowrt.Workflow("both")
    gauge = Gauge()
    for i in range(20):

        async def db() -> None:
            gauge.enter("db", "all")
            await anyio.sleep(0.003)
            gauge.leave("db", "all")

        async def other() -> None:
            gauge.enter("all")
            await anyio.sleep(0.003)
            gauge.leave("all")

        wf.add(f"db{i}", db, limit="db")
        wf.add(f"o{i}", other)
    result = await wf.run(max_concurrency=5, limits={"db": 2})
    assert result.ok
    assert gauge.peak["db"] == 2
    assert gauge.peak["all"] == 5


async def test_undefined_limit_name_is_unlimited() -> None:
    wf = flowrt.Workflow("undefined")
    gauge = Gauge()
    for i in range(6):

        async def work() -> None:
            gauge.enter("x")
            await anyio.sleep(0.005)
            gauge.leave("x")

        wf.add(f"n{i}", work, limit="nobody-defines-me")
    assert (await wf.run()).ok
    assert gauge.peak["x"] == 6


async def test_limits_apply_to_sync_nodes_in_threads() -> None:
    wf = flowrt.Workflow("threads")
    gauge = Gauge()
    for i in range(10):

        def work() -> None:
            gauge.enter("t")
            time.sleep(0.01)
            gauge.leave("t")

        wf.add(f"n{i}", work, limit="cpu")
    assert (await wf.run(limits={"cpu": 2})).ok
    assert gauge.peak["t"] == 2


async def test_limit_slot_freed_on_failure_and_retry() -> None:
    wf = flowrt.Workflow("release")
    gauge = Gauge()
    for i in range(6):

        async def flaky(ctx: flowrt.Context) -> None:
            gauge.enter("l")
            await anyio.sleep(0.002)
            gauge.leave("l")
            if ctx.attempt == 1:
                raise ConnectionError

        wf.add(f"n{i}", flaky, limit="l", retry=flowrt.Retry(attempts=2, delay=0.001))
    result = await wf.run(limits={"l": 2})
    assert result.ok and gauge.peak["l"] == 2


async def test_runtime_limits_are_shared_across_concurrent_runs() -> None:
    gauge = Gauge()

    def make(name: str) -> flowrt.Workflow:
        wf = flowrt.Workflow(name)
        for i in range(8):

            async def pay() -> None:
                gauge.enter("payments")
                await anyio.sleep(0.005)
                gauge.leave("payments")

            wf.add(f"pay{i}", pay, limit="payments")
        return wf

    workflows = [make(f"wf{k}") for k in range(4)]
    results: list[flowrt.RunResult] = []
    async with flowrt.Runtime(limits={"payments": 3}) as rt, anyio.create_task_group() as tg:
        for wf in workflows:

            async def one(wf: flowrt.Workflow = wf) -> None:
                results.append(await rt.run(wf))

            tg.start_soon(one)
    assert len(results) == 4 and all(r.ok for r in results)
    assert gauge.peak["payments"] == 3


async def test_runtime_max_concurrency_is_shared() -> None:
    gauge = Gauge()

    def make(name: str) -> flowrt.Workflow:
        wf = flowrt.Workflow(name)
        for i in range(10):

            async def work() -> None:
                gauge.enter("all")
                await anyio.sleep(0.003)
                gauge.leave("all")

            wf.add(f"n{i}", work)
        return wf

    async with flowrt.Runtime(max_concurrency=4) as rt, anyio.create_task_group() as tg:
        for k in range(3):
            tg.start_soon(rt.run, make(f"w{k}"))
    assert gauge.peak["all"] == 4


async def test_run_limit_overrides_runtime_limit_of_same_name() -> None:
    gauge = Gauge()
    wf = flowrt.Workflow("override")
    for i in range(8):

        async def work() -> None:
            gauge.enter("l")
            await anyio.sleep(0.003)
            gauge.leave("l")

        wf.add(f"n{i}", work, limit="l")
    async with flowrt.Runtime(limits={"l": 4}) as rt:
        assert (await rt.run(wf, limits={"l": 1})).ok
    assert gauge.peak["l"] == 1


async def test_io_bound_nodes_scale_with_the_limit() -> None:
    # 64 nodes sleeping 20 ms under max_concurrency=16: ~80 ms, far from 64 * 20 ms.
    wf = flowrt.Workflow("scale")
    for i in range(64):

        async def io() -> None:
            await anyio.sleep(0.02)

        wf.add(f"n{i}", io)
    start = time.monotonic()
    assert (await wf.run(max_concurrency=16)).ok
    assert time.monotonic() - start < 0.6


async def test_cancelled_run_gives_every_shared_slot_back() -> None:
    wf = flowrt.Workflow("hog")
    for i in range(20):

        async def slow() -> None:
            await anyio.sleep(0.02)

        wf.add(f"n{i}", slow, limit="l")
    async with flowrt.Runtime(limits={"l": 2}) as rt:
        first = await rt.run(wf, timeout=0.05)  # cancelled with nodes waiting and running
        assert first.status is flowrt.RunStatus.CANCELLED
        assert rt._limits["l"].in_use == 0 and not rt._limits["l"].waiters
        second = await rt.run(wf)
        assert second.ok
        assert rt._limits["l"].in_use == 0
