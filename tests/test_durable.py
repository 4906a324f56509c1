"""Durable runs: real SQLite files, real processes killed with SIGKILL."""

from __future__ import annotations

import functools
import hashlib
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

import flowrt
from flowrt import MemoryStore, RunStatus, SQLiteStore, Status

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import durable_worker  # noqa: E402


def _worker(store: Path, run_id: str, log: Path, backend: str = "asyncio"
            ) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "durable_worker.py"), str(store), run_id, str(log), backend],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _starts(log: Path, pid: int | None = None) -> list[str]:
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [node for _, node, p in lines if pid is None or int(p) == pid]


def _succeeded_in_store(path: Path, run_id: str) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute(
            "SELECT node FROM nodes WHERE run_id = ? AND status = 'succeeded'", (run_id,))}
    finally:
        conn.close()


@pytest.mark.parametrize("seed", range(8))
def test_sigkill_at_random_points_then_resume(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store, log = tmp_path / "runs.db", tmp_path / "starts.log"
    backend = "trio" if seed % 2 else "asyncio"
    proc = _worker(store, "crash", log, backend)
    # wait until it has started some nodes, then kill it at a random moment
    deadline = time.monotonic() + 30
    while len(_starts(log)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.15))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL or proc.returncode == 0
    done_before = _succeeded_in_store(store, "crash") if store.exists() else set()

    rerun = _worker(store, "crash", log, backend)
    _out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err.decode()
    # nothing the store had recorded as succeeded started again
    assert not done_before & set(_starts(log, rerun.pid))
    # and the result is complete and right
    with SQLiteStore(store) as s:
        stored = s.load("crash")
        assert stored is not None and stored.record.status == "succeeded"
        assert stored.outputs() == durable_worker.expected()
        data = s.serializer.loads(stored.data) if stored.data else {}
    assert {k for k in data if k.startswith("seen-")} == {
        f"seen-n{i}" for i in range(0, 40, 7)}


def test_resume_after_failure_runs_only_the_failed_part(tmp_path: Path) -> None:
    calls: list[str] = []
    broken = True
    wf = flowrt.Workflow("fix")

    @wf.node
    def load() -> list[int]:
        calls.append("load")
        return [1, 2, 3]

    @wf.node
    def other() -> str:
        calls.append("other")
        return "independent"

    @wf.node
    def transform(load: list[int]) -> list[int]:
        calls.append("transform")
        if broken:
            raise ValueError("bad transform")
        return [x * 2 for x in load]

    @wf.node
    def save(transform: list[int]) -> int:
        calls.append("save")
        return sum(transform)

    db = tmp_path / "runs.db"
    first = wf.run_sync(store=str(db), run_id="etl-1")
    assert first.status is RunStatus.FAILED
    assert first.nodes["save"].status is Status.SKIPPED
    broken = False
    calls.clear()
    second = wf.run_sync(store=str(db), run_id="etl-1")
    assert second.ok and second["save"] == 12
    assert sorted(calls) == ["save", "transform"]
    assert second.nodes["load"].attempts == 1  # restored, not run
    calls.clear()
    third = wf.run_sync(store=str(db), run_id="etl-1")  # finished: nothing runs
    assert third.ok and third["save"] == 12 and calls == []
    assert third.nodes["transform"].status is Status.SUCCEEDED


def _two_step(extra: bool = False) -> flowrt.Workflow:
    wf = flowrt.Workflow("shape")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1, deps=["a"])
    if extra:
        wf.add("c", lambda b: b + 1, deps=["b"])
    return wf


def test_changed_structure_is_refused_unless_forced(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    wf = _two_step()
    wf.add("boom", lambda: 1 / 0)
    assert not wf.run_sync(store=db, run_id="r").ok
    changed = _two_step(extra=True)
    with pytest.raises(flowrt.WorkflowChanged, match=r"added 'c'.*removed 'boom'") as info:
        changed.run_sync(store=db, run_id="r")
    assert info.value.added == ["c"] and info.value.removed == ["boom"]
    result = changed.run_sync(store=db, run_id="r", resume="force")
    assert result.ok and result["c"] == 3
    with pytest.raises(ValueError, match="resume"):
        changed.run_sync(store=db, run_id="r", resume="sometimes")


def test_other_inputs_on_resume_are_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    wf = flowrt.Workflow("inputs")
    wf.add("a", lambda x: x)
    wf.add("b", lambda a: 1 / 0, deps=["a"])
    wf.run_sync({"x": 1}, store=db, run_id="r")
    with pytest.raises(ValueError, match="other inputs"):
        wf.run_sync({"x": 2}, store=db, run_id="r")
    result = wf.run_sync(store=db, run_id="r")  # no inputs: the stored ones
    assert result["a"] == 1


def test_unserializable_output_fails_the_node_and_says_why(tmp_path: Path) -> None:
    wf = flowrt.Workflow("ser")

    class Opaque:
        pass

    wf.add("obj", lambda: Opaque(), retries=3)
    wf.add("fine", lambda: {"ok": (1, 2)})
    result = wf.run_sync(store=str(tmp_path / "runs.db"))
    error = result.errors["obj"]
    assert isinstance(error, flowrt.SerializationError)
    assert "node 'obj'" in str(error) and "Opaque" in str(error) and "pickle" in str(error)
    assert result.nodes["obj"].attempts == 1  # not retried: it would fail the same way
    assert result["fine"] == {"ok": (1, 2)}


def test_pickle_serializer_is_opt_in(tmp_path: Path) -> None:
    class Box:
        def __init__(self, v: int) -> None:
            self.v = v

    wf = flowrt.Workflow("pickled")
    wf.add("box", lambda: Box(3))
    wf.add("bad", lambda box: 1 / 0, deps=["box"])
    store = SQLiteStore(tmp_path / "runs.db", serializer="pickle")
    try:
        first = wf.run_sync(store=store, run_id="p")
        assert first.status is RunStatus.FAILED
    finally:
        store.close()


def test_store_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    old = os.umask(0)
    try:
        store = SQLiteStore(db)
        wf = flowrt.Workflow("mode")
        wf.add("a", lambda: 1)
        wf.run_sync(store=store, run_id="m")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        store.close()
    finally:
        os.umask(old)


def test_corrupt_or_foreign_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is no database" * 100)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    wf = flowrt.Workflow("x")
    wf.add("a", lambda: 1)
    for path, message in ((garbage, "not a flowrt store"), (foreign, "customers")):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(flowrt.StoreError, match=message):
            wf.run_sync(store=str(path))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert not Path(f"{path}-wal").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    SQLiteStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(flowrt.StoreError, match="newer flowrt"):
        SQLiteStore(db)


@pytest.mark.anyio
async def test_concurrent_runs_share_one_file(tmp_path: Path) -> None:
    wf = flowrt.Workflow("many")

    @wf.node
    async def a(k: int) -> int:
        await anyio.sleep(0.001)
        return k

    @wf.node
    async def b(a: int) -> int:
        await anyio.sleep(0.001)
        return a * 2

    db = tmp_path / "runs.db"
    results = {}
    async with flowrt.Runtime(store=str(db)) as rt, anyio.create_task_group() as tg:
        for k in range(12):

            async def one(k: int = k) -> None:
                results[k] = await rt.run(wf, {"k": k}, run_id=f"run-{k}")

            tg.start_soon(one)
    assert all(results[k]["b"] == 2 * k for k in range(12))
    with SQLiteStore(db) as store:
        assert len(store.runs()) == 12
        assert all(r.status == "succeeded" for r in store.runs(workflow="many"))


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "log"
    procs = [_worker(db, f"proc-{k}", log) for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with SQLiteStore(db) as store:
        for k in range(3):
            stored = store.load(f"proc-{k}")
            assert stored is not None and stored.outputs() == durable_worker.expected()


def test_second_process_on_the_same_run_is_refused(tmp_path: Path) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "log"
    proc = _worker(db, "shared", log)
    try:
        deadline = time.monotonic() + 30
        while not _starts(log) and time.monotonic() < deadline:
            time.sleep(0.005)
        with pytest.raises(flowrt.RunLeased, match=f"process {proc.pid}"):
            durable_worker.build(str(log)).run_sync(store=str(db), run_id="shared")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # its holder is dead: the run can be resumed here
    result = durable_worker.build(str(log)).run_sync(store=str(db), run_id="shared")
    assert result.ok and dict(result.outputs) == durable_worker.expected()


@pytest.mark.anyio
async def test_same_run_twice_in_one_process_is_refused(tmp_path: Path) -> None:
    wf = flowrt.Workflow("twice")

    @wf.node
    async def slow() -> int:
        await anyio.sleep(0.2)
        return 1

    async with flowrt.Runtime(store=MemoryStore()) as rt, anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(rt.run, wf, run_id="same"))
        await anyio.sleep(0.05)
        with pytest.raises(flowrt.RunLeased):
            await rt.run(wf, run_id="same")


@pytest.mark.anyio
async def test_cancelled_run_stays_resumable(tmp_path: Path) -> None:
    wf = flowrt.Workflow("cancel")
    calls: list[str] = []

    @wf.node
    async def quick() -> int:
        calls.append("quick")
        return 1

    @wf.node
    async def slow(quick: int) -> int:
        calls.append("slow")
        await anyio.sleep(0.3)
        return quick + 1

    db = str(tmp_path / "runs.db")
    with anyio.move_on_after(0.1):
        await wf.run(store=db, run_id="c")
    with SQLiteStore(db) as store:
        run = store.get_run("c")
        assert run is not None and run.status == "cancelled"
        assert store.load("c").nodes["slow"].status == "cancelled"  # type: ignore[union-attr]
    result = await wf.run(store=db, run_id="c")
    assert result["slow"] == 2 and calls == ["quick", "slow", "slow"]


def test_listing_loading_deleting_pruning(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    wf = _two_step()
    for k in range(5):
        wf.run_sync(store=str(db), run_id=f"r{k}")
    with SQLiteStore(db) as store:
        assert [r.run_id for r in store.runs()] == [f"r{k}" for k in range(5)]
        stored = store.load("r0")
        assert stored is not None and stored.outputs() == {"a": 1, "b": 2}
        assert stored.nodes["b"].attempts == 1 and stored.record.duration is not None
        assert store.delete("r0") and not store.delete("r0")
        assert store.load("r0") is None
        assert store.prune(keep=2) == 2
        assert [r.run_id for r in store.runs()] == ["r3", "r4"]
        assert store.prune(older_than=3600) == 0
        assert store.prune(older_than=0) == 2


def test_memory_store_resumes_in_process() -> None:
    store = MemoryStore()
    broken = [True]
    wf = flowrt.Workflow("mem")
    wf.add("a", lambda: 1)

    def b(a: int) -> int:
        if broken[0]:
            raise RuntimeError
        return a + 1

    wf.add("b", b)
    assert not wf.run_sync(store=store, run_id="m").ok
    broken[0] = False
    result = wf.run_sync(store=store, run_id="m")
    assert result.ok and result["b"] == 2
    assert store.get_run("m").resumes == 1  # type: ignore[union-attr]


def test_resume_with_trigger_rules_after_restore(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    wf = flowrt.Workflow("refund")
    wf.add("charge", lambda: "paid")
    fail = [True]

    def ship(charge: str) -> str:
        if fail[0]:
            raise RuntimeError("no courier")
        return "shipped"

    wf.add("ship", ship, deps=["charge"])
    wf.add("refund", lambda: "refunded", after=["charge"], trigger="one_failed")
    first = wf.run_sync(store=db, run_id="t")
    assert first.nodes["refund"].status is Status.SKIPPED
    fail[0] = False
    second = wf.run_sync(store=db, run_id="t")
    assert second.ok and second.nodes["refund"].status is Status.SKIPPED


def test_fingerprint_ignores_the_order_nodes_were_added_in(tmp_path: Path) -> None:
    def build(order: list[str]) -> flowrt.Workflow:
        wf = flowrt.Workflow("fp")
        makers = {
            "a": lambda: wf.add("a", lambda: 1),
            "b": lambda: wf.add("b", lambda: 2),
            "c": lambda: wf.add("c", lambda a, b: a + b, deps=["a", "b"]),
        }
        for name in order:
            makers[name]()
        return wf

    assert build(["a", "b", "c"]).compile().fingerprint == \
        build(["b", "a", "c"]).compile().fingerprint
    assert build(["c", "a", "b"]).compile().fingerprint == \
        build(["a", "b", "c"]).compile().fingerprint


def test_an_error_before_the_run_starts_gives_the_lease_back(tmp_path: Path) -> None:
    wf = flowrt.Workflow("lease")
    wf.add("a", lambda x: x)

    async def main() -> None:
        async with flowrt.Runtime(store=str(tmp_path / "runs.db")) as rt:
            with pytest.raises(ValueError, match="name of a node"):
                await rt.run(wf, {"x": 1, "a": 2}, run_id="r")
            with pytest.raises(ValueError, match="limit 'db'"):
                await rt.run(wf, {"x": 1}, run_id="r", limits={"db": 0})
            result = await rt.run(wf, {"x": 1}, run_id="r")
            assert result["a"] == 1

    anyio.run(main)


def test_unstorable_data_fails_only_the_node_that_set_it(tmp_path: Path) -> None:
    wf = flowrt.Workflow("bad-data")

    @wf.node
    def setter(ctx: flowrt.Context) -> None:
        ctx.data.set("handle", object())

    @wf.node
    def later(setter: None) -> str:
        return "fine"

    @wf.node
    async def independent() -> str:
        await anyio.sleep(0.05)
        return "fine too"

    result = wf.run_sync(store=str(tmp_path / "runs.db"))
    error = result.errors["setter"]
    assert "key 'handle'" in str(error) and "object" in str(error)
    assert set(result.errors) == {"setter"}
    assert result["independent"] == "fine too"


def test_resuming_with_the_same_dataclass_inputs(tmp_path: Path) -> None:
    import dataclasses

    @dataclasses.dataclass
    class Order:
        id: str
        qty: int

    wf = flowrt.Workflow("dc")
    fail = [True]

    def check(order: Order) -> int:
        if fail[0]:
            raise RuntimeError("not yet")
        return order.qty

    wf.add("check", check)
    db = str(tmp_path / "runs.db")
    assert not wf.run_sync({"order": Order("A", 3)}, store=db, run_id="r").ok
    fail[0] = False
    result = wf.run_sync({"order": Order("A", 3)}, store=db, run_id="r")
    assert result["check"] == 3  # the caller's object, not the stored dict
