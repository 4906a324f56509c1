"""The runtime's queue, workers and schedules in one process, on both anyio backends:
``rt.submit``, ``rt.serve``, ``rt.schedule`` with a fake clock, cancel and resume
through the store, crash_at; and the errors of bad input."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from subproc import run_program

import flowrt
from flowrt import SQLiteStore
from flowrt._schedule import due_slots, slot_run_id
from flowrt.testing import Crash, FakeClock, check_resume, crash_at

pytestmark = pytest.mark.anyio

START = 1_704_067_200.0  # 2024-01-01T00:00:00Z


def chain(calls: list[str] | None = None, name: str = "chain") -> flowrt.Workflow:
    wf = flowrt.Workflow(name)

    @wf.node
    async def a(x: int = 1) -> int:
        if calls is not None:
            calls.append("a")
        return x + 1

    @wf.node
    async def b(a: int) -> int:
        if calls is not None:
            calls.append("b")
        await anyio.sleep(0)
        return a * 10

    return wf


async def test_submitted_runs_are_served_once(tmp_path: Path) -> None:
    wf = chain()
    async with flowrt.Runtime(store=str(tmp_path / "q.db"), workflows=[wf]) as rt:
        ids = [await rt.submit(wf, {"x": k}) for k in range(6)]
        assert all(isinstance(i, str) for i in ids)
        assert await rt.submit(wf, {"x": 1}, run_id=ids[0]) == ids[0]  # once
        assert await rt.serve(until_idle=True, poll=0.01, concurrency=2) == 6
        assert rt.store is not None
        for k, run_id in enumerate(ids):
            stored = rt.store.load(run_id)
            assert stored is not None and stored.record.status == "succeeded"
            assert stored.outputs()["b"] == (k + 1) * 10 and stored.record.queue == "default"
        assert await rt.serve(until_idle=True, poll=0.01) == 0


async def test_bad_submissions_are_refused_before_anything_is_stored(tmp_path: Path) -> None:
    wf = chain()
    async with flowrt.Runtime() as rt:
        with pytest.raises(ValueError, match="needs a store"):
            await rt.submit(wf)
    async with flowrt.Runtime(store=str(tmp_path / "q.db")) as rt:
        with pytest.raises(flowrt.UnknownInputError, match="did you mean 'x'"):
            await rt.submit(wf, {"xx": 1})
        with pytest.raises(flowrt.SerializationError, match="cannot be stored"):
            await rt.submit(wf, {"x": object()})
        with pytest.raises(ValueError, match="needs the workflows"):
            await rt.serve()
        await rt.submit(wf, run_id="taken")
        with pytest.raises(ValueError, match="workflow 'chain', not 'other'"):
            await rt.submit(chain(name="other"), run_id="taken")
        assert rt.store is not None
        assert [r.run_id for r in rt.store.runs()] == ["taken"]
    with pytest.raises(ValueError, match="max_recoveries"):
        flowrt.Runtime(max_recoveries=0)
    with pytest.raises(ValueError, match="two workflows are named 'chain'"):
        flowrt.Runtime(workflows=[wf, chain()])


async def test_a_worker_cancelled_hands_its_runs_back(tmp_path: Path) -> None:
    wf = flowrt.Workflow("sleepy")
    started = anyio.Event()

    @wf.node
    async def nap() -> int:
        started.set()
        await anyio.sleep(30)
        return 1

    async with flowrt.Runtime(store=str(tmp_path / "q.db"), workflows=[wf]) as rt:
        run_id = await rt.submit(wf)
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: rt.serve(poll=0.01))
                await started.wait()
                tg.cancel_scope.cancel()
        assert rt.store is not None
        record = rt.store.get_run(run_id)
        assert record is not None and record.status == "queued" and record.owner is None
        assert record.recoveries == 0  # handed back, not a dead worker's run


async def test_cancel_through_the_store_stops_a_running_run(tmp_path: Path) -> None:
    wf = flowrt.Workflow("sleepy")
    started = anyio.Event()

    @wf.node
    async def nap() -> int:
        started.set()
        await anyio.sleep(30)
        return 1

    @wf.node
    async def after(nap: int) -> int:
        return nap

    store = SQLiteStore(tmp_path / "q.db", lease_ttl=0.3)
    try:
        async with flowrt.Runtime(store=store, workflows=[wf]) as rt:
            run_id = await rt.submit(wf)
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(lambda: rt.serve(poll=0.01))
                    await started.wait()
                    before = await rt.cancel(run_id)
                    assert before.status == "running"
                    while store.get_run(run_id).owner is not None or store.load(
                            run_id).nodes.get("nap") is not None:
                        # the worker's lease renewal was refused: it stopped the run
                        if store.get_run(run_id).status == "cancelled":
                            break
                        await anyio.sleep(0.05)
                    await anyio.sleep(0.5)
                    tg.cancel_scope.cancel()
            record = store.get_run(run_id)
            assert record.status == "cancelled" and "after" not in store.load(run_id).nodes
            await rt.resume(run_id)
            assert store.get_run(run_id).status == "queued"
    finally:
        store.close()


# -- schedules and the clock ----------------------------------------------------------------


async def test_schedules_fire_each_slot_once_with_two_workers(tmp_path: Path) -> None:
    """Two runtimes (two connections: two workers) on one file, one fake clock."""
    wf = chain()
    clock = FakeClock(START)
    db = tmp_path / "q.db"
    stores = [SQLiteStore(db), SQLiteStore(db)]
    try:
        async with flowrt.Runtime(store=stores[0], workflows=[wf], clock=clock) as one, \
                flowrt.Runtime(store=stores[1], workflows=[wf], clock=clock) as two:
            one.schedule(wf, every=timedelta(minutes=5), name="five", inputs={"x": 2})
            again = two.schedule(wf, every=300, name="five", inputs={"x": 2})
            assert again.next_due == START + 300  # declared twice: one schedule
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: one.serve(poll=0.005))
                tg.start_soon(lambda: two.serve(poll=0.005))
                expected = []
                for step in [1, 1, 3, 1, 2, 1, 1, 5, 1, 1, 1, 2, 1]:
                    clock.advance(300 * step)
                    expected.append(slot_run_id("five", clock.now()))  # coalesced
                    with anyio.fail_after(10):
                        while stores[0].get_run(expected[-1]) is None:
                            await anyio.sleep(0.01)
                with anyio.fail_after(10):
                    while any(r.status != "succeeded" for r in stores[0].runs()):
                        await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
            runs = stores[0].runs()
            assert sorted(r.run_id for r in runs) == sorted(expected)
            assert all(r.resumes == 0 and r.fence == 1 for r in runs)
            assert stores[0].load(expected[0]).outputs()["b"] == 30
            assert one.unschedule("five") and stores[1].schedules() == []
    finally:
        for store in stores:
            store.close()


async def test_catch_up_fires_every_missed_slot(tmp_path: Path) -> None:
    wf = chain()
    clock = FakeClock(START)
    async with flowrt.Runtime(store=str(tmp_path / "q.db"), workflows=[wf],
                              clock=clock) as rt:
        rt.schedule(wf, every=60, name="m", catch_up=True)
        clock.advance(60 * 4 + 30)
        assert await rt.serve(until_idle=True, poll=0.01) == 4
        assert rt.store is not None
        assert [r.run_id for r in rt.store.runs()] == [
            slot_run_id("m", START + 60 * k) for k in range(1, 5)]
        assert rt.store.schedules()[0].next_due == START + 300


def test_cron_slots_follow_the_time_zone_and_daylight_saving() -> None:
    from flowrt._schedule import first_slot

    riga_spring = 1711843200.0  # 2024-03-31T00:00:00Z = 02:00 EET, the night clocks jump
    due = first_slot("30 3 * * *", None, "Europe/Riga", riga_spring)
    # 03:30 does not exist that night in Riga: cron runs it at 04:00 EEST (01:00Z)
    assert slot_run_id("x", due) == "sched:x:2024-03-31T01:00:00Z"
    nightly = first_slot("0 2 * * *", None, "America/New_York", START)
    assert slot_run_id("n", nightly) == "sched:n:2024-01-01T07:00:00Z"


def test_missed_cron_slots_coalesce_into_the_latest() -> None:
    from flowrt._schedule import schedule_record

    record = schedule_record("n", "wf", b"{}", "json", cron="0 * * * *", every=None,
                             timezone="UTC", catch_up=False, queue=None, now=START,
                             start=None)
    assert record.next_due == START + 3600
    slots, following = due_slots(record, START + 3600 * 5 + 10)
    assert slots == [START + 3600 * 5] and following == START + 3600 * 6


async def test_bad_schedules_are_refused(tmp_path: Path) -> None:
    wf = chain()
    async with flowrt.Runtime(store=str(tmp_path / "q.db")) as rt:
        with pytest.raises(ValueError, match="bad cron expression '0 25 \\* \\* \\*'"):
            rt.schedule(wf, cron="0 25 * * *")
        with pytest.raises(ValueError, match="did you mean 'Europe/Riga'"):
            rt.schedule(wf, cron="0 2 * * *", timezone="Europe/Rigga")
        with pytest.raises(ValueError, match="exactly one"):
            rt.schedule(wf, cron="0 2 * * *", every=60)
        with pytest.raises(ValueError, match="every="):
            rt.schedule(wf, every=-1)
        with pytest.raises(flowrt.UnknownInputError):
            rt.schedule(wf, every=60, inputs={"y": 1})
        assert rt.store is not None and rt.store.schedules() == []


async def test_the_fake_clock_wakes_sleepers_without_sleeping() -> None:
    clock = FakeClock(100.0)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep_until(160.0)
        woke.append(clock.now())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sleeper)
            await anyio.sleep(0.01)
            clock.advance(30)
            await anyio.sleep(0.01)
            assert woke == []
            clock.advance(30)
    assert woke == [160.0]
    with pytest.raises(ValueError, match="never goes back"):
        clock.set(10.0)


# -- crash_at --------------------------------------------------------------------------------


async def test_crash_at_every_boundary_resumes_to_the_same_result(tmp_path: Path) -> None:
    calls: list[str] = []
    wf = chain(calls)
    assert (await check_resume(wf, {"x": 4}))["outputs"] == {"a": 5, "b": 50}
    async with flowrt.Runtime(store=str(tmp_path / "c.db")) as rt:
        calls.clear()
        with pytest.raises(Crash, match="after node 'a'"), crash_at("a"):
            await rt.run(wf, {"x": 4}, run_id="r")
        assert rt.store is not None and rt.store.get_run("r").status == "running"
        result = await rt.run(wf, run_id="r")
        assert result["b"] == 50 and calls == ["a", "b"] and result.nodes["a"].restored


CHECK_RESUME_WITH_WAITS = """
    from datetime import timedelta
    import anyio, flowrt
    from flowrt.testing import check_resume

    wf = flowrt.Workflow("purchase")

    @wf.node
    def quote() -> int:
        return 1450

    wf.approval("manager", after=["quote"])
    wf.signal("paid", after=["quote"], timeout=timedelta(days=1))
    wf.timer("cool_off", after=["manager"], delay=timedelta(hours=1))

    @wf.node(after=["cool_off"])
    def ship(quote: int, paid: dict, manager: dict) -> str:
        return f"{quote} paid {paid['ref']}, approved by {manager['by']}"

    starts = []

    def count(event):
        if str(event.kind) == "run_started":
            starts.append(event.run_id)

    async def main():
        for missing in ({}, {"payd": {"ref": "x"}}):
            try:
                await check_resume(wf, signals=missing)
            except ValueError as error:
                print("refused:", error)
        picture = await check_resume(wf, signals={"paid": {"ref": "T-9"}})
        print(picture["status"], picture["outputs"]["ship"])
        await check_resume(wf, nodes=["ship"], signals={"paid": {"ref": "T-9"}},
                           on_event=count)
        print("starts", len(starts))
        rejected = await check_resume(wf, signals={"paid": {"ref": "T-9"},
                                                   "manager": {"approved": False,
                                                               "by": "cfo"}})
        print(rejected["status"], rejected["nodes"]["manager"], rejected["nodes"]["ship"])

    anyio.run(main, backend=BACKEND)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_check_resume_serves_signals_approvals_and_timers(backend: str) -> None:
    """It used to wait forever for a signal nobody sent (now: a subprocess that would
    hang fails the test at its timeout)."""
    out = run_program(CHECK_RESUME_WITH_WAITS, backend=backend, timeout=120).splitlines()
    assert out[0] == ("refused: check_resume cannot make up a payload for signal node "
                      "'paid' of workflow 'purchase': pass signals={'paid': ...}")
    assert out[1] == ("refused: signals=: 'payd' is no signal node of workflow 'purchase'; "
                      "did you mean 'paid'? (its signal and approval nodes: 'manager', "
                      "'paid')")
    assert out[2] == "succeeded 1450 paid T-9, approved by check_resume"
    # 3 starts without a crash (parked for the signals, then for the timer, then done),
    # 4 with the crash at 'ship' (reached after the waits, in the third start)
    assert out[3] == "starts 7"
    assert out[4] == "failed failed skipped"


async def test_check_resume_refuses_park_and_unknown_crash_points() -> None:
    wf = chain()
    with pytest.raises(ValueError, match="leave park= out"):
        await check_resume(wf, park=True)
    with pytest.raises(ValueError, match="has no node 'bb'; did you mean 'b'"):
        await check_resume(wf, nodes=["bb"])


async def test_a_worker_logs_what_a_parked_run_waits_for(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Not "run ended status=waiting": the run is not over, and the log says what it
    waits for, with the due times on the runtime's clock (here a FakeClock's)."""
    wf = flowrt.Workflow("purchase")
    wf.add("quote", lambda: 1450)
    wf.approval("manager", after=["quote"])
    wf.signal("paid", after=["quote"], timeout=timedelta(days=1))
    wf.timer("cool_off", after=["manager"], delay=timedelta(hours=1))
    wf.add("ship", lambda quote, paid: f"{quote} {paid}", deps=["quote", "paid"],
           after=["cool_off"])
    caplog.set_level("INFO", logger="flowrt")
    clock = FakeClock(START)
    async with flowrt.Runtime(store=str(tmp_path / "q.db"), workflows=[wf],
                              clock=clock) as rt:
        await rt.submit(wf, run_id="po-1")
        await rt.serve(until_idle=True, poll=0.05)
        await rt.approve("po-1", "manager", by="ann")
        await rt.signal("po-1", "paid", "T-9")
        await rt.serve(until_idle=True, poll=0.05)
        clock.advance(3600)
        await rt.serve(until_idle=True, poll=0.05)
    said = [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(("run parked", "run ended"))]
    assert said == [
        "run parked (waiting for manager: approval; paid: signal 'paid' times out "
        "2024-01-02T00:00:00Z)",
        "run parked (waiting for cool_off: timer due 2024-01-01T01:00:00Z)",
        "run ended",
    ]
    assert [getattr(r, "run_id", None) for r in caplog.records
            if r.getMessage().startswith("run parked")] == ["po-1", "po-1"]


async def test_a_parked_run_logs_that_it_parked_not_that_it_finished(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The log follows what happened: a run that parks on a wait (a FakeClock timer)
    says "run parked" once the store has it parked -- never "run finished", it is not
    over -- and "run finished" when it ends after its wake-up; in a worker and with
    ``park=True`` alike."""
    wf = flowrt.Workflow("cool")
    wf.add("quote", lambda: 1450)
    wf.timer("cool_off", after=["quote"], delay=timedelta(hours=1))
    wf.add("ship", lambda quote: quote, deps=["quote"], after=["cool_off"])
    caplog.set_level("INFO", logger="flowrt")
    clock = FakeClock(START)
    store = tmp_path / "q.db"
    async with flowrt.Runtime(store=str(store), workflows=[wf], clock=clock) as rt:
        await rt.submit(wf, run_id="w")
        await rt.serve(until_idle=True, poll=0.05)
        parked = await rt.run(wf, run_id="p", park=True)
        assert parked.status is flowrt.RunStatus.WAITING
        with SQLiteStore(store) as read:  # parked in the store when it said so
            assert read.get_run("p").status == "waiting"  # type: ignore[union-attr]
        clock.advance(3600)
        await rt.serve(until_idle=True, poll=0.05)
    said: dict[str, list[str]] = {"w": [], "p": []}
    for r in caplog.records:
        run_id = getattr(r, "run_id", None)
        if run_id in said and r.getMessage().startswith("run "):
            said[run_id].append(r.getMessage() + (f" {r.status}" if hasattr(r, "status")
                                                  else ""))
    woken = ["run taken", "run started", "run finished succeeded", "run ended succeeded"]
    for run_id, first in (("w", ["run taken"]), ("p", [])):
        assert said[run_id] == [
            *first, "run started",
            "run parked (waiting for cool_off: timer due 2024-01-01T01:00:00Z)", *woken
        ], (run_id, said[run_id])


async def test_a_waits_since_is_wall_clock_and_its_due_the_runtimes_clock(
        tmp_path: Path) -> None:
    """As documented on flowrt.durable.Wait: ``since`` is a node time (wall clock, as
    every node's start), ``due`` is workflow time (the runtime's clock, here fake)."""
    import time

    wf = flowrt.Workflow("cool")
    wf.add("first", lambda: 1)
    wf.timer("cool_off", after=["first"], delay=timedelta(hours=1))
    clock = FakeClock(START)
    async with flowrt.Runtime(store=str(tmp_path / "w.db"), clock=clock) as rt:
        before = time.time()
        assert str((await rt.run(wf, run_id="r", park=True)).status) == "waiting"
        assert rt.store is not None
        stored = rt.store.load("r")
    assert stored is not None
    (wait,) = stored.waits()
    assert wait.due == START + 3600
    assert wait.since is not None and before <= wait.since <= time.time()
    assert stored.nodes["first"].started is not None
    assert abs(wait.since - stored.nodes["first"].started) < 60  # one clock for nodes
