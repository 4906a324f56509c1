"""One owner per run, for real: claims read and lease in one transaction, and fencing
tokens make the store refuse every write of a holder that lost its run (issue 11, item
6). Real processes on one SQLite file; SIGSTOP/SIGCONT for a paused holder.

Before the fix, two processes starting or resuming one run id at the same moment both
ran every node in about 30% of the trials, and a holder paused past ``lease_ttl`` kept
writing after another process had taken over.
"""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import flowrt
from flowrt import MemoryStore, SQLiteStore
from flowrt.durable import Lease, NodeRecord, RunRecord

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import lease_worker  # noqa: E402


def _spawn(*args: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE / "lease_worker.py"), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _events(log: Path) -> list[tuple[str, str, str, int, float]]:
    """(event, run id, node, pid, time) for every line of a worker log."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        event, run_id, node, pid, when = line.split()
        out.append((event, run_id, node, int(pid), float(when)))
    return out


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.01)


def _write_lock_free(db: Path) -> bool:
    conn = sqlite3.connect(db, timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


TRIALS = 60  # per kind; before the fix ~30% of the trials ran nodes twice


@pytest.mark.parametrize("kind", ["start", "resume"])
def test_two_processes_racing_for_one_run_id_run_each_node_once(tmp_path: Path,
                                                                 kind: str) -> None:
    db, log = tmp_path / "runs.db", tmp_path / "log"
    nodes = ["n0", "n1", "n2", "n3", "b"]
    expected = dict.fromkeys(nodes, 1)
    if kind == "resume":  # runs that failed at n2: n0, n1 and b succeeded
        wf = lease_worker.build(str(tmp_path / "setup.log"), 4, 0.0, fail_at="n2")
        with SQLiteStore(db) as store:
            for k in range(TRIALS):
                assert not wf.run_sync(store=store, run_id=f"resume-{k}").ok
        expected = {"n0": 0, "n1": 0, "b": 0, "n2": 1, "n3": 1}
    else:
        SQLiteStore(db).close()  # racing to create the store is test_sharing's
    t0 = time.time() + 2.0  # both processes are up by then
    racers = [_spawn("race", db, log, backend, kind, TRIALS, t0, 0.05, seed)
              for backend, seed in (("asyncio", 1), ("trio", 2))]
    outcomes: dict[int, list[str]] = collections.defaultdict(list)
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        for line in out.splitlines():
            k, what = line.split(" ", 1)
            outcomes[int(k)].append(what)
    runs: collections.Counter[tuple[str, str]] = collections.Counter(
        (run_id, node) for event, run_id, node, _, _ in _events(log) if event == "start")
    doubles = {key: c for key, c in runs.items() if c > 1}
    assert not doubles, f"nodes run more than once: {doubles}"
    for k in range(TRIALS):
        got = {node: runs[(f"{kind}-{k}", node)] for node in nodes}
        assert got == expected, (k, got, outcomes[k])
        assert len(outcomes[k]) == 2
    refused = sum(what == "leased" for whats in outcomes.values() for what in whats)
    replayed = sum(what == "ran 0" for whats in outcomes.values() for what in whats)
    print(f"{kind}: {TRIALS} trials, 0 double executions; the second process was refused "
          f"{refused} times and replayed the finished run {replayed} times")


def test_a_paused_holder_is_fenced_out_and_stops(tmp_path: Path) -> None:
    """SIGSTOP the holder past lease_ttl, let another process take the run over, SIGCONT
    the first: its late writes are refused, it stops without starting another node, and
    only the second reports succeeded."""
    db, log = tmp_path / "runs.db", tmp_path / "log"
    ttl = 1.0
    holder = _spawn("run", db, "r", log, "asyncio", ttl, 6, 0.4)
    try:
        _wait_for(lambda: any(e[0] == "start" and e[2] == "n1" for e in _events(log)))
        time.sleep(0.1)
        while True:  # paused while holding SQLite's write lock, it would block everyone
            holder.send_signal(signal.SIGSTOP)
            if _write_lock_free(db):
                break
            holder.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        stopped_at = time.time()
        time.sleep(ttl + 0.5)  # its lease runs out
        taker = _spawn("run", db, "r", log, "trio", ttl, 6, 0.4)
        _wait_for(lambda: any(e[0] == "start" and e[3] == taker.pid for e in _events(log)))
        time.sleep(0.1)
        resumed_at = time.time()
        holder.send_signal(signal.SIGCONT)
        out_h, err_h = holder.communicate(timeout=30)
        out_t, err_t = taker.communicate(timeout=60)
    finally:
        for p in (holder,):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
    assert holder.returncode == 3, (out_h, err_h)
    assert taker.returncode == 0 and out_t.strip() == "succeeded", (out_t, err_t)
    noticed = float(out_h.split()[1]) - resumed_at
    events = _events(log)
    late_starts = [e for e in events if e[3] == holder.pid and e[0] == "start"
                   and e[4] > stopped_at]
    assert not late_starts, late_starts  # it started nothing after it was resumed
    late_ends = {e[2] for e in events if e[3] == holder.pid and e[0] == "end"
                 and e[4] > stopped_at}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        status, fence, lease = conn.execute(
            "SELECT status, fence, lease FROM runs WHERE run_id = 'r'").fetchone()
        rows = dict(conn.execute("SELECT node, fence FROM nodes WHERE run_id = 'r'"))
    finally:
        conn.close()
    assert (status, fence, lease) == ("succeeded", 2, None)  # not the holder's "cancelled"
    # what the holder finished after the takeover was recorded by the taker, not by it
    assert all(rows[node] == 2 for node in late_ends), (late_ends, rows)
    assert set(rows) == {f"n{i}" for i in range(6)} | {"b"}
    print(f"the fenced-out holder noticed and stopped {noticed * 1000:.0f} ms after SIGCONT")


@pytest.mark.anyio
async def test_renewal_that_updates_nothing_stops_the_run(tmp_path: Path) -> None:
    """Another process takes the run over while no node ends: the lease renewal finds
    the fence changed, and the run stops at once (not when its 5 s node ends)."""
    db = tmp_path / "runs.db"
    wf = flowrt.Workflow("long")

    @wf.node
    async def quick() -> int:
        return 1

    @wf.node
    async def slow(quick: int) -> int:
        await anyio.sleep(5)
        return quick

    async def take_over() -> None:
        await anyio.sleep(0.3)
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("UPDATE runs SET fence = fence + 1, lease = ? WHERE run_id = 'r'",
                         (Lease("elsewhere", 1, "t").to_json(),))
        finally:
            conn.close()

    store = SQLiteStore(db, lease_ttl=0.3)  # renewed every 0.1 s
    started = time.monotonic()
    try:
        async with flowrt.Runtime(store=store) as rt, anyio.create_task_group() as tg:
            tg.start_soon(take_over)
            with pytest.raises(flowrt.LeaseLost, match="process 1 on elsewhere"):
                await rt.run(wf, run_id="r")
    finally:
        store.close()
    assert time.monotonic() - started < 3.0  # not the 5 s of the node
    with SQLiteStore(db) as check:
        stored = check.load("r")
        assert stored is not None
        assert stored.record.status == "running"  # the holder's "cancelled" was refused
        assert set(stored.nodes) == {"quick"}


def _record(run_id: str) -> RunRecord:
    return RunRecord(run_id, "wf", "fp", {"a": []}, b"{}", "running", "json", 1.0, 1.0)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    made = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    yield made
    made.close()


def test_a_stale_claim_can_write_nothing(store: Any) -> None:
    """The store contract: writes, renewals and the final status of a claim whose fence
    is no longer the run's are refused, and the claim says it is lost."""
    lease1 = Lease("here", os.getpid(), "one")
    _, first = store.claim("r", lease1, lambda stored: _record("r"))
    assert first is not None and first.fence == 1
    store.write(first, [NodeRecord("a", "succeeded", 1, b"1")], None)
    store.finish(first, "failed", 2.0)
    store.flush()
    seen: list[Any] = []
    _, second = store.claim("r", Lease("here", os.getpid(), "two"),
                            lambda stored: seen.append(stored) or _record("r"))
    assert second is not None and second.fence == 2
    assert seen[0].nodes["a"].fence == 1 and seen[0].record.status == "failed"
    store.write(first, [NodeRecord("a", "failed", 9)], None)
    store.finish(first, "cancelled", 3.0)
    store.flush()
    assert first.lost and isinstance(first.error, flowrt.LeaseLost)
    assert not store.renew(first)
    assert store.renew(second) and second.error is None
    stored = store.load("r")
    assert stored.nodes["a"].attempts == 1 and stored.record.status == "running"
    assert stored.record.fence == 2 and stored.restored("a")
    store.finish(second, "succeeded", 4.0)
    store.flush()
    record = store.get_run("r")
    assert record.status == "succeeded" and record.owner is None


def test_claim_writes_nothing_when_decide_refuses(store: Any) -> None:
    _, claim = store.claim("r", Lease("here", os.getpid(), "one"), lambda s: _record("r"))
    store.finish(claim, "failed", 2.0)
    store.flush()
    before = store.get_run("r")

    def refuse(stored: Any) -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        store.claim("r", Lease("here", os.getpid(), "two"), refuse)
    stored, none = store.claim("r", Lease("here", os.getpid(), "three"), lambda s: None)
    assert none is None and stored.record == before
    assert store.get_run("r") == before  # no lease taken, no fence used


def test_a_live_holder_is_shown_and_a_dead_one_is_interrupted(tmp_path: Path) -> None:
    """RunRecord says who holds a running run and until when, and tells a live run from
    one whose process is gone (what ``runs`` and ``show`` display)."""
    db, log = tmp_path / "runs.db", tmp_path / "log"
    proc = _spawn("run", db, "r", log, "asyncio", 60, 3, 5.0)
    try:
        _wait_for(lambda: bool(_events(log)))
        with SQLiteStore(db) as store:
            record = store.get_run("r")
            assert record is not None and record.status == "running"
            assert record.owner is not None and record.owner.pid == proc.pid
            assert record.lease_expires is not None and record.lease_expires > time.time()
            assert not record.is_interrupted()
    finally:
        proc.kill()
        proc.wait()
    with SQLiteStore(db) as store:
        record = store.get_run("r")
        assert record is not None and record.status == "running" and record.is_interrupted()
        # had the process lived on another host: trusted until its lease runs out
        elsewhere = attrs.evolve(record, owner=Lease("another-host", proc.pid, "t"),
                                 lease_expires=time.time() + 30)
        assert not elsewhere.is_interrupted()
        assert elsewhere.is_interrupted(now=time.time() + 31)
