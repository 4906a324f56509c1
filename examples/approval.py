"""A purchase that needs a manager's approval: a worker runs it, a person approves it
from the command line.

    quote -> manager (an approval node: the run waits) -> order

1. A worker process starts: ``python -m flowrt worker --store runs.db --workflows
   flowrt.examples.approval``.
2. This process submits two purchase orders to the store's queue (``rt.submit``). The
   worker takes each, prices it (``quote``), and *parks* it at the approval: the run is
   ``waiting`` in the store and holds no slot of the worker while it waits.
3. A manager approves one and rejects the other from the command line -- ``python -m
   flowrt approve po-1 manager --by alice`` and ``reject po-2 ...`` -- in processes of
   their own that know nothing of the workflow's code. The worker wakes each run: the
   approved one places its order (``order`` appends a line to ``orders.txt``), the
   rejected one fails with ``flowrt.Rejected`` and places nothing.

Nothing of ``quote`` runs twice: the wait is a node of its own, so waking a run runs
only what comes after it.

Run it: ``python examples/approval.py [FOLDER]`` (with a folder, the store stays there:
``python -m flowrt runs --store FOLDER/runs.db``, ``python -m flowrt show po-1 ...``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

import flowrt

purchase = flowrt.Workflow("purchase")
PRICES = {"laptop": 1450.0, "yacht": 2_300_000.0}


@purchase.node
def quote(item: str, quantity: int) -> dict[str, Any]:
    """Price the purchase (runs once, before the run waits)."""
    return {"item": item, "quantity": quantity, "total": PRICES[item] * quantity}


purchase.approval("manager", after=[quote], timeout=timedelta(days=2))


@purchase.node
def order(quote: dict[str, Any], manager: dict[str, Any], folder: str,
          ctx: flowrt.Context) -> str:
    """Place the order: one line in orders.txt."""
    line = (f"{ctx.run_id}: {quote['quantity']} x {quote['item']}, {quote['total']:.2f} EUR, "
            f"approved by {manager['by']}")
    with open(Path(folder) / "orders.txt", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


def _cli(*args: str) -> str:
    """``python -m flowrt ARGS`` in a process of its own; its output."""
    proc = subprocess.run([sys.executable, "-m", "flowrt", *args], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"flowrt {args[0]} exited with {proc.returncode}: {proc.stderr}")
    return proc.stdout


async def _until(store: flowrt.durable.Store, run_ids: list[str], statuses: set[str]) -> None:
    with anyio.fail_after(60):
        while any(getattr(store.get_run(r), "status", None) not in statuses for r in run_ids):
            await anyio.sleep(0.05)


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print,
               folder: str | None = None) -> list[flowrt.RunResult]:
    """Two purchases, one worker process, one approval and one rejection from the CLI."""
    folder = folder or tempfile.mkdtemp(prefix="flowrt-approval-")
    db = str(Path(folder) / "runs.db")
    worker = subprocess.Popen(
        [sys.executable, "-m", "flowrt", "worker", "--store", db, "--workflows",
         "flowrt.examples.approval", "--poll", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        async with flowrt.Runtime(store=db) as rt:
            store = rt.store
            assert store is not None
            for run_id, item, quantity in (("po-1", "laptop", 3), ("po-2", "yacht", 1)):
                await rt.submit(purchase, {"item": item, "quantity": quantity,
                                           "folder": folder}, run_id=run_id)
            say("submitted po-1 (3 laptops) and po-2 (a yacht); a worker process runs them")
            await _until(store, ["po-1", "po-2"], {"waiting"})
            for run_id in ("po-1", "po-2"):
                stored = store.load(run_id)
                (wait,) = stored.waits()
                total = stored.outputs()["quote"]["total"]
                expires = time.strftime("%Y-%m-%d %H:%M", time.localtime(wait.due or 0))
                say(f"{run_id} is parked ({total:.2f} EUR): waits for {wait.kind} "
                    f"{wait.node!r} until {expires}")
            _cli("approve", "po-1", "manager", "--by", "alice", "--comment", "within budget",
                 "--store", db)
            say("$ flowrt approve po-1 manager --by alice --comment 'within budget'")
            _cli("reject", "po-2", "manager", "--by", "alice", "--comment", "not this year",
                 "--store", db)
            say("$ flowrt reject po-2 manager --by alice --comment 'not this year'")
            await _until(store, ["po-1", "po-2"], {"succeeded", "failed"})
            approved = await rt.run(purchase, run_id="po-1", on_event=on_event)  # replayed
            rejected = store.load("po-2")
        lines = (Path(folder) / "orders.txt").read_text(encoding="utf-8").splitlines()
        for line in lines:
            say(f"  orders.txt: {line}")
        error = rejected.nodes["manager"].error or ""
        say(f"po-2: {rejected.record.status}, {error}")
        if not (approved.ok and len(lines) == 1 and rejected.record.status == "failed"
                and "rejected by alice" in error and "order" not in rejected.outputs()):
            raise RuntimeError(f"expected po-1 ordered and po-2 rejected, got {lines} and "
                               f"{rejected.record.status} {error!r}")
        return [approved]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


if __name__ == "__main__":
    anyio.run(lambda: demo(folder=sys.argv[1] if len(sys.argv) > 1 else None))
