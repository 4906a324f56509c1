"""Leaving ``async with Runtime(...)`` while runs are in flight (docs/embedding.md).

The runtime stops accepting runs, gives the runs in flight ``shutdown_grace`` seconds,
then stops them as a run timeout would (they return CANCELLED results, recorded so in
the store), waits for them, and only then closes its store and executors. Regression
tests for issue 11, item 4: before, the runs failed with "the store is closed" and
stayed ``running`` in the store.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path

import anyio
import pytest
from subproc import run_program

import flowrt
from flowrt import RunStatus, Status

pytestmark = pytest.mark.anyio


def _slow_workflow(seconds: float = 30) -> tuple[flowrt.Workflow, dict[str, float]]:
    """first -> slow -> last, and the dict that says how long slow sleeps."""
    wf = flowrt.Workflow("slow")
    delay = {"slow": seconds}

    @wf.node
    async def first() -> int:
        return 1

    @wf.node
    async def slow(first: int) -> int:
        await anyio.sleep(delay["slow"])
        return first + 1

    @wf.node
    def last(slow: int) -> int:
        return slow + 1

    return wf, delay


def _stored_status(path: Path, run_id: str) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        (status,) = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        conn.close()
    return str(status)


async def test_runs_in_flight_are_cancelled_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    wf, delay = _slow_workflow()
    results: dict[str, flowrt.RunResult] = {}

    async def one(rt: flowrt.Runtime, run_id: str) -> None:
        results[run_id] = await rt.run(wf, run_id=run_id)

    start = time.monotonic()
    async with anyio.create_task_group() as tg, flowrt.Runtime(store=str(path)) as rt:
        for k in range(3):
            tg.start_soon(one, rt, f"r{k}")
        await anyio.sleep(0.2)
    assert time.monotonic() - start < 5
    assert sorted(results) == ["r0", "r1", "r2"]
    for run_id, result in results.items():
        assert result.status is RunStatus.CANCELLED
        assert result["first"] == 1
        assert result.nodes["slow"].status is Status.CANCELLED
        assert result.nodes["last"].status is Status.CANCELLED
        assert _stored_status(path, run_id) == "cancelled"

    # and they resume
    delay["slow"] = 0
    resumed = await wf.run(store=str(path), run_id="r0")
    assert resumed.ok and resumed["last"] == 3
    assert resumed.nodes["first"].attempts == 1


async def test_a_new_run_is_refused_once_the_block_is_left() -> None:
    wf, _ = _slow_workflow(0)
    async with flowrt.Runtime() as rt:
        assert (await rt.run(wf)).ok
    with pytest.raises(RuntimeError, match="closed"):
        await rt.run(wf)


async def test_runs_get_the_grace_period_to_finish() -> None:
    wf, _ = _slow_workflow(0.2)
    results: list[flowrt.RunResult] = []

    async def one(rt: flowrt.Runtime) -> None:
        results.append(await rt.run(wf))

    start = time.monotonic()
    async with anyio.create_task_group() as tg, flowrt.Runtime(shutdown_grace=10) as rt:
        tg.start_soon(one, rt)
        tg.start_soon(one, rt)
        await anyio.sleep(0.01)
    assert time.monotonic() - start < 5  # it waited for the runs, not the whole grace
    assert [r.status for r in results] == [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED]
    assert results[0]["last"] == 3


async def test_runs_that_outlast_the_grace_period_are_cancelled() -> None:
    wf, _ = _slow_workflow(30)
    results: list[flowrt.RunResult] = []

    async def one(rt: flowrt.Runtime) -> None:
        results.append(await rt.run(wf))

    start = time.monotonic()
    async with anyio.create_task_group() as tg, flowrt.Runtime(shutdown_grace=0.3) as rt:
        tg.start_soon(one, rt)
        await anyio.sleep(0.01)
    assert 0.25 < time.monotonic() - start < 5
    assert results[0].status is RunStatus.CANCELLED


async def test_leaving_the_block_by_cancellation_still_records_the_runs(tmp_path: Path
                                                                        ) -> None:
    path = tmp_path / "runs.db"
    wf, _ = _slow_workflow()
    results: list[flowrt.RunResult] = []

    async def one(rt: flowrt.Runtime) -> None:
        results.append(await rt.run(wf, run_id="bg"))

    async with anyio.create_task_group() as tg:  # the run's task is not cancelled...
        with anyio.move_on_after(0.3) as outer:  # ...but the runtime's block is
            async with flowrt.Runtime(store=str(path), shutdown_grace=None) as rt:
                tg.start_soon(one, rt)
                await anyio.sleep(30)
    assert outer.cancelled_caught  # and that cuts the (unbounded) grace period short
    assert results and results[0].status is RunStatus.CANCELLED
    assert _stored_status(path, "bg") == "cancelled"


async def test_a_run_waiting_for_a_shared_limit_is_cancelled_too() -> None:
    wf = flowrt.Workflow("limited")

    @wf.node(limit="one")
    async def hold() -> None:
        await anyio.sleep(30)

    results: list[flowrt.RunResult] = []

    async def one(rt: flowrt.Runtime) -> None:
        results.append(await rt.run(wf))

    async with anyio.create_task_group() as tg, flowrt.Runtime(limits={"one": 1}) as rt:
        tg.start_soon(one, rt)
        tg.start_soon(one, rt)  # waits for the slot
        await anyio.sleep(0.1)
    assert [r.status for r in results] == [RunStatus.CANCELLED, RunStatus.CANCELLED]
    assert rt._limits["one"].in_use == 0 and not rt._limits["one"].waiters


async def test_shutdown_grace_must_be_seconds() -> None:
    for bad in (-1, "5", True):
        with pytest.raises(ValueError, match="shutdown_grace"):
            flowrt.Runtime(shutdown_grace=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_shutdown_with_many_durable_runs_in_flight_never_hangs(backend: str,
                                                               tmp_path: Path) -> None:
    # 30 shutdowns, each with 20 durable runs at various stages (opening, running nodes,
    # writing checkpoints): none hangs, none fails, none stays 'running' in the store.
    # Before the fix every trial failed with "the store ... is closed".
    out = run_program(f'''
        import random
        import sqlite3
        import anyio
        import flowrt

        wf = flowrt.Workflow("many")
        for i in range(30):
            async def node(*_, i=i):
                await anyio.sleep(0.001 * (i % 4))
                return i
            wf.add(f"n{{i}}", node, deps=[f"n{{i - 1}}"] if i else [])

        async def main():
            rng = random.Random(3)
            path = {str(tmp_path / "many.db")!r}
            for trial in range(30):
                results = []

                async def one(rt, run_id):
                    results.append(await rt.run(wf, run_id=run_id))

                async with anyio.create_task_group() as tg:
                    async with flowrt.Runtime(store=path) as rt:
                        for k in range(20):
                            tg.start_soon(one, rt, f"t{{trial}}-{{k}}")
                        await anyio.sleep(rng.uniform(0, 0.05))
                assert len(results) == 20, len(results)
                assert {{str(r.status) for r in results}} <= {{"succeeded", "cancelled"}}
            conn = sqlite3.connect(path)
            left = conn.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()
            assert left == (0,), left
            print("ok")

        anyio.run(main, backend=BACKEND)
    ''', backend=backend, timeout=120)
    assert out.strip() == "ok"


async def test_a_workers_run_stopped_by_the_shutdown_goes_back_to_the_queue(
        tmp_path: Path) -> None:
    # serve() running in a task that outlives the runtime's block: its run is counted
    # in flight, stopped, and handed back to the queue for another worker.
    path = tmp_path / "runs.db"
    wf, _ = _slow_workflow()
    started = anyio.Event()

    @wf.node
    async def mark() -> None:  # a root, so it runs early
        started.set()

    async with anyio.create_task_group() as tg:
        async with flowrt.Runtime(store=str(path), workflows=[wf]) as rt:
            await rt.submit(wf, run_id="queued-1")
            tg.start_soon(functools.partial(rt.serve, poll=0.05))
            with anyio.fail_after(10):
                await started.wait()
            await anyio.sleep(0.1)
        tg.cancel_scope.cancel()  # the worker loop itself stops here
    assert _stored_status(path, "queued-1") == "queued"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_runtime_left_by_cancellation_still_closes_its_process_executor(
        backend: str) -> None:
    # The runtime's block is cancelled from outside while a node runs in the process
    # executor the runtime made (executor="process"): the run ends CANCELLED, and
    # closing that executor is shielded from the cancellation (no leaked worker
    # processes once the worker running for nobody is killed, no hang). 6 trials per
    # backend, at different moments.
    out = run_program('''
        import multiprocessing
        import time
        import anyio
        import flowrt
        import remote_tasks

        wf = flowrt.Workflow("proc")
        wf.add("s", lambda: 0.5, executor="loop")
        wf.add("slow", remote_tasks.sleep_then, deps={"seconds": "s"}, executor="process")

        async def main():
            for trial in range(6):
                results = []
                with anyio.move_on_after(0.2 + 0.1 * (trial % 3)) as scope:
                    async with flowrt.Runtime() as rt:
                        results.append(await rt.run(wf))
                assert scope.cancelled_caught, trial
                assert not results, results
                for _ in range(100):  # the worker running for nobody is killed, then reaped
                    if not multiprocessing.active_children():
                        break
                    time.sleep(0.05)
                assert multiprocessing.active_children() == [], trial
            print("ok")

        anyio.run(main, backend=BACKEND)
    ''', backend=backend, timeout=120)
    assert out.strip() == "ok"
