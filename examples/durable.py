"""A durable run: stopped half-way, resumed from its SQLite store by its run id.

    orders, fx_rates, refunds (waits for its export) -> net_revenue -> publish

A nightly revenue report reads three exports from a folder. Two are there; the refunds
export comes late: the ``refunds`` node waits for its file to appear, as a sensor does.

1. The first run has a deadline (``timeout=``). It expires while ``refunds`` is still
   waiting: the run ends CANCELLED. ``orders`` and ``fx_rates`` had finished; the store
   (``runs.db``, SQLite) has their outputs.
2. The export lands. The same call again, with the same ``run_id`` and store, resumes
   the run: ``orders`` and ``fx_rates`` are read back from the store and not run again
   (each node writes a line to a journal file when it runs: they appear once); only
   ``refunds``, ``net_revenue`` and ``publish`` run. The run SUCCEEDS.
3. A third call with that run id returns the stored result: nothing runs.

The same works across processes, after a crash or a Ctrl-C: run the workflow with
``--store`` and ``--run-id`` on the command line, stop it, run the same command again.

Run it: ``python examples/durable.py [FOLDER]`` (with a folder, the store and the
report stay there, to look at with ``python -m flowrt runs --store FOLDER/runs.db``).
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

import flowrt

wf = flowrt.Workflow("nightly-revenue")
RUN_ID = "nightly-2024-05-01"


def journal(folder: str, node: str) -> None:
    """Note that ``node`` ran (the example counts these lines)."""
    with open(Path(folder) / "journal.txt", "a", encoding="utf-8") as f:
        f.write(node + "\n")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@wf.node
def orders(exports: str) -> list[dict[str, Any]]:
    journal(exports, "orders")
    return [{"id": r["id"], "amount": float(r["amount"]), "currency": r["currency"]}
            for r in read_csv(Path(exports) / "orders.csv")]


@wf.node
def fx_rates(exports: str) -> dict[str, float]:
    journal(exports, "fx_rates")
    rates: dict[str, float] = json.loads((Path(exports) / "fx.json").read_text("utf-8"))
    return rates


@wf.node
async def refunds(exports: str) -> list[dict[str, Any]]:
    """Wait for the refunds export (a sensor: it checks the folder every 50 ms)."""
    journal(exports, "refunds")
    path = anyio.Path(exports) / "refunds.csv"
    while not await path.exists():
        await anyio.sleep(0.05)
    return [{"order": r["order"], "amount": float(r["amount"])}
            for r in read_csv(Path(path))]


@wf.node
def net_revenue(orders: list[dict[str, Any]], refunds: list[dict[str, Any]],
                fx_rates: dict[str, float], exports: str) -> dict[str, float]:
    journal(exports, "net_revenue")
    currency = {o["id"]: o["currency"] for o in orders}
    gross = sum(o["amount"] / fx_rates[o["currency"]] for o in orders)
    back = sum(r["amount"] / fx_rates[currency[r["order"]]] for r in refunds)
    return {"gross_eur": round(gross, 2), "refunds_eur": round(back, 2),
            "net_eur": round(gross - back, 2)}


@wf.node
def publish(net_revenue: dict[str, float], exports: str, out_dir: str) -> str:
    journal(exports, "publish")
    path = Path(out_dir) / "revenue-2024-05-01.json"
    path.write_text(json.dumps(net_revenue, indent=2), encoding="utf-8")
    return str(path)


def write_exports(folder: Path) -> None:
    """The exports that are there from the start (orders, rates)."""
    with (folder / "orders.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "amount", "currency"])
        for i in range(1, 201):
            w.writerow([f"o{i}", f"{(i * 37) % 300 + 10:.2f}", ("EUR", "USD", "GBP")[i % 3]])
    (folder / "fx.json").write_text(json.dumps({"EUR": 1.0, "USD": 1.08, "GBP": 0.86}),
                                    encoding="utf-8")


def write_late_export(folder: Path) -> None:
    """The refunds export, which arrives late (written to a temp name, then renamed)."""
    tmp = folder / "refunds.csv.part"
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["order", "amount"])
        for i in range(3, 201, 17):
            w.writerow([f"o{i}", "10.00"])
    tmp.replace(folder / "refunds.csv")


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"the durable example did not do what it shows: {what}")


async def demo(on_event: Callable[[flowrt.Event], Any] | None = None,
               say: Callable[[str], Any] = print, folder: str | None = None
               ) -> list[flowrt.RunResult]:
    """Run, stop at the deadline, resume; ``folder`` keeps the files (a temp dir if None)."""
    with tempfile.TemporaryDirectory(prefix="flowrt-durable-") as tmp:
        work = Path(folder) if folder is not None else Path(tmp)
        exports, out = work / "exports", work / "out"
        exports.mkdir(parents=True, exist_ok=True)
        out.mkdir(exist_ok=True)
        for stale in (exports / "refunds.csv", exports / "journal.txt", work / "runs.db"):
            stale.unlink(missing_ok=True)
        write_exports(exports)
        store = str(work / "runs.db")
        inputs = {"exports": str(exports), "out_dir": str(out)}

        first = await wf.run(inputs, run_id=RUN_ID, store=store, timeout=0.6,
                             on_event=on_event)
        done = [n for n, r in first.nodes.items() if str(r.status) == "succeeded"]
        say(f"first run: {first.status} at its deadline; stored as done: {', '.join(done)}")

        write_late_export(exports)
        say("the refunds export arrived; resuming the same run id from the store")
        second = await wf.run(run_id=RUN_ID, store=store, on_event=on_event)
        say(f"resumed run: {second.status}; net revenue {second['net_revenue']['net_eur']:,.2f}"
            f" EUR, written to {Path(second['publish']).name}")

        third = await wf.run(run_id=RUN_ID, store=store, on_event=on_event)
        ran = (exports / "journal.txt").read_text("utf-8").split()
        say(f"third call: {third.status} from the store, nothing ran; nodes run in all: "
            + ", ".join(f"{n} x{ran.count(n)}" for n in dict.fromkeys(ran)))
        if folder is not None:
            say(f"look at it: python -m flowrt runs --store {store}")
            say(f"            python -m flowrt report {RUN_ID} --store {store} -o run.html")

        _check(str(first.status) == "cancelled", "the first run should stop at its deadline")
        _check(set(done) == {"orders", "fx_rates"}, "orders and fx_rates finish first")
        _check(second.ok and third.ok, "the resumed run should succeed")
        _check(ran.count("orders") == 1 and ran.count("fx_rates") == 1,
               "nodes that succeeded must not run again")
        _check(ran.count("refunds") == 2 and ran.count("publish") == 1,
               "the rest runs once more, and the stored result is not rerun")
        _check(second["net_revenue"] == third["net_revenue"], "the stored result is the same")
    return [first, second]


if __name__ == "__main__":
    anyio.run(lambda: demo(folder=sys.argv[1] if len(sys.argv) > 1 else None))
