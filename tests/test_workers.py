"""Real worker processes on one SQLite file: draining a queue, SIGKILL at random points,
a fenced-out worker, schedules fired by two workers from a shared clock.

Workers are ``python -m flowrt worker`` (or ``queue_worker.py serve`` when the test
drives their clock) with tests/ on PYTHONPATH; their nodes log to a file (see
queue_worker.py), and the store is read back at the end.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

import flowrt
from flowrt import SQLiteStore

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import queue_worker  # noqa: E402


def _env(tmp_path: Path, db: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
            "QUEUE_LOG": str(tmp_path / "log"), "QUEUE_DB": str(db), **extra}


def _worker(tmp_path: Path, db: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowrt", "worker", "--store", str(db), "--workflows",
         "queue_worker", "--poll", "0.05", "--log-level", "warning", *args],
        env=_env(tmp_path, db, **extra), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _lines(tmp_path: Path) -> list[tuple[str, str, str, int, float]]:
    path = tmp_path / "log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        event, run_id, node, pid, when = line.split()
        out.append((event, run_id, node, int(pid), float(when)))
    return out


def _submit(db: Path, n: int, wf: flowrt.Workflow = queue_worker.five,
            prefix: str = "r") -> list[str]:
    async def main() -> list[str]:
        async with flowrt.Runtime(store=str(db)) as rt:
            return [await rt.submit(wf, run_id=f"{prefix}{k:03d}") for k in range(n)]

    return anyio.run(main)


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _statuses(db: Path) -> dict[str, str]:
    with SQLiteStore(db) as store:
        return {r.run_id: r.status for r in store.runs()}


def test_three_workers_drain_a_hundred_runs_each_once(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    ids = _submit(db, 100)
    workers = [_worker(tmp_path, db, "--until-idle", "--concurrency", "4") for _ in range(3)]
    for w in workers:
        _out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    statuses = _statuses(db)
    assert sorted(statuses) == sorted(ids)
    assert set(statuses.values()) == {"succeeded"}
    lines = _lines(tmp_path)
    starts = collections.Counter((run, node) for ev, run, node, _, _ in lines if ev == "start")
    assert len(starts) == 500 and set(starts.values()) == {1}  # every node ran once
    assert not [line for line in lines if line[0] == "again"]
    assert len({pid for *_, pid, _ in lines}) >= 2  # the work was shared


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_workers_killed_at_random_points_lose_nothing(tmp_path: Path, seed: int) -> None:
    """SIGKILL a random worker every 50-300 ms while 3 keep serving 40 runs: every run
    completes, none is lost, no node the store recorded as succeeded runs again."""
    rng = random.Random(seed)
    db = tmp_path / "runs.db"
    ids = _submit(db, 40)
    workers: list[subprocess.Popen[str]] = []
    kills = 0
    deadline = time.monotonic() + 120
    try:
        while True:
            statuses = _statuses(db)
            if all(statuses.get(i) == "succeeded" for i in ids):
                break
            assert time.monotonic() < deadline, collections.Counter(statuses.values())
            workers = [w for w in workers if w.poll() is None]
            while len(workers) < 3:
                workers.append(_worker(tmp_path, db, "--concurrency", "3",
                                       "--max-recoveries", "50"))
            time.sleep(rng.uniform(0.05, 0.3))
            if kills < 12:
                victim = rng.choice(workers)
                victim.send_signal(signal.SIGKILL)
                victim.wait()  # reaped: its pid is gone, so its runs are taken over at once
                kills += 1
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.communicate(timeout=30)
    statuses = _statuses(db)
    assert {i: statuses.get(i) for i in ids} == dict.fromkeys(ids, "succeeded")
    lines = _lines(tmp_path)
    assert not [line for line in lines if line[0] == "again"]
    ends = {(run, node) for ev, run, node, _, _ in lines if ev == "end"}
    assert len(ends) == 200  # every node of every run ended at least once
    with SQLiteStore(db) as store:
        for run_id in ids:
            stored = store.load(run_id)
            assert stored is not None and len(stored.nodes) == 5
            assert stored.outputs()["n4"] == 10


def test_a_paused_worker_is_fenced_out_and_its_late_writes_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    _submit(db, 1, queue_worker.slow, prefix="slow")
    # The first worker's node would sleep 20 s: a paused process's timers are all due
    # when it wakes, so a short sleep could end before the refused renewal stops it.
    first = _worker(tmp_path, db, "--lease-ttl", "1", QUEUE_SLOW="20")
    try:
        _wait(lambda: any(ev == "start" for ev, *_ in _lines(tmp_path)), 30, "the long node")
        first.send_signal(signal.SIGSTOP)  # paused with the run: its lease runs out
        second = _worker(tmp_path, db, "--lease-ttl", "1", QUEUE_SLOW="0.2")
        _wait(lambda: _statuses(db) == {"slow000": "succeeded"}, 60, "the takeover")
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 128 + signal.SIGTERM, err
        with SQLiteStore(db) as store:
            stored = store.load("slow000")
            assert stored is not None
            fence = stored.record.fence
            assert fence == 2 and {n.fence for n in stored.nodes.values()} == {2}
        first.send_signal(signal.SIGCONT)
        time.sleep(2.5)  # it wakes: its lease renewal or its next write is refused
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=30)
        assert "run taken over by another worker" in err, err
        with SQLiteStore(db) as store:
            stored = store.load("slow000")
            assert stored is not None and stored.record.fence == fence
            assert stored.record.status == "succeeded"
            assert {n.fence for n in stored.nodes.values()} == {2}  # nothing of the first
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.communicate(timeout=30)
    # the paused worker stopped its run: the long node never ended there
    assert not [line for line in _lines(tmp_path) if line[0] == "end" and line[3] == first.pid]


def test_two_workers_fire_each_slot_of_a_schedule_once(tmp_path: Path) -> None:
    """A fake clock in a file, moved by the test for both workers: 40 slots, with some
    moves over several slots at once (they coalesce into one run)."""
    db = tmp_path / "runs.db"
    clock = tmp_path / "clock"
    start = 1_704_067_200.0
    clock.write_text(str(start))

    async def declare() -> None:
        async with flowrt.Runtime(store=str(db),
                                  clock=queue_worker.FileClock(str(clock))) as rt:
            rt.schedule(queue_worker.five, every=60, name="minutely", start=start + 60)

    anyio.run(declare)
    workers = [subprocess.Popen([sys.executable, str(HERE / "queue_worker.py"), "serve",
                                 str(db), str(clock), backend, "5"],
                                env=_env(tmp_path, db), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for backend in ("asyncio", "trio")]
    expected: list[str] = []
    now = start
    rng = random.Random(7)
    try:
        for _ in range(30):
            step = rng.choice([1, 1, 1, 2, 3])  # slots passed in one move
            now += 60 * step
            clock.write_text(str(now))
            expected.append(f"sched:minutely:{_slot(now)}")  # coalesced: the latest

            def fired(want: str = expected[-1]) -> bool:
                return want in _statuses(db)

            _wait(fired, 30, expected[-1])
        _wait(lambda: all(s == "succeeded" for s in _statuses(db).values()), 60,
              "the runs to end")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        errors = [w.communicate(timeout=30)[1] for w in workers]
    statuses = _statuses(db)
    assert sorted(statuses) == sorted(expected), errors
    lines = _lines(tmp_path)
    starts = collections.Counter((run, node) for ev, run, node, _, _ in lines if ev == "start")
    assert set(starts.values()) == {1} and len(starts) == 5 * len(expected)
    with SQLiteStore(db) as store:
        assert store.schedules()[0].next_due == now + 60


def _slot(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
