"""SQLite's own: hostile, damaged, full and shared store files (issue 11, items 7 to 11,
15); migrating a store written by flowrt 0.1.0. What every store does is in
tests/test_store_conformance.py."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from stores import CANCEL_PROGRAM
from subproc import run_program
from test_store_conformance import Item, typed_workflow

import flowrt
from flowrt import SQLiteStore
from flowrt.tools import report

HERE = Path(__file__).parent
FIXTURE_V1 = HERE / "data" / "store-v1.db"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowrt", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def _sql(db: Path, *statements: str, args: tuple[Any, ...] = ()) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement, args if "?" in statement else ())
    finally:
        conn.close()


def _flaky(broken: list[bool]) -> flowrt.Workflow:
    wf = flowrt.Workflow("flaky")
    wf.add("a", lambda: {"rows": [1, 2]})

    def b(a: dict[str, Any]) -> int:
        if broken[0]:
            raise RuntimeError("b is broken")
        return len(a["rows"])

    wf.add("b", b)
    return wf


# -- item 7: no code from a store --------------------------------------------------------


class _Marker:
    """Unpickling this runs ``open(path, "w")``: the file appearing is the proof."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


def test_a_pickle_in_a_json_store_is_never_loaded(tmp_path: Path) -> None:
    db, marker = tmp_path / "runs.db", tmp_path / "PWNED"
    _flaky([True]).run_sync(store=str(db), run_id="r")
    payload = pickle.dumps(_Marker(marker))
    _sql(db, "UPDATE runs SET serializer = 'pickle', inputs = ?", args=(payload,))
    _sql(db, "UPDATE nodes SET output = ? WHERE node = 'a'", args=(payload,))
    before = _sha(db)

    with SQLiteStore(db) as store:  # the default: JSON
        stored = store.load("r")
        assert stored is not None
        html = report.render(stored)
        assert "flaky" in html
        with pytest.raises(flowrt.StoreError, match=r"pickle.*serializer='pickle'"):
            stored.outputs()
        with pytest.raises(flowrt.StoreError, match="pickle"):
            stored.inputs()
    with pytest.raises(flowrt.StoreError, match="pickle"):
        _flaky([False]).run_sync(store=str(db), run_id="r")
    out = _cli("report", "r", "--store", str(db), "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()
    assert _sha(db) == before
    # a store opened for pickles is the caller's choice: then it is read
    with SQLiteStore(db, serializer="pickle") as store:
        store.load("r").inputs()  # type: ignore[union-attr]
    assert marker.exists()


# -- item 9: several processes on one healthy store ---------------------------------------


_WRITER = """
import sys, time, flowrt
wf = flowrt.Workflow("busy")
for i in range(20):
    wf.add(f"n{i}", lambda i=i: "x" * 20_000 + str(i))
deadline = time.monotonic() + float(sys.argv[2])
k = 0
with flowrt.SQLiteStore(sys.argv[1]) as store:
    while time.monotonic() < deadline:
        assert wf.run_sync(store=store, run_id=f"w{k}").ok
        k += 1
print(k)
"""

_OPENER = """
import sys, time, flowrt
bad = []
n = 0
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    n += 1
    try:
        with flowrt.SQLiteStore(sys.argv[1]) as store:
            store.runs()
    except flowrt.StoreError as error:
        bad.append(str(error))
print(n, len(bad), bad[:3])
"""


def test_opening_a_store_while_another_process_writes_it(tmp_path: Path) -> None:
    """Before: ~1.9% of the opens said "not a flowrt store: database disk image is
    malformed" (a read-only look with immutable=1, which ignores the WAL)."""
    db = tmp_path / "runs.db"
    SQLiteStore(db).close()
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), "6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    openers = [subprocess.Popen([sys.executable, "-c", _OPENER, str(db), "5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    opens = 0
    for p in openers:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        n, bad, sample = out.split(" ", 2)
        assert bad == "0", sample
        opens += int(n)
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert opens > 20 and int(out) >= 1  # opens and writes did overlap
    print(f"{opens} opens while another process wrote {out.strip()} runs: no error")


_CREATOR = """
import sys, time, flowrt
folder, t0, me, files = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
wf = flowrt.Workflow("first")
wf.add("a", lambda: 1)
for k in range(files):  # file k at t0 + k * 0.15 s, at the same moment in every process
    time.sleep(max(0.0, t0 + k * 0.15 - time.time()))
    assert wf.run_sync(store=f"{folder}/new-{k}.db", run_id=me).ok
print("ok")
"""


def test_creating_a_store_waits_for_another_process_lock(tmp_path: Path) -> None:
    """Before: a raw "database is locked" at once. Switching a new file to WAL mode while
    another connection holds a write lock on it returns SQLITE_BUSY without waiting for
    the busy timeout (the holder might be waiting for this one: SQLite's deadlock
    avoidance); the store retries until busy_timeout."""
    db = tmp_path / "new.db"
    db.touch(mode=0o600)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, time
        conn = sqlite3.connect({str(db)!r}, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        print("held", flush=True)
        time.sleep(0.8)
        conn.execute("ROLLBACK")
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with SQLiteStore(db, busy_timeout=10) as store:
            assert store.runs() == []
        assert time.monotonic() - started > 0.3  # it waited for the holder
    finally:
        holder.wait(timeout=30)
    with pytest.raises(flowrt.StoreError, match="busy_timeout"):
        conn = sqlite3.connect(tmp_path / "other.db", isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # held for longer than the store waits
            SQLiteStore(tmp_path / "other.db", busy_timeout=0.2)
        finally:
            conn.close()


def test_processes_racing_to_create_one_store(tmp_path: Path) -> None:
    """8 processes create 20 stores together (160 creations), each then writing a run."""
    files = 20
    t0 = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _CREATOR, str(tmp_path), str(t0), f"p{k}",
                               str(files)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(8)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "ok", err[-3000:]
    for k in range(files):
        with SQLiteStore(tmp_path / f"new-{k}.db") as store:
            assert sorted(r.run_id for r in store.runs()) == [f"p{i}" for i in range(8)]


# -- item 10: a full disk ---------------------------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_full_disk_stops_the_run_and_the_store_recovers(tmp_path: Path, backend: str) -> None:
    out = run_program(f"""
        import os, resource, sqlite3, anyio, flowrt
        DB = {str(tmp_path / "runs.db")!r}
        BIG = 2_000_000

        wf = flowrt.Workflow("disk")

        @wf.node
        async def a(ctx: flowrt.Context) -> int:
            return 1

        @wf.node
        async def big(a: int, ctx: flowrt.Context) -> str:
            await anyio.sleep(0.1)  # a's end is committed first, alone
            return "x" * BIG

        @wf.node
        async def c(big: str, ctx: flowrt.Context) -> int:
            await anyio.sleep(0.3)
            print("ran c", ctx.run_id, flush=True)
            return len(big)

        @wf.node
        async def d(c: int, ctx: flowrt.Context) -> int:
            print("ran d", ctx.run_id, flush=True)
            return c

        def limit(size):
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

        async def main():
            store = flowrt.SQLiteStore(DB)
            async with flowrt.Runtime(store=store) as rt:
                small = flowrt.Workflow("small")
                small.add("x", lambda: 1)
                assert (await rt.run(small, run_id="warm")).ok
                limit(os.path.getsize(DB + "-wal") + 300_000)
                for run_id in ("full", "full-2"):  # the second starts on a full disk
                    try:
                        await rt.run(wf, run_id=run_id)
                    except flowrt.StoreError as error:
                        print("error", run_id, str(error).replace(chr(10), " "), flush=True)
                    else:
                        print("no error", run_id)
                limit(resource.RLIM_INFINITY)  # space is back
                print("space is back", flush=True)
                result = await rt.run(wf, run_id="full")
                print("resumed", result.status, result.nodes["a"].restored,
                      result.nodes["big"].restored, result["d"] == BIG)
                print("new", (await rt.run(wf, run_id="after")).status)
            store.close()
            conn = sqlite3.connect(DB)
            print("leases", conn.execute("SELECT count(*) FROM runs WHERE lease IS NOT NULL "
                                         "OR status = 'running'").fetchone()[0])

        anyio.run(main, backend=BACKEND)
        """, backend=backend, timeout=90)
    lines = out.splitlines()
    errors = [line for line in lines if line.startswith("error full ")]
    assert len(errors) == 1, out
    assert "disk I/O error" in errors[0] or "full" in errors[0].split(" ", 2)[2], out
    assert "cannot rollback" not in out
    assert any(line.startswith("error full-2 ") for line in lines), out
    # nothing ran after the checkpoint it could not write
    while_full = lines[: lines.index("space is back")]
    assert not [line for line in while_full if line.startswith("ran")], out
    assert "resumed succeeded True False True" in lines, out
    assert "new succeeded" in lines and "leases 0" in lines, out


# -- item 11: damaged and unusual stores ----------------------------------------------------


_TARGET = """
import flowrt

wf = flowrt.Workflow("flaky")
wf.add("a", lambda: {"rows": [1, 2]})
wf.add("b", lambda a: len(a["rows"]))
"""


def _damaged_store(tmp_path: Path, *damage: str) -> Path:
    db = tmp_path / "runs.db"
    _flaky([True]).run_sync(store=str(db), run_id="r")
    _sql(db, *damage)
    (tmp_path / "flows.py").write_text(textwrap.dedent(_TARGET))
    return db


@pytest.mark.parametrize(("damage", "message", "at_open"), [
    (("UPDATE meta SET value = '0' WHERE key = 'schema_version'",), "schema version 0", True),
    (("UPDATE meta SET value = 'two' WHERE key = 'schema_version'",), "'two'", True),
    (("DROP TABLE nodes",), "table 'nodes' is missing", True),
    (("ALTER TABLE runs DROP COLUMN fence",), "no column 'fence'", True),
    (("UPDATE runs SET structure = '{\"a\": ['",), "structure", False),
    # JSON, but not node names to lists of names (checked without a loop per node)
    (("UPDATE runs SET structure = '[\"a\", \"b\"]'",), "structure", False),
    (("UPDATE runs SET structure = '{\"a\": [], \"b\": \"a\"}'",), "structure", False),
    (("UPDATE runs SET structure = '{\"a\": [], \"b\": [\"a\", 7]}'",), "structure",
     False),
    (("UPDATE runs SET lease = 'held'",), "not a lease", False),
])
def test_a_damaged_store_is_a_store_error_and_stays_as_it_was(
        tmp_path: Path, damage: tuple[str, ...], message: str, at_open: bool) -> None:
    db = _damaged_store(tmp_path, *damage)
    before = _sha(db)
    if at_open:
        with pytest.raises(flowrt.StoreError, match=message):
            SQLiteStore(db)
    else:
        with SQLiteStore(db) as store:
            for read in (store.runs, lambda: store.load("r"), lambda: store.get_run("r")):
                with pytest.raises(flowrt.StoreError, match=f"run 'r'.*{message}"):
                    read()
    with pytest.raises(flowrt.StoreError, match=message):
        _flaky([False]).run_sync(store=str(db), run_id="r")
    commands = [["runs", "--store", str(db)], ["show", "r", "--store", str(db)],
                ["report", "r", "--store", str(db), "-o", str(tmp_path / "r.html")],
                ["run", "flows.py:wf", "--store", str(db), "--run-id", "r"]]
    for command in commands:
        out = _cli(*command, cwd=tmp_path)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and message.split()[0] in out.stderr, out.stderr
    assert _sha(db) == before


def test_outputs_rewritten_as_text_by_another_tool_are_read_back(tmp_path: Path) -> None:
    """SQLite keeps whatever type a tool writes: outputs (of nodes and of map items) that
    a tool rewrote as TEXT are read as their UTF-8 bytes, and a resume restores them."""
    db = tmp_path / "runs.db"
    broken, ran = [True], []
    wf = flowrt.Workflow("text")
    wf.add("a", lambda: {"rows": [1, 2, 3]})
    wf.add("rows", lambda a: a["rows"])

    def double(n: int) -> int:
        ran.append(n)
        if broken[0] and n == 3:
            raise RuntimeError("item 2 is broken")
        return 2 * n

    wf.add("double", double, map={"n": "rows"})
    wf.add("total", lambda a, double: len(a["rows"]) + sum(double))
    assert not wf.run_sync(store=str(db), run_id="r").ok
    _sql(db, "UPDATE nodes SET output = CAST(output AS TEXT) WHERE output IS NOT NULL",
         "UPDATE item_batches SET outputs = CAST(outputs AS TEXT) WHERE outputs IS NOT NULL")
    with SQLiteStore(db) as store:
        stored = store.load("r")
        assert stored is not None
        assert stored.nodes["a"].output == b'{"rows":[1,2,3]}'
        assert stored.items["double"][1].output == b"4"
    broken[0] = False
    ran.clear()
    result = wf.run_sync(store=str(db), run_id="r")
    assert result.ok and result["total"] == 3 + 12
    assert ran == [3]  # items 0 and 1 restored from their text outputs
    assert result.nodes["a"].restored


@pytest.mark.parametrize(("damage", "message"), [
    ("UPDATE nodes SET output = X'7b22' WHERE node = 'a'", "output of node 'a'"),
    ("UPDATE runs SET inputs = X'5b' WHERE run_id = 'r'", "inputs of run 'r'"),
    ("INSERT INTO data VALUES ('r', X'7b7b')", "WorkflowData of run 'r'"),
])
def test_damaged_stored_values_refuse_the_resume_before_taking_the_run(
        tmp_path: Path, damage: str, message: str) -> None:
    db = _damaged_store(tmp_path, damage)
    before = _sha(db)
    with pytest.raises(flowrt.StoreError, match=f"{message}.*damaged"):
        _flaky([False]).run_sync(store=str(db), run_id="r")
    out = _cli("run", "flows.py:wf", "--store", str(db), "--run-id", "r", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "damaged" in out.stderr
    with SQLiteStore(db) as store:
        record = store.get_run("r")
        assert record is not None and record.status == "failed" and record.fence == 1
        if "output" in message:
            with pytest.raises(flowrt.StoreError, match="output of node 'a'"):
                store.load("r").outputs()  # type: ignore[union-attr]
    assert _sha(db) == before  # not claimed, not rewritten as cancelled


_DROP_ROOT_OVERRIDE = """
import ctypes
# Root writes anywhere: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (from the bounding
# set too, so that the CLI this starts has them not either) and obey file modes.
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):
    assert libc.prctl(24, cap, 0, 0, 0) == 0  # PR_CAPBSET_DROP
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
header, data = Header(0x20080522, 0), (Data * 2)()
assert libc.capget(ctypes.byref(header), data) == 0
for field in ("effective", "permitted", "inheritable"):
    setattr(data[0], field, getattr(data[0], field) & ~0b110)
assert libc.capset(ctypes.byref(header), data) == 0
"""


def test_a_store_in_a_read_only_directory(tmp_path: Path) -> None:
    """A StoreError that says why, not sqlite3.OperationalError; the CLI exits 2."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "runs.db"
    _flaky([True]).run_sync(store=str(db), run_id="r")
    before = _sha(db)
    check = (_DROP_ROOT_OVERRIDE if os.geteuid() == 0 else "") + textwrap.dedent(f"""
        import flowrt, subprocess, sys
        try:
            flowrt.SQLiteStore({str(db)!r})
        except flowrt.StoreError as error:
            print("refused:", error)
        for command in (["runs"], ["show", "r"]):
            out = subprocess.run([sys.executable, "-m", "flowrt", *command, "--store",
                                  {str(db)!r}], capture_output=True, text=True)
            print("cli", out.returncode, "Traceback" in out.stderr, out.stderr.strip())
        """)
    folder.chmod(0o555)
    try:
        proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                              timeout=60)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "is not writable" in proc.stdout, proc.stdout
    clis = [line for line in proc.stdout.splitlines() if line.startswith("cli")]
    assert len(clis) == 2, proc.stdout
    assert all(line.startswith("cli 2 False ") and "not writable" in line for line in clis)
    assert _sha(db) == before


# -- item 15: typed outputs come back typed (the rest: tests/test_store_conformance.py) --------


def test_a_stored_output_that_no_longer_fits_its_class_refuses_the_resume(
        tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    fail = [True]
    typed_workflow(fail).run_sync({"code": Item("sku-1", 0)}, store=str(db), run_id="t")
    # as if Quote had gained its required field 'price' after the run was stored
    _sql(db, "UPDATE nodes SET output = '{\"_note\": \"cheap\"}' WHERE node = 'quote'")
    before = _sha(db)
    fail[0] = False
    with pytest.raises(flowrt.SerializationError, match=r"node 'quote'.*price"):
        typed_workflow(fail).run_sync(store=str(db), run_id="t")
    assert _sha(db) == before


# -- schema 1 -> current------------------------------------------------------------------------


def _fixture_workflow(calls: list[str]) -> flowrt.Workflow:
    """The workflow of tests/data/make_store_v1.py, healthy."""
    wf = flowrt.Workflow("fixture")

    @wf.node
    def a() -> int:
        calls.append("a")
        return 1

    @wf.node
    def b(a: int, ctx: flowrt.Context) -> int:
        calls.append("b")
        ctx.data.set("seen", ["b", a])
        return a + 1

    @wf.node
    def c(b: int) -> int:
        calls.append("c")
        return b * 10

    @wf.node
    def d(a: int) -> dict:  # type: ignore[type-arg]
        calls.append("d")
        return {"a": a, "pair": (1, 2)}

    return wf


def test_a_store_written_by_flowrt_0_1_is_migrated_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shutil.copyfile(FIXTURE_V1, db)
    with SQLiteStore(db) as store:
        assert {r.run_id: r.status for r in store.runs()} == {
            "done": "succeeded", "half": "failed", "crashed": "running"}
        crashed = store.get_run("crashed")
        assert crashed is not None and crashed.is_interrupted() and crashed.fence == 0
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (str(flowrt.durable._sqlite.SCHEMA_VERSION),)
    finally:
        conn.close()
    for run_id, ran in (("done", []), ("half", ["b", "c"]), ("crashed", ["c"])):
        calls: list[str] = []
        result = _fixture_workflow(calls).run_sync(store=str(db), run_id=run_id)
        assert result.ok and sorted(calls) == ran, (run_id, calls)
        assert result["c"] == 20 and result["d"] == {"a": 1, "pair": (1, 2)}
        assert result.data.get("seen") == ["b", 1]
    with SQLiteStore(db) as store:
        assert all(r.status == "succeeded" and r.owner is None for r in store.runs())
        assert store.load("half").restored("a")  # type: ignore[union-attr]


# -- a run's end waits for the writer in the event loop (decision 029) -----------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_end_of_a_run_waits_for_the_writer_and_not_for_a_dead_one(
        tmp_path: Path, backend: str) -> None:
    """``flushed`` returns once the writer committed (it calls back into the loop), and
    fails with the writer's error -- instead of waiting forever -- when it died."""
    import anyio

    from flowrt.durable._run import flushed

    store = SQLiteStore(tmp_path / "s.db")

    async def main() -> None:
        wf = flowrt.Workflow("w")
        wf.add("m", lambda n: n, map={"n": "numbers"})
        wf.add("numbers", lambda: [1, 2, 3])
        with anyio.fail_after(10):
            assert (await wf.run(store=store, run_id="r"))["m"] == [1, 2, 3]
            await flushed(store)

        def broken(*args: Any) -> None:
            raise ZeroDivisionError("a bug in the writer")

        store._commit = broken  # type: ignore[method-assign]
        with anyio.fail_after(10), pytest.raises(flowrt.StoreError,
                                                 match="a bug in the writer"):
            await flushed(store)

    try:
        anyio.run(main, backend=backend)
    finally:
        store.close()
    with SQLiteStore(tmp_path / "s.db") as again:
        assert again.get_run("r").status == "succeeded"  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("how", ["outer", "timeout", "fail_fast"])
def test_durable_runs_cancelled_every_way_stay_consistent_on_sqlite(
        tmp_path: Path, how: str, backend: str) -> None:
    """As on PostgreSQL (test_postgres.py): cancelled while claiming, waiting for a
    limit, retrying or running, the run is recorded as ended, and a resume runs only
    what was not recorded. 15 trials per case, in a subprocess (a hang fails it)."""
    out = run_program(CANCEL_PROGRAM.format(spec=str(tmp_path / "c.db"), how=how, trials=15),
                      backend=backend, timeout=120)
    assert out.strip().endswith("ok")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_durable_maps_cancelled_at_random_end_recorded_and_never_hang(backend: str) -> None:
    """A durable map on SQLite stopped by an outer scope, by its run timeout or by
    fail_fast, at random moments: every run ends, its end is recorded (never left
    "running"), and a resume finishes it."""
    out = run_program('''
        import random, tempfile, os
        import anyio
        import flowrt

        rng = random.Random(13)
        wf = flowrt.Workflow("cancel-map")
        wf.add("numbers", lambda: list(range(200)))

        async def item(n):
            await anyio.sleep(rng.uniform(0, 0.002))
            if FAIL and n == 150:
                raise RuntimeError("item 150")
            return n

        wf.add("m", item, map={"n": "numbers"}, concurrency=20)
        FAIL = False

        async def main():
            global FAIL
            db = os.path.join(tempfile.mkdtemp(), "s.db")
            async with flowrt.Runtime(store=db) as rt:
                for trial in range(60):
                    mode = trial % 3
                    FAIL = mode == 2
                    run_id = f"r{trial}"
                    if mode == 0:
                        with anyio.move_on_after(rng.uniform(0, 0.03)):
                            await rt.run(wf, run_id=run_id)
                    elif mode == 1:
                        await rt.run(wf, run_id=run_id, timeout=rng.uniform(0.001, 0.03))
                    else:
                        await rt.run(wf, run_id=run_id, fail_fast=True)
                    run = rt.store.get_run(run_id)
                    assert run is None or run.status != "running", (trial, run)
                FAIL = False
                with anyio.fail_after(30):
                    for trial in range(0, 60, 7):
                        result = await rt.run(wf, run_id=f"r{trial}")
                        assert result.ok and result["m"] == list(range(200)), trial
            print("ok")

        anyio.run(main, backend=BACKEND)
    ''', backend=backend, timeout=120)
    assert out.strip() == "ok"
