"""A scheduled nightly job: a cron schedule in a store, fired by two workers.

    sales (the day's orders) -> totals -> report (a line in report.txt)

``rt.schedule(nightly, cron="0 2 * * *", timezone="Europe/Riga")`` stores the schedule
in ``runs.db``. Two workers share the store (two runtimes, as two processes would be).
The example drives time with a fake clock (``flowrt.testing.FakeClock``) instead of
waiting for 2 a.m.: a week of nights passes in a second.

1. Nights 1 and 2: each night's slot becomes exactly one run, ``sched:nightly:<slot>``
   (the slot in UTC), run by whichever worker takes it first.
2. Nights 3 to 5: no worker runs (a deploy gone wrong). When they are back on night 6,
   the three missed slots and night 6's *coalesce* into one run, for the latest slot.
3. Night 7: one run again.

Each run appends the day it reports on to ``report.txt``; every slot fired appears once.

Run it: ``python examples/scheduled.py [FOLDER]`` (with a folder, the store stays there:
``python -m flowrt schedules --store FOLDER/runs.db``, ``python -m flowrt runs ...``).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

import flowrt
from flowrt.testing import FakeClock

nightly = flowrt.Workflow("nightly-sales")
DAY = 86400.0
START = 1_717_200_000.0  # 2024-06-01 00:00 UTC (03:00 in Riga)


@nightly.node
def sales(folder: str, ctx: flowrt.Context) -> list[float]:
    """The day's orders (made up from the run id, so that every night differs)."""
    seed = sum(map(ord, ctx.run_id))
    return [round(10 + (seed * k) % 90, 2) for k in range(1, 6)]


@nightly.node
def totals(sales: list[float]) -> dict[str, float]:
    return {"orders": len(sales), "revenue": round(sum(sales), 2)}


@nightly.node
def report(totals: dict[str, float], folder: str, ctx: flowrt.Context) -> str:
    slot = ctx.run_id.rpartition("nightly:")[2]
    line = f"{slot} {totals['orders']:.0f} orders, {totals['revenue']:.2f} EUR"
    with open(Path(folder) / "report.txt", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print,
               folder: str | None = None) -> list[flowrt.RunResult]:
    """Fire a week of nightly slots with two workers and a fake clock."""
    folder = folder or tempfile.mkdtemp(prefix="flowrt-scheduled-")
    db = Path(folder) / "runs.db"
    clock = FakeClock(START)
    stores = [flowrt.SQLiteStore(db), flowrt.SQLiteStore(db)]
    try:
        async with flowrt.Runtime(store=stores[0], workflows=[nightly], clock=clock) as one, \
                flowrt.Runtime(store=stores[1], workflows=[nightly], clock=clock) as two:
            schedule = one.schedule(nightly, cron="0 2 * * *", timezone="Europe/Riga",
                                    inputs={"folder": folder}, name="nightly")
            first = datetime.fromtimestamp(schedule.next_due, UTC)
            say(f"schedule 'nightly' stored; first slot {first:%Y-%m-%d %H:%M} UTC")

            async def nights(count: int, workers: bool) -> None:
                for _ in range(count):
                    clock.advance(DAY)
                    if not workers:
                        continue
                    async with anyio.create_task_group() as tg:  # both serve at once
                        tg.start_soon(lambda: one.serve(until_idle=True, poll=0.01))
                        tg.start_soon(lambda: two.serve(until_idle=True, poll=0.01))

            await nights(2, workers=True)
            say("nights 3-5: no worker runs")
            await nights(3, workers=False)
            await nights(2, workers=True)
            runs = sorted(r.run_id for r in stores[0].runs())
            results = [await one.run(nightly, run_id=run_id, on_event=on_event)
                       for run_id in runs]  # succeeded runs: their stored results
        lines = (Path(folder) / "report.txt").read_text(encoding="utf-8").splitlines()
        for line in lines:
            say(f"  {line}")
        if len(runs) != 4 or len(lines) != 4 or not all(r.ok for r in results):
            raise RuntimeError(f"expected 4 nightly runs (nights 3-6 coalesced), got "
                               f"{runs} and {lines}")
        say(f"4 runs for 7 nights: nights 3 to 6 coalesced into {runs[2]}")
        return results
    finally:
        for store in stores:
            store.close()


if __name__ == "__main__":
    anyio.run(lambda: demo(folder=sys.argv[1] if len(sys.argv) > 1 else None))
