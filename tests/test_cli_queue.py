"""The queue's commands: submit, worker, signal, approve/reject, cancel, resume,
schedules; and their bad inputs (exit 2 with a message, nothing created)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FLOW = """
import flowrt

flow = flowrt.Workflow("flow")

@flow.node
def a(x: int = 1) -> int:
    return x + 1

@flow.node
def b(a: int) -> int:
    return a * 10
"""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(HERE.parent)])}
    return subprocess.run([sys.executable, "-m", "flowrt", *args], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=120)


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOW)
    return tmp_path


def test_submit_then_a_worker_runs_it(flow: Path) -> None:
    out = cli(flow, "submit", "flows.py:flow", "-i", "x=4", "--store", "q.db",
              "--run-id", "r1")
    assert out.returncode == 0 and out.stdout.strip() == "r1", out.stderr
    out = cli(flow, "worker", "--store", "q.db", "--workflows", "flows", "--until-idle",
              "--poll", "0.05")
    assert out.returncode == 0, out.stderr
    assert "run ended" in out.stderr and "status=succeeded" in out.stderr
    shown = json.loads(cli(flow, "show", "r1", "--store", "q.db", "--json").stdout)
    assert shown["status"] == "succeeded" and shown["queue"] == "default"
    out = cli(flow, "resume", "r1", "--store", "q.db")
    assert out.returncode == 0 and "nothing to resume" in out.stdout
    out = cli(flow, "cancel", "r1", "--store", "q.db")
    assert out.returncode == 0 and "nothing to cancel" in out.stdout


def test_cancel_and_resume_a_queued_run(flow: Path) -> None:
    cli(flow, "submit", "flows.py:flow", "--store", "q.db", "--run-id", "r1")
    out = cli(flow, "cancel", "r1", "--store", "q.db")
    assert out.returncode == 0 and "cancelled (it was queued)" in out.stdout
    runs = json.loads(cli(flow, "runs", "--store", "q.db", "--json").stdout)
    assert [r["status"] for r in runs] == ["cancelled"]
    out = cli(flow, "resume", "r1", "--store", "q.db")
    assert out.returncode == 0 and "queued again (it was cancelled)" in out.stdout
    out = cli(flow, "worker", "--store", "q.db", "--workflows", "flows.py", "--until-idle",
              "--poll", "0.05", "--backend", "trio")
    assert out.returncode == 0, out.stderr
    runs = json.loads(cli(flow, "runs", "--store", "q.db", "--json").stdout)
    assert [r["status"] for r in runs] == ["succeeded"]


SAGA = """
import flowrt

saga = flowrt.Workflow("saga")
saga.add("pay", lambda: "charge-1", compensate=lambda pay: None)

def ship(pay: str) -> None:
    raise RuntimeError("no courier")

saga.add("ship", ship, deps=["pay"])
"""


def test_resume_refuses_a_run_rolled_back_to_the_end(tmp_path: Path) -> None:
    """`flowrt resume` says a rolled-back run is over, as the dashboard and rt.resume
    do: exit 2, the run named with what was undone, the store unchanged."""
    (tmp_path / "sagas.py").write_text(SAGA)
    out = cli(tmp_path, "run", "sagas.py:saga", "--store", "q.db", "--run-id", "r1")
    assert out.returncode == 1, out.stderr
    before = json.loads(cli(tmp_path, "show", "r1", "--store", "q.db", "--json").stdout)
    assert before["nodes"]["pay"]["status"] == "compensated"
    out = cli(tmp_path, "resume", "r1", "--store", "q.db")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert ("run 'r1' was rolled back (failed; undone: pay): it is over, and resuming it "
            "would run nothing (its compensations ran). Start a new run to try again."
            ) in out.stderr and "Traceback" not in out.stderr
    after = json.loads(cli(tmp_path, "show", "r1", "--store", "q.db", "--json").stdout)
    assert after == before


def test_schedules_are_listed(flow: Path) -> None:
    import anyio

    import flowrt

    async def main() -> None:
        wf = flowrt.Workflow("flow")
        wf.add("a", lambda: 1)
        async with flowrt.Runtime(store=str(flow / "q.db")) as rt:
            rt.schedule(wf, cron="0 2 * * *", timezone="Europe/Riga", name="nightly")

    anyio.run(main)
    out = cli(flow, "schedules", "--store", "q.db")
    assert out.returncode == 0 and "nightly" in out.stdout and "0 2 * * *" in out.stdout
    listed = json.loads(cli(flow, "schedules", "--store", "q.db", "--json").stdout)
    assert listed[0]["timezone"] == "Europe/Riga" and listed[0]["next_slot"].endswith("Z")


@pytest.mark.parametrize("args, message", [
    (["signal", "nope", "go", "--store", "q.db"], "no run 'nope'"),
    (["signal", "r1", "go", "--store", "q.db", "--data", "{bad"], "--data is not JSON"),
    (["signal", "r1", "go", "--store", "q.db"], "has no signal 'go'"),
    (["approve", "r1", "go", "--store", "q.db", "--by", "ann"], "has no signal 'go'"),
    (["reject", "nope", "go", "--store", "q.db", "--by", "ann"], "no run 'nope'"),
    (["approve", "r1", "go", "--store", "q.db"], "--by"),
    (["cancel", "nope", "--store", "q.db"], "no run 'nope'"),
    (["resume", "r11", "--store", "q.db"], "did you mean 'r1'"),
    (["cancel", "r1", "--store", "missing.db"], "no store at missing.db"),
    (["signal", "r1", "go", "--store", "missing.db"], "no store at missing.db"),
    (["resume", "r1", "--store", "missing.db"], "no store at missing.db"),
    (["schedules", "--store", "missing.db"], "no store at missing.db"),
    (["submit", "flows.py:nope", "--store", "q.db"], "no attribute 'nope'"),
    (["submit", "flows.py:flow", "--store", "q.db", "-i", "y=1"], "taken by no node"),
    (["worker", "--store", "q.db", "--workflows", "no_such_module"], "no_such_module"),
    (["worker", "--store", "q.db", "--workflows", "flows", "--concurrency", "0"], "0"),
])
def test_bad_input_exits_2_with_a_message(flow: Path, args: list[str], message: str) -> None:
    cli(flow, "submit", "flows.py:flow", "--store", "q.db", "--run-id", "r1")
    out = cli(flow, *args)
    assert out.returncode == 2, (args, out.stdout, out.stderr)
    assert message in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not (flow / "missing.db").exists()


def test_runs_shows_what_parked_runs_wait_for_and_dead_letters(tmp_path: Path) -> None:
    import time

    import attrs

    from flowrt import SQLiteStore
    from flowrt.durable import Lease, NodeRecord, RunRecord

    def queued(run_id: str) -> RunRecord:
        return RunRecord(run_id, "wf", "fp", {"quote": [], "manager": ["quote"]}, b"{}",
                         "queued", "json", 1.0, 1.0, queue="default", due=0.0,
                         waits={"manager": "approval"})

    with SQLiteStore(tmp_path / "q.db") as store:
        store.submit(queued("parked"))
        store.submit(queued("broken"))
        _, claim = store.claim_next(
            Lease("here", os.getpid(), "t"),
            lambda s: attrs.evolve(s.record, status="running", started=time.time()),
            now=1.0, workflows={"wf": {"fp"}})
        store.write(claim, [NodeRecord("quote", "succeeded", 1, b"1"),
                            NodeRecord("manager", "waiting", 1, started=2.0, due=None)], None)
        store.finish(claim, "waiting", 3.0)
        store.flush()

        def refuse(stored: object) -> RunRecord:
            raise flowrt_store_error()

        with pytest.raises(Exception, match="damaged"):
            store.claim_next(Lease("here", os.getpid(), "u"), refuse, now=5.0,
                             workflows={"wf": {"fp"}})
    out = cli(tmp_path, "runs", "--store", "q.db")
    assert out.returncode == 0, out.stderr
    assert "parked: approval 'manager'" in out.stdout.replace("\n  ", " ")
    assert "broken: StoreError: its inputs are damaged" in out.stdout
    listed = {r["run_id"]: r for r in json.loads(cli(tmp_path, "runs", "--store", "q.db",
                                                     "--json").stdout)}
    assert listed["parked"]["status"] == "waiting"
    assert listed["parked"]["waiting_for"][0]["node"] == "manager"
    assert listed["broken"]["status"] == "dead_letter"
    only = json.loads(cli(tmp_path, "runs", "--store", "q.db", "--status", "waiting",
                          "--json").stdout)
    assert [r["run_id"] for r in only] == ["parked"]


def flowrt_store_error() -> Exception:
    import flowrt

    return flowrt.StoreError("its inputs are damaged")
