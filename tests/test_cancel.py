"""Cancellation: from an enclosing cancel scope, by run timeout; nothing left behind."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
import sniffio
from subproc import run_program

import flowrt
from flowrt import RunStatus, Status

pytestmark = pytest.mark.anyio


def _tasks() -> int:
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return len(asyncio.all_tasks())
    import trio

    return len(trio.lowlevel.current_root_task().child_nurseries[0].child_tasks)


def _sleepy_workflow(n: int, seconds: float = 30) -> tuple[flowrt.Workflow, list[str]]:
    wf = flowrt.Workflow("sleepy")
    finished: list[str] = []
    for i in range(n):

        async def sleeper(name: str = f"s{i}") -> None:
            await anyio.sleep(seconds)
            finished.append(name)

        wf.add(f"s{i}", sleeper)
    wf.add("sink", lambda: None, after=[f"s{i}" for i in range(n)])
    return wf, finished


async def test_enclosing_cancel_scope_cancels_every_running_node() -> None:
    wf, finished = _sleepy_workflow(20)
    data = flowrt.WorkflowData()
    events: list[flowrt.Event] = []
    before = _tasks()
    start = time.monotonic()
    with anyio.move_on_after(0.1) as scope:
        await wf.run(data=data, on_event=events.append)
    assert scope.cancelled_caught
    assert time.monotonic() - start < 2
    assert finished == []
    statuses = data.node_statuses()
    assert set(statuses.values()) == {Status.CANCELLED}
    assert len(statuses) == 21
    assert sum(1 for e in events if e.kind is flowrt.EventKind.CANCELLED) == 21
    await anyio.sleep(0.01)
    assert _tasks() == before  # no runner task left behind


async def test_cancellation_propagates_as_anyio_does() -> None:
    wf, _ = _sleepy_workflow(3)
    cancelled = anyio.get_cancelled_exc_class()
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                try:
                    await wf.run()
                except cancelled:
                    seen.append("cancelled")
                    raise

            seen: list[str] = []
            tg.start_soon(run)
            await anyio.sleep(0.05)
            scope.cancel()
    assert seen == ["cancelled"]


async def test_run_timeout_returns_a_cancelled_result() -> None:
    wf, _finished = _sleepy_workflow(5)
    wf.add("quick", lambda: "done")
    start = time.monotonic()
    result = await wf.run(timeout=0.1)
    assert time.monotonic() - start < 2
    assert result.status is RunStatus.CANCELLED and not result.ok
    assert result["quick"] == "done"
    assert result.nodes["s0"].status is Status.CANCELLED
    assert result.nodes["sink"].status is Status.CANCELLED
    with pytest.raises(flowrt.NoOutput, match="cancelled"):
        result["s0"]


async def test_cancelled_sync_node_thread_is_abandoned() -> None:
    wf = flowrt.Workflow("thread")
    release = threading.Event()
    done = threading.Event()

    @wf.node
    def blocking() -> str:
        release.wait(5)
        done.set()
        return "late"

    start = time.monotonic()
    result = await wf.run(timeout=0.1)
    assert time.monotonic() - start < 2
    assert result.nodes["blocking"].status is Status.CANCELLED
    release.set()
    assert done.wait(5)  # the thread finished on its own; its result was discarded


async def test_timeout_while_nodes_wait_for_a_limit() -> None:
    wf, _ = _sleepy_workflow(10)
    result = await wf.run(timeout=0.1, max_concurrency=2)
    assert result.status is RunStatus.CANCELLED
    assert result.counts() == {"cancelled": 11}


async def test_cancel_during_retry_backoff() -> None:
    wf = flowrt.Workflow("backoff")

    @wf.node(retry=flowrt.Retry(attempts=5, delay=10))
    async def flaky() -> None:
        raise ConnectionError

    start = time.monotonic()
    result = await wf.run(timeout=0.1)
    assert time.monotonic() - start < 2
    assert result.nodes["flaky"].status is Status.CANCELLED
    assert result.nodes["flaky"].attempts == 1


async def test_node_raising_cancelled_error_on_its_own_is_a_failure() -> None:
    if sniffio.current_async_library() != "asyncio":
        pytest.skip("only asyncio lets a node raise a cancellation by itself")
    import asyncio

    wf = flowrt.Workflow("self-cancel")

    @wf.node
    async def awaits_cancelled() -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.cancel()
        await fut

    wf.add("other", lambda: 1)
    result = await wf.run()
    assert result.nodes["awaits_cancelled"].status is Status.FAILED
    assert result["other"] == 1


# -- regressions: hangs and leaks when runs are cancelled (issue 11, items 1-3) ---------
# The hang scenarios run in a subprocess with a deadline (tests/subproc.py), repeated as
# many times as it took to catch the bug before the fix.

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_cancelled_early_never_hangs(backend: str) -> None:
    # Before the fix, on asyncio, a runner task cancelled before its first step never
    # left the spawner's set, and the run waited for it forever (shielded): a hang
    # within ~25 trials. 200 trials here.
    out = run_program('''
        import random
        import anyio
        import flowrt

        wf = flowrt.Workflow("early")
        rng = random.Random(11)
        for i in range(400):
            async def node(*_):
                await anyio.sleep(0.001)
            wf.add(f"n{i}", node, deps=[f"n{j}" for j in rng.sample(range(i), min(i, 2))])

        async def main():
            for trial in range(200):
                data = flowrt.WorkflowData()
                with anyio.move_on_after(rng.uniform(0, 0.01)):
                    await wf.run(data=data)
                statuses = set(data.node_statuses().values())
                assert statuses <= {flowrt.Status.SUCCEEDED, flowrt.Status.CANCELLED}, statuses
            print("ok")

        anyio.run(main, backend=BACKEND)
    ''', backend=backend, timeout=90)
    assert out.strip() == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_runs_sharing_a_limit_cancelled_together(backend: str) -> None:
    # Before the fix: a slot freed by one cancelled run was handed to a node of another
    # run whose cancellation was under way, with a runner started in it. asyncio hung
    # (first trial); trio crashed with "Nursery is closed to new arrivals" (first trial)
    # and the slot leaked. 30 pairs cancelled by their scopes, then 20 x 100 runs
    # cancelled by their timeouts (asyncio hung within 2 of them), then a run that
    # must still get the slot.
    out = run_program('''
        import anyio
        import flowrt

        wf = flowrt.Workflow("api")

        @wf.node(limit="api")
        async def call():
            await anyio.sleep(1)
            return "done"

        async def main():
            async with flowrt.Runtime(limits={"api": 1}) as rt:
                api = rt._limits["api"]

                async def scoped():
                    with anyio.move_on_after(0.1):
                        await rt.run(wf)

                for trial in range(30):
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(scoped)
                        tg.start_soon(scoped)
                    assert api.in_use == 0 and not api.waiters, (trial, api)

                results = []

                async def timed():
                    results.append(await rt.run(wf, timeout=0.05))

                for trial in range(20):
                    async with anyio.create_task_group() as tg:
                        for _ in range(100):
                            tg.start_soon(timed)
                    assert api.in_use == 0 and not api.waiters, (trial, api)
                assert {str(r.status) for r in results} == {"cancelled"}
                with anyio.fail_after(5):
                    assert (await rt.run(wf))["call"] == "done"
            print("ok")

        anyio.run(main, backend=BACKEND)
    ''', backend=backend, timeout=120)
    assert out.strip() == "ok"


async def test_a_node_with_its_own_nursery_ends_cancelled() -> None:
    # Before the fix, on trio, such a node ended FAILED with
    # BaseExceptionGroup([Cancelled, ...]) in result.errors.
    wf = flowrt.Workflow("nursery")
    if sniffio.current_async_library() == "trio":
        import trio

        @wf.node
        async def fan() -> None:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep, 30)
                nursery.start_soon(trio.sleep, 30)
                await trio.sleep(30)
    else:
        import asyncio

        @wf.node
        async def fan() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(asyncio.sleep(30))
                group.create_task(asyncio.sleep(30))
                await asyncio.sleep(30)

    result = await wf.run(timeout=0.1)
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["fan"].status is Status.CANCELLED
    assert result.errors == {}

    data = flowrt.WorkflowData()
    with anyio.move_on_after(0.1) as scope:
        await wf.run(data=data)
    assert scope.cancelled_caught
    assert data.node_statuses() == {"fan": Status.CANCELLED}


async def test_a_node_failing_with_a_group_of_errors_fails() -> None:
    wf = flowrt.Workflow("group")

    @wf.node
    async def fan() -> None:
        async with anyio.create_task_group() as tg:

            async def bad() -> None:
                raise KeyError("one")

            tg.start_soon(bad)
            await anyio.sleep(30)

    result = await wf.run(timeout=5)
    assert result.nodes["fan"].status is Status.FAILED
    assert isinstance(result.errors["fan"], BaseExceptionGroup)
