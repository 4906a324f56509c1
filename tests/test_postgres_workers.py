"""Worker processes on one PostgreSQL database: draining a queue while workers are
SIGKILLed and the server restarts, schedules fired by three workers, workers woken by
LISTEN/NOTIFY rather than by polling.

Workers are ``python -m flowrt worker --store postgresql://...`` (or
``queue_worker.py serve`` when the test drives their clock), with tests/ on PYTHONPATH;
their nodes log to a file (tests/queue_worker.py), and the store is read back at the end.
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
import pgserver
import pytest
import queue_worker
from stores import PostgresKit, open_spec

import flowrt

HERE = Path(__file__).parent


class Fleet:
    """Worker processes of one test on one PostgreSQL schema."""

    def __init__(self, tmp_path: Path, url: str, schema: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.schema = schema
        self.spec = f"pg:{schema}:{url}"
        self.store_url = f"{url}?schema={schema}"
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
                    "QUEUE_LOG": str(tmp_path / "log"), "QUEUE_DB": self.spec}

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "flowrt", "worker", "--store", self.store_url,
             "--workflows", "queue_worker", "--log-level", "warning", *args],
            env=self.env, cwd=self.tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)

    def submit(self, n: int, wf: flowrt.Workflow = queue_worker.five,
               prefix: str = "r") -> list[str]:
        async def main() -> list[str]:
            store = open_spec(self.spec)
            try:
                async with flowrt.Runtime(store=store) as rt:
                    return [await rt.submit(wf, run_id=f"{prefix}{k:03d}") for k in range(n)]
            finally:
                store.close()

        return anyio.run(main)

    def lines(self) -> list[tuple[str, str, str, int, float]]:
        path = self.tmp_path / "log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            event, run_id, node, pid, when = line.split()
            out.append((event, run_id, node, int(pid), float(when)))
        return out


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(workers: list[subprocess.Popen[str]]) -> list[str]:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    return [w.communicate(timeout=60)[1] for w in workers]


def test_four_workers_drain_200_runs_through_kills_and_a_server_restart(
        pg_server: pgserver.Server, tmp_path: Path) -> None:
    """4 workers (2 runs at a time each) serve 200 runs of 5 nodes of up to 80 ms; every
    0.2-0.5 s a worker that is running nodes is SIGKILLed (12 times, each replaced), and
    the server restarts once half way: every run completes, once at run level, no node
    the store recorded as succeeded runs again, a node runs again only when the worker
    running it was killed, nothing is lost."""
    rng = random.Random(15)
    fleet = Fleet(tmp_path, pg_server.url, "drain")
    fleet.env["QUEUE_STEP"] = "0.08"
    ids = fleet.submit(200)
    reader = flowrt.PostgresStore(pg_server.url, schema="drain", connect_timeout=30)
    workers: list[subprocess.Popen[str]] = []
    killed: set[int] = set()
    restarted = False
    deadline = time.monotonic() + 240
    errors: list[str] = []
    try:
        while True:
            statuses = collections.Counter(r.status for r in reader.runs())
            if statuses["succeeded"] == len(ids):
                break
            # a run that ended otherwise will not succeed: say so now, not at the deadline
            assert statuses.keys() <= {"succeeded", "queued", "running"}, statuses
            assert time.monotonic() < deadline, statuses
            for w in [w for w in workers if w.poll() is not None]:
                errors.append(w.communicate()[1])
            workers = [w for w in workers if w.poll() is None]
            while len(workers) < 4:
                workers.append(fleet.worker("--concurrency", "2", "--max-recoveries", "50",
                                            "--poll", "0.5"))
            time.sleep(rng.uniform(0.2, 0.5))
            busy = {pid for event, *_, pid, when in fleet.lines()
                    if event == "start" and when > time.time() - 0.5}
            victims = [w for w in workers if w.pid in busy]
            if victims and len(killed) < 12:
                victim = rng.choice(victims)
                victim.send_signal(signal.SIGKILL)
                victim.wait()  # reaped: its pid is gone, so its runs are taken over at once
                killed.add(victim.pid)
            if not restarted and statuses["succeeded"] >= len(ids) // 2:
                pgserver.restart(pg_server.dir)  # every connection of every worker drops
                restarted = True
    finally:
        errors += _stop(workers)
    assert restarted and len(killed) == 12, (restarted, killed)
    records = {r.run_id: r for r in reader.runs()}
    assert sorted(records) == sorted(ids)  # nothing lost, nothing made up
    assert {r.status for r in records.values()} == {"succeeded"}
    lines = fleet.lines()
    assert not [line for line in lines if line[0] == "again"], "a recorded node ran again"
    starts: dict[tuple[str, str], list[tuple[float, int]]] = collections.defaultdict(list)
    for event, run_id, node, pid, when in lines:
        if event == "start":
            starts[run_id, node].append((when, pid))
    assert len(starts) == 1000  # every node of every run
    for key, runs in starts.items():
        # run more than once only when the worker running it died with it
        for _when, pid in sorted(runs)[:-1]:
            assert pid in killed, (key, runs, killed)
    for run_id in ids:
        stored = reader.load(run_id)
        assert stored is not None and stored.outputs()["n4"] == 10
        assert stored.record.owner is None and len(stored.nodes) == 5
    reader.close()
    assert not [e for e in errors if "Traceback" in e], errors
    taken_over = sum(1 for r in records.values() if r.resumes)
    again = sum(len(v) - 1 for v in starts.values())
    assert taken_over and again  # the kills did land in the middle of runs
    print(f"200 runs, 12 workers killed, 1 restart: {taken_over} runs taken over, "
          f"{again} nodes run again after their worker was killed")


def test_three_workers_fire_each_slot_of_a_schedule_once(pg_kit: PostgresKit,
                                                        tmp_path: Path) -> None:
    """A fake clock in a file, moved by the test for three workers on both backends: 30
    moves, some over several slots at once (they coalesce into one run): one run per
    slot, each node once."""
    fleet = Fleet(tmp_path, pg_kit.url, pg_kit.schema)
    clock = tmp_path / "clock"
    start = 1_704_067_200.0
    clock.write_text(str(start))

    async def declare() -> None:
        store = pg_kit.make()
        async with flowrt.Runtime(store=store,
                                  clock=queue_worker.FileClock(str(clock))) as rt:
            rt.schedule(queue_worker.five, every=60, name="minutely", start=start + 60)

    anyio.run(declare)
    workers = [subprocess.Popen([sys.executable, str(HERE / "queue_worker.py"), "serve",
                                 fleet.spec, str(clock), backend, "5"],
                                env=fleet.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for backend in ("asyncio", "trio", "asyncio")]
    reader = pg_kit.make()
    expected: list[str] = []
    now = start
    rng = random.Random(7)
    try:
        for _ in range(30):
            step = rng.choice([1, 1, 1, 2, 3])  # slots passed in one move
            now += 60 * step
            clock.write_text(str(now))
            slot = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
            expected.append(f"sched:minutely:{slot}")  # coalesced: the latest

            def fired(want: str = expected[-1]) -> bool:
                return reader.get_run(want) is not None

            _wait(fired, 30, expected[-1])
        _wait(lambda: all(r.status == "succeeded" for r in reader.runs()), 60,
              "the runs to end")
    finally:
        errors = _stop(workers)
    assert sorted(r.run_id for r in reader.runs()) == sorted(expected), errors
    starts = collections.Counter((run, node) for ev, run, node, _, _ in fleet.lines()
                                 if ev == "start")
    assert set(starts.values()) == {1} and len(starts) == 5 * len(expected)
    assert reader.schedules()[0].next_due == now + 60
    pids = {pid for *_, pid, _ in fleet.lines()}
    assert len(pids) >= 2, pids  # the slots were shared out


def _listeners(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'flowrt' "
            "AND query LIKE 'LISTEN%'")]


def test_workers_are_woken_by_notify_not_by_polling(pg_kit: PostgresKit,
                                                    tmp_path: Path) -> None:
    """A worker that polls every 60 s runs a submitted run within a second or two: the
    submission's NOTIFY wakes it. Its listening connection cut, it listens again, and
    the next submission wakes it as fast."""
    import psycopg

    fleet = Fleet(tmp_path, pg_kit.url, pg_kit.schema)
    pg_kit.make().close()
    worker = fleet.worker("--poll", "60")
    reader = pg_kit.make()
    try:
        _wait(lambda: bool(_listeners(pg_kit.url)), 30, "the worker to listen")
        time.sleep(0.5)  # its first look at the queue is over: it waits for 60 s now
        for round_ in range(2):
            submitted = time.monotonic()
            [run_id] = fleet.submit(1, prefix=f"wake{round_}-")
            _wait(lambda run_id=run_id: getattr(reader.get_run(run_id), "status", "")
                  == "succeeded", 15, f"{run_id} to be run")
            took = time.monotonic() - submitted
            assert took < 5.0, took
            print(f"round {round_}: submitted to succeeded in {took * 1000:.0f} ms")
            with psycopg.connect(pg_kit.url, autocommit=True) as conn:
                for pid in _listeners(pg_kit.url):
                    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            _wait(lambda: bool(_listeners(pg_kit.url)), 30, "the worker to listen again")
            time.sleep(0.5)
    finally:
        errors = _stop([worker])
    assert "Traceback" not in errors[0], errors
