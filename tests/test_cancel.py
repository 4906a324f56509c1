"""Cancellation: from an enclosing cancel scope, by run timeout; nothing left behind."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
import sniffio

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
