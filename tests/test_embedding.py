"""flowrt embedded in an existing asyncio application (pytest-asyncio, not anyio's runner)."""

from __future__ import annotations

import asyncio

import pytest

import flowrt


def checkout() -> flowrt.Workflow:
    wf = flowrt.Workflow("checkout")

    @wf.node
    async def order(order_id: str) -> dict[str, object]:
        await asyncio.sleep(0.001)
        return {"id": order_id, "total": len(order_id)}

    @wf.node(limit="payments", retries=1)
    async def charge(order: dict[str, object]) -> str:
        await asyncio.sleep(0.002)
        return f"charged {order['id']}"

    @wf.node
    def receipt(charge: str) -> str:  # sync, in a worker thread
        return charge.upper()

    return wf


@pytest.mark.asyncio
async def test_several_workflows_concurrently_through_one_runtime() -> None:
    wf = checkout()
    ticks = 0

    async def heartbeat() -> None:  # the application's own work keeps going
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    async with flowrt.Runtime(limits={"payments": 2}) as rt:
        results = await asyncio.gather(*(rt.run(wf, {"order_id": f"A{i}"}) for i in range(20)))
    beat.cancel()
    assert all(r.ok for r in results)
    assert sorted(r["receipt"] for r in results) == sorted(
        f"CHARGED A{i}" for i in range(20))
    assert ticks > 3
    assert len({r.run_id for r in results}) == 20


@pytest.mark.asyncio
async def test_cancelling_the_application_task_cancels_the_run() -> None:
    wf = flowrt.Workflow("long")

    @wf.node
    async def forever() -> None:
        await asyncio.sleep(60)

    data = flowrt.WorkflowData()
    task = asyncio.create_task(wf.run(data=data))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert data.node_statuses() == {"forever": flowrt.Status.CANCELLED}
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.asyncio
async def test_asyncio_wait_for_timeout_around_a_run() -> None:
    wf = flowrt.Workflow("wait_for")

    @wf.node
    async def slow() -> None:
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(wf.run(), 0.05)
