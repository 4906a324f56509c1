"""The bundled examples: each does what its docstring says, on both anyio backends, and
each runs as a script (``python examples/NAME.py``)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import flowrt
from flowrt.tools.cli._examples import examples_package

REPO = Path(__file__).resolve().parent.parent
NAMES = list(examples_package().EXAMPLES)

def example(name: str) -> ModuleType:
    return importlib.import_module(f"{examples_package().__name__}.{name}")


async def run_demo(name: str, **kwargs: Any) -> tuple[list[flowrt.RunResult], list[flowrt.Event],
                                                      list[str]]:
    events: list[flowrt.Event] = []
    said: list[str] = []
    results = await example(name).demo(on_event=events.append, say=said.append, **kwargs)
    return results, events, said


def kinds(events: list[flowrt.Event], run_id: str) -> Counter[str]:
    return Counter(f"{e.kind}:{e.node}" for e in events if e.run_id == run_id)


@pytest.mark.anyio
async def test_checkout() -> None:
    (happy, failed), events, said = await run_demo("checkout")
    assert happy.ok and str(failed.status) == "failed"
    assert happy.nodes["payment"].attempts == 2
    assert happy.compensation == {}
    assert {n: str(s) for n, s in happy.statuses().items() if str(s) != "succeeded"} == {}
    assert {n: str(s) for n, s in failed.statuses().items() if str(s) != "succeeded"} == {
        "shipment": "failed", "confirmation": "skipped", "reservation": "compensated",
        "payment": "compensated"}
    assert list(failed.compensation) == ["reservation", "payment"]
    failed_events = kinds(events, failed.run_id)
    assert failed_events["compensated:payment"] == failed_events["compensated:reservation"] == 1
    assert kinds(events, happy.run_id)["retrying:payment"] == 1
    assert any("refund: 54.00 EUR" in line for line in said)


@pytest.mark.anyio
async def test_etl() -> None:
    (result,), events, said = await run_demo("etl")
    assert result.ok and len(result.plan) == 8
    # extract is mapped over the files discover found: one item per file
    assert [str(i.status) for i in result.items("extract")] == ["succeeded"] * 4
    assert sorted(e.item for e in events if e.node == "extract" and str(e.kind) == "started"
                  and e.item is not None) == [0, 1, 2, 3]
    # transform and enrich both ran after validate, and before aggregate
    order = [e.node for e in events if str(e.kind) == "started"]
    assert order.index("validate") < order.index("transform") < order.index("aggregate")
    assert order.index("validate") < order.index("enrich") < order.index("aggregate")
    assert result["report"]["sales"] == result["load"]["sales"]
    assert any(line.startswith("loaded ") for line in said)


@pytest.mark.anyio
async def test_api() -> None:
    (result,), _, said = await run_demo("api")
    assert result.ok
    assert result.metrics.retries == 3
    assert result["publish"] == "report-1"
    assert any("in flight" in line for line in said)


@pytest.mark.anyio
async def test_durable(tmp_path: Path) -> None:
    (first, second), events, _ = await run_demo("durable", folder=str(tmp_path))
    assert str(first.status) == "cancelled" and second.ok
    # the resumed run started only the nodes that had not succeeded
    starts = [i for i, e in enumerate(events) if str(e.kind) == "run_started"]
    assert len(starts) == 2  # the stored result of the third call emits nothing
    resumed = {e.node for e in events[starts[1]:] if str(e.kind) == "started"}
    assert resumed == {"refunds", "net_revenue", "publish"}
    store = flowrt.SQLiteStore(tmp_path / "runs.db")
    try:
        record = store.get_run(second.run_id)
    finally:
        store.close()
    assert record is not None and record.status == "succeeded" and record.resumes == 1


def test_every_example_is_documented_and_has_a_demo() -> None:
    for name in NAMES:
        module = example(name)
        assert module.__doc__ and "Run it:" in module.__doc__, name
        assert callable(module.demo), name
        assert any(isinstance(v, flowrt.Workflow) for v in vars(module).values()), name


@pytest.mark.parametrize("name", NAMES)
def test_example_runs_as_a_script(name: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(REPO / "examples" / f"{name}.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip(), "an example says what it did"
    assert "Traceback" not in proc.stderr


@pytest.mark.anyio
async def test_scheduled(tmp_path: Path) -> None:
    results, _, said = await run_demo("scheduled", folder=str(tmp_path))
    assert [r.run_id.split("nightly:")[1][:13] for r in results] == [
        "2024-06-01T23", "2024-06-02T23", "2024-06-06T23", "2024-06-07T23"]
    assert all(r.ok for r in results) and any("coalesced" in line for line in said)
    assert len((tmp_path / "report.txt").read_text().splitlines()) == 4


@pytest.mark.anyio
async def test_order_flow() -> None:
    (fast, slow, po_box), events, said = await run_demo("order_flow")
    assert fast.ok and slow.ok
    assert (fast["route"], slow["route"]) == ("express", "standard")
    assert {n: str(s) for n, s in fast.statuses().items() if str(s) != "succeeded"} == {
        "standard": "bypassed"}
    assert {n: str(s) for n, s in slow.statuses().items() if str(s) != "succeeded"} == {
        "express": "bypassed"}
    assert kinds(events, fast.run_id)["bypassed:standard"] == 1
    assert kinds(events, slow.run_id)["started:express"] == 0
    assert fast["ship"] == "EX-B-2001" and slow["ship"] == "ST-B-2002"
    assert any("courier" in line for line in said)
    # the saga: B-2003's shipment fails; its courier booking, then its payment, undone
    assert po_box.status is flowrt.RunStatus.FAILED
    assert po_box.compensation == {"payment": flowrt.Status.COMPENSATED,
                                   "express": flowrt.Status.COMPENSATED}
    assert str(po_box.nodes["ship"].status) == "failed"
    undone = [e.node for e in events
              if e.run_id == po_box.run_id and str(e.kind) == "compensated"]
    assert undone == ["express", "payment"]  # reverse order: the booking first
    assert any("refunded: ['B-2003']" in line for line in said)


@pytest.mark.anyio
async def test_approval(tmp_path: Path) -> None:
    """A worker process parks both runs at the approval; the CLI approves one and
    rejects the other; quote ran once each (it is before the wait)."""
    results, _, said = await run_demo("approval", folder=str(tmp_path))
    assert [r.run_id for r in results] == ["po-1"] and results[0].ok
    assert results[0]["manager"]["by"] == "alice"
    assert (tmp_path / "orders.txt").read_text().count("\n") == 1
    assert any("rejected by alice: not this year" in line for line in said)
    store = flowrt.SQLiteStore(tmp_path / "runs.db")
    try:
        assert [store.load(r).nodes["quote"].attempts for r in ("po-1", "po-2")] == [1, 1]
        assert store.load("po-1").nodes["quote"].fence < store.get_run("po-1").fence
    finally:
        store.close()
