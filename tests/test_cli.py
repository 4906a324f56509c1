"""The command line, tried as a new user would: a fresh virtualenv with a plain
(non-editable) ``pip install`` of this repository, every subcommand run in a subprocess
from a temporary directory, every bad input with its exit status, Ctrl-C during a
durable run and the resume after it.

The virtualenv is built once per test session (pip may use its cache); the rest of the
module runs the CLI in-process where a subprocess would add nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import flowrt
from flowrt.tools import cli
from flowrt.tools._progress import LiveDisplay, PlainDisplay, QuietDisplay, make_display
from flowrt.tools.cli import _common as cli_common
from flowrt.tools.cli._common import UsageError, parse_value, split_target
from flowrt.tools.cli._examples import examples_package

REPO = Path(__file__).resolve().parent.parent

# -- the fresh install -----------------------------------------------------------------------


@attrs.frozen
class Install:
    python: Path
    script: Path
    home: Path  # a scratch directory outside the repository


def _copy_source(dest: Path) -> None:
    """What a user's checkout has, without build leftovers (stale build/ or egg-info)."""
    dest.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "*.db")
    for name in ("pyproject.toml", "README.md", "LICENSE", "flowrt", "examples"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="session")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    root = tmp_path_factory.mktemp("fresh-install")
    src = root / "src"
    _copy_source(src)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
         "-q", str(src)], capture_output=True, text=True, timeout=900, env=_clean_env())
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    home = root / "home"
    home.mkdir()
    return Install(python, bin_dir / "flowrt", home)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def flowrt_cli(install: Install, *args: str, cwd: Path | None = None, timeout: float = 120,
               stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m flowrt ARGS`` with the fresh install, in ``cwd``."""
    return subprocess.run([str(install.python), "-m", "flowrt", *args], cwd=cwd or install.home,
                          capture_output=True, text=True, timeout=timeout, env=_clean_env(),
                          input=stdin)


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


# -- workflow files a user would write -------------------------------------------------------

FLOWS = '''
import os
import time

import anyio

import flowrt

wf = flowrt.Workflow("demo")

@wf.node
async def a(n: int) -> int:
    return n * 2

@wf.node(retry=flowrt.Retry(attempts=2, delay=0))
def b(a: int, ctx: flowrt.Context) -> int:
    if ctx.attempt == 1:
        raise ConnectionError("flaky")
    return a + 1

@wf.node
async def c(a: int) -> str:
    return f"c{a}"

@wf.node
def d(b: int, c: str) -> dict:
    return {"b": b, "c": c}


types_wf = flowrt.Workflow("types")

@types_wf.node
def echo(n, s, flag, items, obj, text, nothing):
    values = dict(n=n, s=s, flag=flag, items=items, obj=obj, text=text, nothing=nothing)
    return {k: [type(v).__name__, v] for k, v in values.items()}


broken = flowrt.Workflow("broken")

@broken.node
def load() -> int:
    return 1

@broken.node
def check(load: int) -> int:
    raise ValueError("row 7 is bad")

@broken.node
def save(check: int) -> None:
    pass


sensor = flowrt.Workflow("sensor")

def note(journal: str, what: str) -> None:
    with open(journal, "a") as f:
        f.write(what + "\\n")

@sensor.node
async def first(journal: str) -> int:
    note(journal, "first")
    return 1

@sensor.node
async def gate(first: int, journal: str, marker: str) -> int:
    note(journal, "gate")
    while not os.path.exists(marker):
        await anyio.sleep(0.02)
    return first + 1

@sensor.node
def last(gate: int, journal: str) -> int:
    note(journal, "last")
    return gate + 1


blocking = flowrt.Workflow("blocking")

@blocking.node
def stuck(journal: str) -> None:
    note(journal, "stuck")
    time.sleep(60)


cyclic = flowrt.Workflow("cyclic")
cyclic.add("x", lambda y: y, deps=["y"])
cyclic.add("y", lambda x: x, deps=["x"])

not_a_workflow = 42

def helper() -> None:
    pass
'''


@pytest.fixture
def work(install: Install, tmp_path: Path) -> Path:
    """A scratch directory with flows.py, a package, and files of the wrong kind."""
    (tmp_path / "flows.py").write_text(FLOWS)
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "pipelines.py").write_text(
        "import flowrt\n\nflow = flowrt.Workflow('pkgflow')\n"
        "flow.add('hello', lambda name: f'hello {name}')\n")
    (tmp_path / "bad_import.py").write_text("import flowrt\nwf = flowrt.Workflow('x')\n"
                                            "raise RuntimeError('config missing')\n")
    (tmp_path / "notastore.txt").write_text("just some notes\n")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE customers (id INTEGER)")
    other.commit()
    other.close()
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "latin1.json").write_bytes(b'{"n": "caf\xe9"}')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "inputs.json").write_text(json.dumps({"n": 5, "s": "from-file", "flag": False,
                                                      "items": [], "obj": {}, "text": "t",
                                                      "nothing": 1}))
    flowrt.SQLiteStore(tmp_path / "empty-store.db").close()
    return tmp_path


# -- basics ----------------------------------------------------------------------------------


def test_help_version_and_console_script(install: Install) -> None:
    proc = flowrt_cli(install, "--help")
    assert proc.returncode == 0
    for command in ("examples", "run", "graph", "runs", "show", "report", "ui"):
        assert command in proc.stdout
    proc = flowrt_cli(install, "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("flowrt ")
    script = subprocess.run([str(install.script), "run", "--help"], capture_output=True,
                            text=True, timeout=60, cwd=install.home, env=_clean_env())
    assert script.returncode == 0 and "--inputs-json" in script.stdout
    proc = flowrt_cli(install)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_ui_without_its_extra_and_its_files(install: Install) -> None:
    """A plain 'pip install' has the dashboard's static files (package data) but not
    its server: 'flowrt ui' says which extra to install (exit 2)."""
    proc = subprocess.run(
        [str(install.python), "-c", "import pathlib, flowrt.tools as t; print(sorted(p.name "
         "for p in (pathlib.Path(t.__file__).parent / 'ui' / 'static').iterdir()))"],
        capture_output=True, text=True, timeout=60, cwd=install.home, env=_clean_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['dashboard.css', 'dashboard.js', 'favicon.svg']"
    (install.home / "ui.db").write_bytes(b"")
    proc = flowrt_cli(install, "ui", "--store", "ui.db")
    if proc.returncode == 2 and "needs the 'ui' extra" in proc.stderr:
        assert "pip install 'flowrt[ui]'" in proc.stderr
    else:  # starlette and uvicorn happen to be installed there: the store is checked
        assert proc.returncode == 2 and "is empty" in proc.stderr, proc.stderr
    no_traceback(proc)


def test_installed_copy_is_used(install: Install) -> None:
    """The tests run the installed package, not the checkout."""
    proc = subprocess.run([str(install.python), "-c",
                           "import flowrt, flowrt.examples; print(flowrt.__file__); "
                           "print(flowrt.examples.__file__)"],
                          capture_output=True, text=True, cwd=install.home, env=_clean_env(),
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        assert "site-packages" in line and not line.startswith(str(REPO)), line


# -- examples --------------------------------------------------------------------------------


def test_examples_list(install: Install) -> None:
    proc = flowrt_cli(install, "examples", "--list")
    assert proc.returncode == 0, proc.stderr
    for name in ("checkout", "etl", "api", "durable"):
        assert name in proc.stdout


def test_examples_all_succeed_from_anywhere(install: Install) -> None:
    proc = flowrt_cli(install, "examples", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    no_traceback(proc)
    summary = proc.stdout[re.search(r"example +status", proc.stdout).start():]  # type: ignore[union-attr]
    names = list(examples_package().EXAMPLES)  # every bundled example, order_flow too
    for name in names:
        assert any(line.split()[:2] == [name, "succeeded"] for line in summary.splitlines())
    assert f"{len(names)} of {len(names)} examples succeeded" in proc.stdout
    # progress: one line per event on stderr, when not on a terminal
    assert "retrying" in proc.stderr and "run succeeded" in proc.stderr


def test_examples_by_name_and_unknown(install: Install) -> None:
    proc = flowrt_cli(install, "examples", "checkout", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checkout  succeeded" in proc.stdout and "etl" not in proc.stdout.split("example")[-1]
    assert proc.stderr == ""  # quiet: no progress
    proc = flowrt_cli(install, "examples", "checkout", "nosuch")
    assert proc.returncode == 2
    assert "no example named 'nosuch'" in proc.stderr and "durable" in proc.stderr
    no_traceback(proc)


# -- run -------------------------------------------------------------------------------------


def test_run_a_file_target(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "flows.py:wf", "-i", "n=3", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "run " in proc.stdout and "'demo' succeeded" in proc.stdout
    assert "d = {'b': 7, 'c': 'c6'}" in proc.stdout
    assert "1 retry" in proc.stdout
    assert "started    a" in proc.stderr  # plain progress lines


def test_run_json_and_input_parsing(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "flows.py:types_wf", "--json", "-i", "n=3",
                      "-i", "s=abc", "-i", "flag=true", "-i", "items=[1, 2]",
                      "-i", 'obj={"k": null}', "-i", 'text="3"', "-i", "nothing=",
                      cwd=work)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "succeeded" and data["ok"] is True
    assert data["workflow"] == "types" and data["nodes"]["echo"]["attempts"] == 1
    echo = data["outputs"]["echo"]
    assert echo == {"n": ["int", 3], "s": ["str", "abc"], "flag": ["bool", True],
                    "items": ["list", [1, 2]], "obj": ["dict", {"k": None}],
                    "text": ["str", "3"], "nothing": ["str", ""]}
    assert proc.stderr == ""  # --json: no progress


def test_run_inputs_json_file_and_stdin(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "flows.py:types_wf", "--json", "--inputs-json",
                      "inputs.json", "-i", "s=override", cwd=work)
    assert proc.returncode == 0, proc.stderr
    echo = json.loads(proc.stdout)["outputs"]["echo"]
    assert echo["n"] == ["int", 5] and echo["s"] == ["str", "override"]
    proc = flowrt_cli(install, "run", "flows.py:wf", "--json", "--inputs-json", "-",
                      cwd=work, stdin='{"n": 10}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outputs"]["d"] == {"b": 21, "c": "c20"}


def test_run_a_module_target(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "mypkg.pipelines:flow", "-i", "name=ada", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "hello = 'hello ada'" in proc.stdout
    proc = flowrt_cli(install, "run", "mypkg.pipelines", "-i", "name=bob", cwd=work)
    assert proc.returncode == 0 and "hello bob" in proc.stdout  # the module's only workflow


def test_a_failed_run_exits_1(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "flows.py:broken", cwd=work)
    assert proc.returncode == 1
    no_traceback(proc)
    assert "'broken' failed" in proc.stdout
    assert "ValueError: row 7 is bad" in proc.stdout and "skipped" in proc.stdout
    proc = flowrt_cli(install, "run", "flows.py:broken", "--traceback", cwd=work)
    assert proc.returncode == 1
    assert 'raise ValueError("row 7 is bad")' in proc.stdout  # asked for: where it raised
    proc = flowrt_cli(install, "run", "flows.py:broken", "--json", cwd=work)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status"] == "failed" and data["nodes"]["check"]["error"] == (
        "ValueError: row 7 is bad")


def test_a_run_past_its_timeout_is_cancelled_exit_1(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "flows.py:sensor", "-i", f"journal={work / 'j'}",
                      "-i", f"marker={work / 'never'}", "--timeout", "0.3", cwd=work)
    assert proc.returncode == 1, proc.stderr
    assert "'sensor' cancelled" in proc.stdout
    no_traceback(proc)


def test_a_timeout_does_not_wait_for_a_blocked_thread(install: Install, work: Path) -> None:
    started = time.monotonic()
    proc = flowrt_cli(install, "run", "flows.py:blocking", "-i", f"journal={work / 'j'}",
                      "--timeout", "0.3", cwd=work)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 15  # not the 60 s the node sleeps
    assert "'blocking' cancelled" in proc.stdout and "not waiting for 1 sync node" in proc.stderr


BAD_INPUTS: list[tuple[list[str], str]] = [
    (["run", "missing.py:wf"], "no such file: missing.py"),
    (["run", "no_such_module:wf"], "no module named 'no_such_module'"),
    (["run", "flows.py:nope"], "has no attribute 'nope'"),
    (["run", "flows.py:not_a_workflow"], "not a flowrt.Workflow"),
    (["run", "flows.py:helper"], "is a function (helper), not a flowrt.Workflow"),
    (["run", "flows.py"], "several workflows"),
    (["run", "bad_import.py:wf"], "RuntimeError: config missing"),
    (["run", "flows.py:cyclic"], "cycle"),
    (["run", "flows.py:wf", "-i", "n"], "-i takes KEY=VALUE, got 'n'"),
    (["run", "flows.py:wf", "-i", "=3"], "-i takes KEY=VALUE"),
    (["run", "flows.py:wf", "-i", "no-good=3"], "not a valid input name"),
    (["run", "flows.py:wf"], "missing run input: 'n' (needed by 'a'); give it with -i n=VALUE"),
    (["run", "flows.py:types_wf", "-i", "n=1"], "missing run inputs"),
    (["run", "flows.py:wf", "-i", "n=1", "--store", "notastore.txt"], "is not a flowrt store"),
    (["run", "flows.py:wf", "-i", "n=1", "--store", "other.db"], "is not a flowrt store"),
    (["run", "flows.py:wf", "-i", "n=1", "--inputs-json", "bad.json"], "is not valid JSON"),
    (["run", "flows.py:wf", "--inputs-json", "list.json"], "must hold a JSON object"),
    (["run", "flows.py:wf", "--inputs-json", "nowhere.json"], "cannot read nowhere.json"),
    (["run", "flows.py:wf", "--inputs-json", "latin1.json"], "latin1.json is not UTF-8 text"),
    (["run", "flows.py:wf", "--inputs-json", "deep.json"], "deep.json is not valid JSON"),
    (["run", "flows.py:wf", "-i", "n=1", "--store", ""], "--store: expected a value"),
    (["run", "flows.py:wf", "-i", "n=1", "--run-id", ""], "--run-id: expected a value"),
    (["run", "flows.py:wf", "-i", "n=1", "--limit", "api=1"],
     "no node of 'demo' uses a limit named 'api'; none of its nodes has a limit="),
    (["runs", "--store", ""], "--store: expected a value"),
    (["run", "flows.py:wf", "-i", "n=1", "--max-concurrency", "0"], "expected a whole number"),
    (["run", "flows.py:wf", "-i", "n=1", "--timeout", "-1"], "expected seconds > 0"),
    (["run", "flows.py:wf", "-i", "n=1", "-i", "a=2"], "is the name of a node"),
    (["graph", "flows.py:nope"], "has no attribute 'nope'"),
    (["graph", "flows.py:wf", "--format", "svg"], "invalid choice"),
    (["runs", "--store", "missing.db"], "no store at missing.db"),
    (["runs", "--store", "notastore.txt"], "is not a flowrt store"),
    (["runs", "--store", "other.db"], "is not a flowrt store"),
    (["runs"], "required: --store"),
    (["show", "nope", "--store", "empty-store.db"], "no run 'nope' in empty-store.db"),
    (["show", "nope", "--store", "notastore.txt"], "is not a flowrt store"),
    (["report", "nope", "--store", "empty-store.db", "-o", "x.html"], "no run 'nope'"),
    (["report", "nope", "--store", "other.db", "-o", "x.html"], "is not a flowrt store"),
    (["examples", "nosuch"], "no example named"),
    (["frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS,
                         ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_a_message(install: Install, work: Path, args: list[str],
                                          message: str) -> None:
    before = {p: p.read_bytes() for p in (work / "notastore.txt", work / "other.db")}
    proc = flowrt_cli(install, *args, cwd=work)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert message in proc.stderr, proc.stderr
    no_traceback(proc)
    for path, content in before.items():  # files that are no store are left untouched
        assert path.read_bytes() == content
    assert not (work / "missing.db").exists()


# -- graph -----------------------------------------------------------------------------------


def test_graph(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "graph", "flows.py:wf", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart TD") and "-->" in proc.stdout
    proc = flowrt_cli(install, "graph", "flows.py:wf", "--format", "dot", cwd=work)
    assert proc.returncode == 0
    assert proc.stdout.startswith("digraph demo {") and "a -> b;" in proc.stdout


# -- durable runs: run, runs, show, report, resume -------------------------------------------


def test_durable_run_then_runs_show_report(install: Install, work: Path) -> None:
    proc = flowrt_cli(install, "run", "flows.py:wf", "-i", "n=3", "--store", "runs.db",
                      "--run-id", "first", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "stored in runs.db as run first" in proc.stdout
    flowrt_cli(install, "run", "flows.py:broken", "--store", "runs.db", "--run-id", "second",
               cwd=work)

    proc = flowrt_cli(install, "runs", "--store", "runs.db", cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "id", "workflow"]
    assert lines[2].split()[:3] == ["first", "demo", "succeeded"]
    assert lines[3].split()[:3] == ["second", "broken", "failed"]
    proc = flowrt_cli(install, "runs", "--store", "runs.db", "--json", "--status", "failed",
                      cwd=work)
    assert [r["run_id"] for r in json.loads(proc.stdout)] == ["second"]

    proc = flowrt_cli(install, "show", "first", "--store", "runs.db", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert "run first of 'demo': succeeded" in proc.stdout
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[6:] if line}
    assert rows["b"][1:3] == ["succeeded", "2"] and rows["a"][1:3] == ["succeeded", "1"]
    proc = flowrt_cli(install, "show", "second", "--store", "runs.db", "--traceback",
                      cwd=work)
    assert "ValueError: row 7 is bad" in proc.stdout and "Traceback" in proc.stdout
    proc = flowrt_cli(install, "show", "second", "--store", "runs.db", "--json", cwd=work)
    data = json.loads(proc.stdout)
    assert data["nodes"]["save"]["status"] == "skipped"
    assert data["nodes"]["check"]["deps"] == ["load"]

    proc = flowrt_cli(install, "report", "second", "--store", "runs.db", "-o", "second.html",
                      cwd=work)
    assert proc.returncode == 0, proc.stderr
    page = (work / "second.html").read_text("utf-8")
    assert "<svg" in page and ">check<" in page and "row 7 is bad" in page

    proc = flowrt_cli(install, "run", "flows.py:wf", "--store", "runs.db", "--run-id", "first",
                      cwd=work)
    assert proc.returncode == 0
    assert "already succeeded" in proc.stderr


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def _journal(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a subprocess is POSIX")
def test_ctrl_c_cancels_a_durable_run_which_resumes(install: Install, work: Path) -> None:
    journal, marker = work / "journal", work / "marker"
    cmd = [str(install.python), "-m", "flowrt", "run", "flows.py:sensor", "--store", "runs.db",
           "--run-id", "nightly", "-i", f"journal={journal}", "-i", f"marker={marker}"]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_clean_env())
    try:
        _wait_for(lambda: "gate" in _journal(journal))
        proc.send_signal(signal.SIGINT)
        out, errors = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (out, errors)
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors
    assert "interrupted: run nightly of 'sensor' cancelled" in errors
    assert "--run-id nightly" in errors  # how to resume

    runs = flowrt_cli(install, "runs", "--store", "runs.db", "--json", cwd=work)
    assert [(r["run_id"], r["status"]) for r in json.loads(runs.stdout)] == [
        ("nightly", "cancelled")]
    shown = json.loads(flowrt_cli(install, "show", "nightly", "--store", "runs.db", "--json",
                                  cwd=work).stdout)
    assert shown["nodes"]["first"]["status"] == "succeeded"
    assert shown["nodes"]["gate"]["status"] == "cancelled"

    marker.write_text("go")
    resumed = flowrt_cli(install, "run", "flows.py:sensor", "--store", "runs.db",
                         "--run-id", "nightly", cwd=work)  # the inputs come from the store
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run nightly (cancelled): 1 of 3 nodes already succeeded" in resumed.stderr
    assert _journal(journal) == ["first", "gate", "gate", "last"]  # 'first' ran once
    assert "last = 3" in resumed.stdout


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a subprocess is POSIX")
def test_ctrl_c_does_not_wait_for_a_blocked_thread(install: Install, work: Path) -> None:
    journal = work / "journal"
    cmd = [str(install.python), "-m", "flowrt", "run", "flows.py:blocking",
           "-i", f"journal={journal}"]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_clean_env())
    try:
        _wait_for(lambda: "stuck" in _journal(journal))
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, errors = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, errors
    assert time.monotonic() - started < 10  # not the 60 s the node sleeps
    assert "Traceback" not in errors and "not waiting for 1 sync node" in errors


# -- in-process: pieces of the CLI -----------------------------------------------------------


def test_split_target() -> None:
    assert split_target("a/b.py:wf") == ("a/b.py", "wf")
    assert split_target("pkg.mod:wf.inner") == ("pkg.mod", "wf.inner")
    assert split_target("pkg.mod") == ("pkg.mod", None)
    assert split_target(r"C:\flows\x.py") == (r"C:\flows\x.py", None)
    with pytest.raises(UsageError):
        split_target("  ")
    with pytest.raises(UsageError):
        split_target(":wf")


def test_parse_value() -> None:
    assert parse_value("3") == 3
    assert parse_value("3.5") == 3.5
    assert parse_value("true") is True
    assert parse_value("null") is None
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("hello") == "hello"
    assert parse_value('"007"') == "007"
    assert parse_value("007") == "007"  # not JSON (leading zero): kept as is


def _events_of(wf: flowrt.Workflow, display: Any) -> flowrt.RunResult:
    display.expect(wf.name, len(wf))
    return wf.run_sync(on_event=display, run_id="r1")


def _small() -> flowrt.Workflow:
    wf = flowrt.Workflow("small")
    wf.add("a", lambda: 1)

    def b(a: int, ctx: flowrt.Context) -> int:
        if ctx.attempt == 1:
            raise ConnectionError("try again")
        return a

    wf.add("b", b, deps=["a"], retry=flowrt.Retry(attempts=2, delay=0))
    wf.add("c", lambda b: 1 / 0, deps=["b"])
    return wf


def test_plain_display_lines() -> None:
    stream, out = io.StringIO(), io.StringIO()
    display = PlainDisplay(stream, out)
    _events_of(_small(), display)
    display.say("narration")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[small r1] run started (3 nodes)"
    assert any("retrying   b: attempt 1 failed: ConnectionError: try again" in x for x in lines)
    assert any("failed     c: ZeroDivisionError: division by zero" in x for x in lines)
    assert lines[-1].startswith("[small r1] run failed in ")
    assert lines[-1].endswith("3 nodes: 2 succeeded, 1 failed; 1 retry")
    assert not any(" ready " in x for x in lines)
    assert out.getvalue() == "narration\n"


def test_plain_display_of_a_big_run_is_short() -> None:
    wf = flowrt.Workflow("wide")
    for i in range(2000):
        wf.add(f"n{i}", lambda: None, executor="loop")
    wf.add("bad", lambda: 1 / 0)
    stream = io.StringIO()
    _events_of(wf, PlainDisplay(stream, io.StringIO()))
    lines = stream.getvalue().splitlines()
    assert len(lines) < 20
    assert any("failed     bad" in x for x in lines)


def test_quiet_display_and_choice() -> None:
    assert isinstance(make_display("off"), QuietDisplay)
    assert isinstance(make_display("auto", stream=io.StringIO()), PlainDisplay)
    assert isinstance(make_display("plain"), PlainDisplay)


def test_live_display_draws_and_stops() -> None:
    pytest.importorskip("rich")
    stream = io.StringIO()
    display = LiveDisplay(stream, io.StringIO())
    display.console.force_terminal = True
    try:
        result = _events_of(_small(), display)
    finally:
        display.close()
    text = stream.getvalue()
    assert str(result.status) == "failed"
    assert "small" in text and "failed" in text and "ZeroDivisionError" in text


def test_examples_package_is_found_in_process() -> None:
    package = examples_package()
    assert set(package.EXAMPLES) == {"checkout", "etl", "api", "durable", "scheduled",
                                     "order_flow", "approval"}
    files = {p.stem for p in (REPO / "examples").glob("*.py")} - {"__init__"}
    assert files == set(package.EXAMPLES)  # every example module is registered


def test_main_in_process_graph(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "inproc_flows.py").write_text("import flowrt\nw = flowrt.Workflow('w')\n"
                                              "w.add('only', lambda: 1)\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["graph", "inproc_flows.py:w", "--format", "dot"]) == 0
    assert "only;" in capsys.readouterr().out
    assert cli.main(["graph", "inproc_flows.py:x"]) == 2
    assert "has no attribute 'x'" in capsys.readouterr().err


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("_restore_logging")
def test_main_in_process_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "inproc_run.py").write_text(
        "import flowrt\nw = flowrt.Workflow('w')\nw.add('double', lambda x: 2 * x)\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "inproc_run.py:w", "-i", "x=21", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == {"double": 42}


# -- run options: --limit, --fail-fast, --executor (issue 11, item 16) -----------------------

OPTIONS_FLOWS = '''
import os
import time

import anyio

import flowrt

RUNNING = [0, 0]  # now, most at once

limited = flowrt.Workflow("limited")

for i in range(4):
    @limited.node(name=f"call{i}", limit="api")
    async def call() -> None:
        RUNNING[0] += 1
        RUNNING[1] = max(RUNNING[1], RUNNING[0])
        await anyio.sleep(0.05)
        RUNNING[0] -= 1

@limited.node(after=["call0", "call1", "call2", "call3"])
def peak() -> int:
    return RUNNING[1]


failing = flowrt.Workflow("failing")

@failing.node
async def bad() -> None:
    await anyio.sleep(0.05)
    raise ValueError("early failure")

@failing.node
async def slow() -> str:
    await anyio.sleep(5)
    return "finished"


where = flowrt.Workflow("where")

@where.node
def sync_pid() -> int:
    return os.getpid()

@where.node
async def loop_pid() -> int:
    return os.getpid()
'''


@pytest.fixture
def options_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    name = f"options_flows_{tmp_path.name.replace('-', '_')}"  # a module of its own per test
    (tmp_path / f"{name}.py").write_text(OPTIONS_FLOWS)
    monkeypatch.chdir(tmp_path)
    return tmp_path / f"{name}.py"


def _exit_code(*args: str) -> int:
    """``main(args)``, with argparse's own exit (bad usage) as a return too."""
    try:
        return cli.main(list(args))
    except SystemExit as stop:
        return int(stop.code or 0)


def _main_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.usefixtures("_restore_logging")
def test_run_limit_caps_the_nodes_under_a_limit(capsys: pytest.CaptureFixture[str],
                                                options_flows: Path) -> None:
    target = f"{options_flows.name}:limited"
    code, data = _main_json(capsys, "run", target, "--json", "--limit", "api=1")
    assert code == 0 and data["outputs"]["peak"] == 1
    code, data = _main_json(capsys, "run", target, "--json", "--limit", "api=2")
    assert code == 0 and data["outputs"]["peak"] == 2


@pytest.mark.usefixtures("_restore_logging")
def test_run_fail_fast_cancels_the_running_nodes(capsys: pytest.CaptureFixture[str],
                                                 options_flows: Path) -> None:
    started = time.monotonic()
    code, data = _main_json(capsys, "run", f"{options_flows.name}:failing", "--json",
                            "--fail-fast")
    assert code == 1 and time.monotonic() - started < 4  # not the 5 s 'slow' sleeps
    assert data["nodes"]["bad"]["status"] == "failed"
    assert data["nodes"]["slow"]["status"] == "cancelled"


@pytest.mark.usefixtures("_restore_logging")
def test_run_executor_chooses_where_sync_nodes_run(capsys: pytest.CaptureFixture[str],
                                                   options_flows: Path) -> None:
    target = f"{options_flows.name}:where"
    code, data = _main_json(capsys, "run", target, "--json", "--executor", "process")
    assert code == 0
    assert data["outputs"]["sync_pid"] != data["outputs"]["loop_pid"] == os.getpid()
    code, data = _main_json(capsys, "run", target, "--json", "--executor", "loop")
    assert code == 0 and data["outputs"]["sync_pid"] == os.getpid()


RUN_OPTION_ERRORS: list[tuple[list[str], str]] = [
    (["--limit", "api"], "--limit takes NAME=N, got 'api'"),
    (["--limit", "=2"], "--limit takes NAME=N"),
    (["--limit", "api=0"], "N must be a whole number >= 1, got '0'"),
    (["--limit", "api=two"], "N must be a whole number >= 1, got 'two'"),
    (["--limit", "apx=2"], "no node of 'limited' uses a limit named 'apx'; did you mean 'api'?"),
    (["--executor", "gpu"], "invalid choice: 'gpu'"),
    (["--store", ""], "argument --store: expected a value, got an empty string"),
    (["--store", "  "], "argument --store: expected a value"),
    (["--run-id", ""], "argument --run-id: expected a value"),
]


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize(("args", "message"), RUN_OPTION_ERRORS,
                         ids=[" ".join(a) for a, _ in RUN_OPTION_ERRORS])
def test_bad_run_options_exit_2(capsys: pytest.CaptureFixture[str], options_flows: Path,
                                args: list[str], message: str) -> None:
    assert _exit_code("run", f"{options_flows.name}:limited", *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert list(options_flows.parent.glob("*.db")) == []  # nothing ran without a store


@pytest.mark.usefixtures("_restore_logging")
def test_a_refused_resume_does_not_say_resuming(capsys: pytest.CaptureFixture[str],
                                                options_flows: Path) -> None:
    (options_flows.parent / "inputs_flow.py").write_text(
        "import flowrt\nwf = flowrt.Workflow('inputs')\n"
        "wf.add('double', lambda n: 2 * n)\nwf.add('fail', lambda double: 1 / 0, "
        "deps=['double'])\n")
    assert _exit_code("run", "inputs_flow.py:wf", "-i", "n=1", "--store", "s.db",
                      "--run-id", "r") == 1
    capsys.readouterr()
    assert _exit_code("run", "inputs_flow.py:wf", "-i", "n=2", "--store", "s.db",
                      "--run-id", "r") == 2
    err = capsys.readouterr().err
    assert "other inputs" in err and "resuming" not in err, err
    assert _exit_code("run", "inputs_flow.py:wf", "--store", "s.db", "--run-id", "r") == 1
    err = capsys.readouterr().err
    assert "resuming run r (failed): 1 of 2 nodes already succeeded" in err, err


# -- what comes from a store is shown safely (issue 11, item 12) ------------------------------

HOSTILE_FLOWS = '''
import flowrt

evil = flowrt.Workflow("evil\\x1b]0;pwned\\x07")

@evil.node(name="clear\\x1b[2Jscreen")
def first() -> int:
    return 1

@evil.node(name="second")
def second(ctx: flowrt.Context) -> int:
    raise ValueError("bad \\x1b[31mred\\x1b[0m [bold]text[/] \\u202eevil\\x9b")
'''


@pytest.mark.usefixtures("_restore_logging")
def test_terminal_output_shows_control_characters_escaped(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hostile_flows.py").write_text(HOSTILE_FLOWS)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["run", "hostile_flows.py:evil", "--store", "h.db", "--run-id",
                     "r\x1b[1A", "--progress", "plain"])
    assert code == 1
    outputs = [capsys.readouterr()]
    for args in (["runs", "--store", "h.db"], ["show", "r\x1b[1A", "--store", "h.db"],
                 ["show", "r\x1b[1A", "--store", "h.db", "--traceback"],
                 ["show", "nope", "--store", "h.db"],
                 ["report", "r\x1b[1A", "--store", "h.db", "-o", "h.html"]):
        cli.main(args)
        outputs.append(capsys.readouterr())
    for captured in outputs:
        for text in (captured.out, captured.err):
            for control in ("\x1b", "\x07", "\x9b", "\u202e"):
                assert control not in text, (control, text)
    shown = outputs[2].out
    assert "clear\\x1b[2Jscreen" in shown and "bad \\x1b[31mred\\x1b[0m" in shown
    assert "\\u202eevil" in shown
    assert "latest: r\\x1b[1A" in outputs[4].err  # the hint naming stored run ids


def test_live_display_shows_markup_and_escapes_as_text() -> None:
    pytest.importorskip("rich")
    wf = flowrt.Workflow("markup")
    wf.add("a[/]", lambda: 1)

    def b(a: int) -> None:
        raise ValueError("[/] [bold]x\x1b[2J")

    wf.add("b", b, deps=["a[/]"])
    stream = io.StringIO()
    display = LiveDisplay(stream, io.StringIO())
    display.console.force_terminal = True
    try:
        result = _events_of(wf, display)
    finally:
        display.close()
    assert str(result.status) == "failed" and not result.hook_errors
    text = stream.getvalue()
    assert "[/] [bold]x\\x1b[2J" in text and "\x1b[2J" not in text


def test_run_json_with_a_lone_surrogate(install: Install, work: Path) -> None:
    (work / "surrogate.py").write_text(
        "import os\nimport flowrt\nwf = flowrt.Workflow('names')\n"
        "wf.add('name', lambda: os.fsdecode(b'caf\\xe9'))\n"
        "wf.add('fails', lambda name: 1 / 0 if name else None, deps=['name'])\n"
        "def boom(name):\n    raise ValueError(name)\n"
        "wf.add('boom', boom, deps=['name'])\n")
    # A UTF-8 terminal that refuses what is not UTF-8 (as a user's usually does)
    env = _clean_env(PYTHONIOENCODING="utf-8:strict")
    proc = subprocess.run([str(install.python), "-m", "flowrt", "run", "surrogate.py", "--json"],
                          cwd=work, capture_output=True, timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr  # a node failed; the JSON is whole
    assert b"Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["outputs"]["name"] == "caf\udce9"
    assert data["nodes"]["boom"]["error"] == "ValueError: caf\udce9"
    proc = subprocess.run([str(install.python), "-m", "flowrt", "run", "surrogate.py"],
                          cwd=work, capture_output=True, timeout=120, env=env)
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr, proc.stderr
    assert b"ValueError: caf\\udce9" in proc.stdout


@pytest.mark.usefixtures("_restore_logging")
def test_report_file_gets_the_store_mode_and_follows_no_link(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "modeflow.py").write_text(
        "import flowrt\nwf = flowrt.Workflow('m')\nwf.add('a', lambda: 1)\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "modeflow.py:wf", "--store", "m.db", "--run-id", "r", "-q"]) == 0
    for mode in (0o600, 0o640):
        os.chmod("m.db", mode)
        assert cli.main(["report", "r", "--store", "m.db", "-o", f"r{mode:o}.html"]) == 0
        assert stat.S_IMODE(os.stat(f"r{mode:o}.html").st_mode) == mode
    # A link planted where the page or its temporary file goes is never written through.
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, "out.html.tmp")
    os.symlink(victim, "out.html")
    assert cli.main(["report", "r", "--store", "m.db", "-o", "out.html"]) == 0
    assert victim.read_text() == "keep me"
    assert not os.path.islink("out.html") and "<svg" in Path("out.html").read_text()
    assert os.readlink("out.html.tmp") == str(victim)  # left alone
    assert [p.name for p in tmp_path.glob(".out.html*")] == []  # no temporary file left
    capsys.readouterr()
    assert _exit_code("report", "r", "--store", "m.db", "-o", "") == 2
    assert _exit_code("report", "r", "--store", "m.db", "-o", "nodir/r.html") == 2
    assert "cannot write nodir/r.html" in capsys.readouterr().err
    for command in (["runs"], ["show", "r"], ["report", "r"]):
        assert _exit_code(*command, "--store", "") == 2
        assert "--store: expected a value" in capsys.readouterr().err


# -- runs whose process died (issue 11, item 13) ---------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_a_killed_run_shows_interrupted_not_running(install: Install, work: Path) -> None:
    journal, marker = work / "journal", work / "marker"
    cmd = [str(install.python), "-m", "flowrt", "run", "flows.py:sensor", "--store", "runs.db",
           "--run-id", "nightly", "-i", f"journal={journal}", "-i", f"marker={marker}", "-q"]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_clean_env())
    try:
        _wait_for(lambda: "gate" in _journal(journal))
        # While its process lives, the run is running, and says by whom.
        live = flowrt_cli(install, "show", "nightly", "--store", "runs.db", cwd=work)
        assert f"nightly of 'sensor': running (by process {proc.pid} on" in live.stdout
        runs = flowrt_cli(install, "runs", "--store", "runs.db", "--json", cwd=work)
        assert [(r["status"], r["interrupted"]) for r in json.loads(runs.stdout)] == [
            ("running", False)]
        proc.kill()  # SIGKILL: nothing is recorded; the lease stays behind
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()

    runs = flowrt_cli(install, "runs", "--store", "runs.db", cwd=work)
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.splitlines()[2].split()[:3] == ["nightly", "sensor", "interrupted"]
    assert "--store runs.db --run-id nightly" in runs.stdout  # how to resume it
    listed = json.loads(flowrt_cli(install, "runs", "--store", "runs.db", "--json",
                                   cwd=work).stdout)
    assert listed[0]["status"] == "running" and listed[0]["interrupted"] is True
    assert listed[0]["owner"]["pid"] == proc.pid
    for status, ids in (("interrupted", ["nightly"]), ("running", [])):
        only = flowrt_cli(install, "runs", "--store", "runs.db", "--status", status, "--json",
                          cwd=work)
        assert [r["run_id"] for r in json.loads(only.stdout)] == ids

    shown = flowrt_cli(install, "show", "nightly", "--store", "runs.db", cwd=work)
    assert shown.returncode == 0, shown.stderr
    assert (f"run nightly of 'sensor': interrupted (stored as running, but process "
            f"{proc.pid} on") in shown.stdout
    assert "resume it with: python -m flowrt run TARGET --store runs.db --run-id nightly" in (
        shown.stdout)
    report = flowrt_cli(install, "report", "nightly", "--store", "runs.db", "-o", "n.html",
                        cwd=work)
    assert "interrupted" in report.stdout
    page = (work / "n.html").read_text("utf-8")
    assert ">interrupted</span>" in page and "<b>Interrupted</b>" in page

    # Resumed, it runs to its end; "started" is its first start in runs and in show.
    marker.write_text("go")
    resumed = flowrt_cli(install, "run", "flows.py:sensor", "--store", "runs.db",
                         "--run-id", "nightly", cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run nightly (interrupted): 1 of 3 nodes" in resumed.stderr
    runs = flowrt_cli(install, "runs", "--store", "runs.db", cwd=work)
    row = runs.stdout.splitlines()[2].split()
    assert row[:3] == ["nightly", "sensor", "succeeded"] and row[-1] == "1"
    shown = flowrt_cli(install, "show", "nightly", "--store", "runs.db", cwd=work).stdout
    assert f"  started  {row[3]} {row[4]}\n" in shown
    assert "  resumed  1 time, last at " in shown and "(since the last resume)" in shown
    data = json.loads(flowrt_cli(install, "show", "nightly", "--store", "runs.db", "--json",
                                 cwd=work).stdout)
    assert data["created"] < data["started"] and data["resumes"] == 1
    assert data["interrupted"] is False


def test_json_output_takes_any_value() -> None:
    """What nodes return is printed as JSON whatever it is (``--json``)."""
    import dataclasses

    from flowrt._engine.result import jsonable

    @dataclasses.dataclass
    class Point:
        x: int
        y: float

    class Sulky:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    value = {"nan": float("nan"), "big": 10 ** 5000, "bytes": b"caf\xe9", "set": {1},
             "point": Point(1, 2.5), "sulky": Sulky(), 3: (1, "s\udce9")}
    data = jsonable(value)
    out = io.StringIO()
    cli_common.print_json(data, out)
    back = json.loads(out.getvalue())
    assert back["nan"] == "nan" and back["big"].startswith("<int of 16610 bits")
    assert back["bytes"] == "caf\ufffd" and back["set"] == [1]
    assert back["point"] == {"x": 1, "y": 2.5} and back["sulky"].endswith("Sulky object>")
    assert back["3"] == [1, "s\udce9"]


@pytest.mark.usefixtures("_restore_logging")
def test_resumed_runs_tell_restored_nodes_from_nodes_run_again(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "resumable.py").write_text(
        "import os\nimport flowrt\nwf = flowrt.Workflow('resumable')\n"
        "wf.add('a', lambda: 1)\n"
        "def b(a):\n    if not os.path.exists('go'):\n        raise ValueError('not yet')\n"
        "    return a + 1\n"
        "wf.add('b', b, deps=['a'])\nwf.add('c', lambda b: b + 1, deps=['b'])\n")
    monkeypatch.chdir(tmp_path)
    args = ["run", "resumable.py:wf", "--store", "r.db", "--run-id", "r", "-q"]
    assert cli.main(args) == 1
    shown = capsys.readouterr().out
    assert "latest start" not in shown and "restored" not in shown  # nothing was resumed
    (tmp_path / "go").write_text("")
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "(3 nodes: 3 succeeded; 1 restored from the store)" in out
    table = {line.split()[0]: line.split() for line in out.splitlines()[4:7]}
    assert table["a"][1:] == ["succeeded", "1", table["a"][3], "restored"]
    assert table["b"][4] == table["c"][4] == "ran"

    assert cli.main(["show", "r", "--store", "r.db"]) == 0
    shown = capsys.readouterr().out
    assert "3 succeeded (1 restored from the store by the latest start" in shown
    rows = {line.split()[0]: line.split() for line in shown.splitlines()[8:11]}
    assert rows["a"][4] == "restored" and rows["b"][4] == rows["c"][4] == "ran"
    assert cli.main(["show", "r", "--store", "r.db", "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    assert {n: v["restored"] for n, v in nodes.items()} == {"a": True, "b": False, "c": False}
    assert cli.main(["report", "r", "--store", "r.db", "-o", "r.html"]) == 0
    page = Path("r.html").read_text("utf-8")
    assert page.count('class="tag"') == 1 and "restored from the store" in page
