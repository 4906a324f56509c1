"""A durable run that dies while a map's items are running (``crash_at`` a node that ends
in the middle of the map), on both backends and every quick store: what the store holds
is what ended before the crash, and the resume runs exactly the items it does not hold.
(SIGKILL mid-map is tests/test_maps.py's; this one is in-process and so looks at the
item records themselves, which the item path of the checkpoint writes apart from the
nodes'.)"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import flowrt
from flowrt.testing import Crash, crash_at

pytestmark = pytest.mark.anyio

ITEMS = 12


def _workflow(ran: list[int]) -> flowrt.Workflow:
    wf = flowrt.Workflow("crash-mid-map")
    wf.add("root", lambda: list(range(ITEMS)), executor="loop")

    async def square(n: int) -> int:
        await anyio.sleep(0.01)
        ran.append(n)
        return n * n

    async def side() -> str:  # ends while items are still running
        await anyio.sleep(0.035)
        return "done"

    wf.add("square", square, map={"n": "root"}, concurrency=2)
    wf.add("side", side)
    wf.add("total", lambda square, side: (sum(square), side))
    return wf


@pytest.mark.parametrize("store_kind", ["sqlite", "memory"])
async def test_a_crash_mid_map_keeps_the_items_that_ended_and_runs_only_the_others(
        tmp_path: Path, store_kind: str) -> None:
    ran: list[int] = []
    wf = _workflow(ran)
    store: flowrt.Store = (flowrt.SQLiteStore(tmp_path / "runs.db") if store_kind == "sqlite"
                           else flowrt.MemoryStore())
    try:
        async with flowrt.Runtime(store=store) as rt:
            with pytest.raises(Crash, match="after node 'side'"), crash_at("side"):
                await rt.run(wf, run_id="r")
            stored = store.load("r")
            assert stored is not None and stored.nodes["side"].status == "succeeded"
            items = stored.items["square"]
            assert items[-1].status == "listed" and items[-1].attempts == ITEMS
            recorded = {i for i, rec in items.items() if i >= 0}
            assert all(items[i].status == "succeeded" for i in recorded)
            assert recorded and len(recorded) < ITEMS  # the crash came mid-map
            assert recorded <= set(ran)  # nothing recorded that had not ended
            before = list(ran)
            ran.clear()
            result = await rt.run(wf, run_id="r")
        assert result.ok and result["total"] == (sum(n * n for n in range(ITEMS)), "done")
        assert sorted(ran) == sorted(set(range(ITEMS)) - recorded)  # no recorded item again
        assert set(before) | set(ran) == set(range(ITEMS))
        assert [item.status for item in result.items("square")] == [
            flowrt.Status.SUCCEEDED] * ITEMS
    finally:
        store.close()
