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
