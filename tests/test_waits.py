"""Signal, approval and timer nodes: waiting in-process and through a store, parking,
waking, and being cancelled while waiting (docs/signals-and-timers.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from stores import StoreKit
from subproc import REPO, TESTS, run_program

import flowrt
from flowrt.testing import Crash, FakeClock, crash_at

pytestmark = pytest.mark.anyio

T0 = 1_704_067_200.0  # FakeClock's default start


def order_flow(cool_down: float = 60.0) -> flowrt.Workflow:
    """quote -> manager approval -> a minute's cool-down -> order."""
    wf = flowrt.Workflow("order")

    @wf.node
    async def quote(order_id: str) -> dict[str, Any]:
        return {"id": order_id, "total": 120}

    wf.approval("manager", after=[quote])
    wf.timer("cool_down", after=["manager"], delay=timedelta(seconds=cool_down))

    @wf.node(after=["cool_down"])
    async def order(quote: dict[str, Any], manager: dict[str, Any]) -> str:
        return f"{quote['id']} approved by {manager['by']}"

    return wf


def payment_flow(timeout: float | None = None) -> flowrt.Workflow:
    wf = flowrt.Workflow("payment")
    wf.add("start", lambda: "started")
    wf.signal("paid", after=["start"], timeout=timeout)
    wf.add("receipt", lambda paid: f"receipt for {paid['amount']}", deps=["paid"])
    return wf


def statuses(result: flowrt.RunResult) -> dict[str, str]:
    return {name: str(node.status) for name, node in result.nodes.items()}


async def until(predicate: Any, seconds: float = 10.0) -> None:
    """Let the loop run until ``predicate()`` holds."""
    with anyio.fail_after(seconds):
        while not predicate():
            await anyio.sleep(0.005)


# -- defining ---------------------------------------------------------------------------


def test_wait_nodes_are_nodes_with_their_kind_in_the_plan() -> None:
    wf = order_flow()
    plan = wf.compile()
    assert plan.waits == {"manager": "approval", "cool_down": "timer"}
    assert wf.nodes["cool_down"].fn == flowrt.workflow.WaitSpec("timer", delay=60.0)
    assert plan.deps("order") == ["cool_down", "quote", "manager"]
    # a wait node adds its kind to the fingerprint; other workflows' stay as they were
    plain = flowrt.Workflow("order")
    plain.add("manager", lambda: None)
    assert plain.compile().fingerprint != flowrt.Workflow("x").compile().fingerprint


def test_bad_wait_nodes_are_refused_naming_the_culprit() -> None:
    wf = flowrt.Workflow("w")
    with pytest.raises(flowrt.GraphError, match=r"timer 't': give delay=.*or until="):
        wf.timer("t")
    with pytest.raises(flowrt.GraphError, match="exactly one"):
        wf.timer("t", delay=1, until=datetime.now(UTC))
    with pytest.raises(flowrt.GraphError, match="aware datetime"):
        wf.timer("t", until=datetime(2030, 1, 1))
    with pytest.raises(flowrt.GraphError, match="node 's': timeout= takes seconds"):
        wf.signal("s", timeout=-1)
    with pytest.raises(flowrt.GraphError, match="delay= takes seconds"):
        wf.timer("t", delay="soon")
    wf.signal("s")
    with pytest.raises(flowrt.DuplicateNodeError):
        wf.approval("s")
    with pytest.raises(TypeError, match="not called"):
        wf.nodes["s"].fn()
    assert list(wf) == ["s"]


def test_removing_a_node_keeps_the_wait_nodes() -> None:
    wf = order_flow()
    wf.add("extra", lambda: 1)
    wf.remove("extra")
    assert wf.compile().waits == {"manager": "approval", "cool_down": "timer"}


def test_park_needs_a_store() -> None:
    with pytest.raises(ValueError, match="park=True needs a store"):
        order_flow().run_sync({"order_id": "A1"}, park=True)


# -- in-process waits (no store) --------------------------------------------------------------


async def test_run_waits_through_an_approval_and_a_timer_in_process() -> None:
    clock = FakeClock()
    wf = order_flow()
    events: list[tuple[str, str | None]] = []
    async with flowrt.Runtime(clock=clock) as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, {"order_id": "A1"}, run_id="r1",
                                        on_event=lambda e: events.append((str(e.kind), e.node))))

        tg.start_soon(run)
        await until(lambda: ("waiting", "manager") in events)
        assert await rt.approve("r1", "manager", by="ann", comment="fine")
        await until(lambda: ("waiting", "cool_down") in events)
        clock.advance(59)
        await anyio.sleep(0.05)
        assert not results  # a second to go
        clock.advance(1)
    (result,) = results
    assert result.ok and result["order"] == "A1 approved by ann"
    assert result["manager"] == {"approved": True, "by": "ann", "comment": "fine"}
    assert result["cool_down"] is None
    assert result.nodes["manager"].attempts == 1


async def test_a_signal_sent_before_its_node_waits_is_kept() -> None:
    wf = flowrt.Workflow("early")
    gate = anyio.Event()

    @wf.node
    async def first() -> int:
        await gate.wait()
        return 1

    wf.signal("go", after=[first])
    wf.add("after", lambda go: go * 2, deps=["go"])
    async with flowrt.Runtime() as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, run_id="e"))

        tg.start_soon(run)
        await until(lambda: "e" in rt._shared.waiting)
        assert await rt.signal("e", "go", 21, id="m1")
        assert not await rt.signal("e", "go", 99, id="m1")  # a duplicate id: nothing
        await rt.signal("e", "go", 5)  # no id: kept, but the first one sent wins
        gate.set()
    assert results[0]["after"] == 42


async def test_bad_signals_in_process_are_refused_with_a_near_match() -> None:
    wf = payment_flow()
    async with flowrt.Runtime() as rt, anyio.create_task_group() as tg:
        tg.start_soon(lambda: rt.run(wf, run_id="pay-1"))
        await until(lambda: "pay-1" in rt._shared.waiting)
        with pytest.raises(flowrt.SignalRefused, match=r"no signal 'payd'; did you mean 'paid'"):
            await rt.signal("pay-1", "payd", {})
        with pytest.raises(flowrt.RunNotFound, match=r"no run 'pay-2'.*did you mean 'pay-1'"):
            await rt.signal("pay-2", "paid", {})
        await rt.signal("pay-1", "paid", {"amount": 3})


async def test_a_signal_timeout_fails_the_node_with_a_timeout_error() -> None:
    clock = FakeClock()
    wf = payment_flow(timeout=timedelta(hours=1))
    async with flowrt.Runtime(clock=clock) as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, run_id="p"))

        tg.start_soon(run)
        await until(lambda: "p" in rt._shared.waiting)
        await anyio.sleep(0.01)
        clock.advance(3600)
    result = results[0]
    assert statuses(result) == {"start": "succeeded", "paid": "failed", "receipt": "skipped"}
    error = result.errors["paid"]
    assert isinstance(error, flowrt.SignalTimeout) and isinstance(error, TimeoutError)
    assert str(error) == "no signal 'paid' came within 3600 s"


async def test_a_rejected_approval_fails_and_skips_what_follows() -> None:
    wf = order_flow()
    async with flowrt.Runtime() as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, {"order_id": "A9"}, run_id="a"))

        tg.start_soon(run)
        await until(lambda: "a" in rt._shared.waiting)
        with pytest.raises(flowrt.SignalRefused, match="'approved' true or false"):
            await rt.signal("a", "manager", {"ok": True})
        await rt.reject("a", "manager", by="bob", comment="too dear")
    result = results[0]
    assert statuses(result)["order"] == "skipped"
    assert str(result.errors["manager"]) == "approval 'manager' was rejected by bob: too dear"
    assert isinstance(result.errors["manager"], flowrt.Rejected)


async def test_a_timer_until_a_datetime() -> None:
    clock = FakeClock()
    wf = flowrt.Workflow("nightly")
    wf.timer("two_am", until=datetime.fromtimestamp(T0 + 7200, UTC))
    wf.add("load", lambda: "loaded", after=["two_am"])
    async with flowrt.Runtime(clock=clock) as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf))

        tg.start_soon(run)
        await anyio.sleep(0.02)
        clock.set(T0 + 7199)
        await anyio.sleep(0.02)
        assert not results
        clock.set(T0 + 7200)
    assert results[0]["load"] == "loaded"


async def test_a_waiting_node_holds_no_concurrency_slot() -> None:
    wf = flowrt.Workflow("slots")
    wf.signal("s")
    wf.add("other", lambda: "ran")
    wf.add("end", lambda s, other: (s, other), deps=["s", "other"])
    async with flowrt.Runtime() as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, run_id="x", max_concurrency=1))

        tg.start_soon(run)
        await until(lambda: "x" in rt._shared.waiting)
        await anyio.sleep(0.02)
        await rt.signal("x", "s", "sig")
    assert results[0]["end"] == ("sig", "ran")


# -- with a store: recorded waits, parking, waking ---------------------------------------------


async def test_park_returns_waiting_and_a_signal_continues_the_run(store_kit: StoreKit) -> None:
    clock = FakeClock()
    wf = order_flow()
    store = store_kit.make()
    async with flowrt.Runtime(store=store, clock=clock, workflows=[wf]) as rt:
        result = await rt.run(wf, {"order_id": "A1"}, run_id="r", park=True)
        assert result.status is flowrt.RunStatus.WAITING and not result.ok
        assert statuses(result) == {"quote": "succeeded", "manager": "waiting",
                                    "cool_down": "pending", "order": "pending"}
        record = store.get_run("r")
        assert record.status == "waiting" and record.owner is None and record.due is None
        assert [(w.node, w.kind, w.due, w.signalled) for w in store.load("r").waits()] == [
            ("manager", "approval", None, False)]
        assert await rt.approve("r", "manager", by="ann", id="mail-1")
        assert not await rt.approve("r", "manager", by="eve", id="mail-1")  # dedupe
        assert store.get_run("r").due == clock.now()  # due: a worker takes it now
        assert await rt.serve(until_idle=True) == 1  # it parks again, on the timer
        stored = store.load("r")
        assert stored.record.status == "waiting" and stored.record.due == T0 + 60
        assert [(w.node, w.kind, w.due) for w in stored.waits()] == [
            ("cool_down", "timer", T0 + 60)]
        assert await rt.serve(until_idle=True) == 0  # not due yet
        clock.advance(60)
        assert await rt.serve(until_idle=True) == 1
        final = await rt.run(wf, run_id="r")  # replays the stored result
    assert final.ok and final["order"] == "A1 approved by ann"
    assert store.get_run("r").status == "succeeded"


async def test_a_waiting_run_in_process_takes_a_signal_sent_to_the_store(
        store_kit: StoreKit) -> None:
    """``await rt.run(...)`` waits through its waits with a store too: the wait is
    recorded, and a signal stored by another runtime reaches it (the store is polled;
    PostgreSQL notifies)."""
    wf = payment_flow()
    store = store_kit.make()
    async with flowrt.Runtime(store=store) as rt, anyio.create_task_group() as tg:
        results: list[flowrt.RunResult] = []

        async def run() -> None:
            results.append(await rt.run(wf, run_id="p"))

        tg.start_soon(run)
        await until(lambda: (store.load("p") is not None
                             and [w.node for w in store.load("p").waits()] == ["paid"]))
        assert store.get_run("p").status == "running"
        # another runtime on the same store object: this runtime is not told
        async with flowrt.Runtime(store=store) as other:
            await other.signal("p", "paid", {"amount": 7}, id="hook-1")
    assert results[0]["receipt"] == "receipt for 7"
    assert store.get_run("p").status == "succeeded"


async def test_timers_keep_their_due_time_across_a_crash(store_kit: StoreKit) -> None:
    clock = FakeClock()
    wf = flowrt.Workflow("retry_later")
    wf.add("try_once", lambda: "tried")
    wf.timer("back_off", after=["try_once"], delay=3600)
    wf.add("try_again", lambda: "again", after=["back_off"])
    store = store_kit.make()
    async with flowrt.Runtime(store=store, clock=clock) as rt:
        with pytest.raises(Crash), crash_at("back_off", on="wait"):
            await rt.run(wf, run_id="c")
        assert store.load("c").nodes["back_off"].due == T0 + 3600
        clock.advance(3000)  # the process is down for 50 minutes
        result = await rt.run(wf, run_id="c", park=True)
        assert result.status is flowrt.RunStatus.WAITING
        assert store.load("c").nodes["back_off"].due == T0 + 3600  # not restarted
        assert store.load("c").restored("try_once")
        clock.advance(600)  # the ten minutes left
        result = await rt.run(wf, run_id="c")
    assert result.ok and result["try_again"] == "again"


async def test_a_signal_before_its_node_waits_is_kept_by_the_store(store_kit: StoreKit) -> None:
    wf = payment_flow()
    store = store_kit.make()
    async with flowrt.Runtime(store=store, workflows=[wf]) as rt:
        run_id = await rt.submit(wf)
        assert await rt.signal(run_id, "paid", {"amount": 1}, id="a")  # queued: kept
        assert await rt.signal(run_id, "paid", {"amount": 2}, id="b")
        assert await rt.serve(until_idle=True) == 1
        result = await rt.run(wf, run_id=run_id)
    assert result["receipt"] == "receipt for 1"  # the first one sent


async def test_a_cancelled_parked_run_can_be_resumed_and_waits_again(
        store_kit: StoreKit) -> None:
    clock = FakeClock()
    wf = order_flow()
    store = store_kit.make()
    async with flowrt.Runtime(store=store, clock=clock, workflows=[wf]) as rt:
        await rt.run(wf, {"order_id": "B"}, run_id="b", park=True)
        await rt.cancel("b")
        assert store.get_run("b").status == "cancelled"
        with pytest.raises(flowrt.SignalRefused, match=r"no signal 'managr'.*'manager'"):
            await rt.signal("b", "managr", {"approved": True})
        await rt.resume("b")
        assert await rt.serve(until_idle=True) == 1
        assert store.get_run("b").status == "waiting"
        assert [w.node for w in store.load("b").waits()] == ["manager"]
        await rt.approve("b", "manager", by="ann")
        assert await rt.serve(until_idle=True) == 1  # parked on the timer
        clock.advance(60)
        assert await rt.serve(until_idle=True) == 1
    assert store.get_run("b").status == "succeeded"


async def test_a_worker_parks_and_another_worker_resumes(store_kit: StoreKit) -> None:
    clock = FakeClock()
    wf = order_flow()
    store = store_kit.make()
    async with flowrt.Runtime(store=store, clock=clock, workflows=[wf]) as rt:
        run_id = await rt.submit(wf, {"order_id": "W"})
        assert await rt.serve(until_idle=True) == 1
    assert store.get_run(run_id).status == "waiting"
    async with flowrt.Runtime(store=store, clock=clock, workflows=[order_flow()]) as rt2:
        await rt2.approve(run_id, "manager", by="ann")
        assert await rt2.serve(until_idle=True) == 1  # parked on the timer
        clock.advance(60)
        assert await rt2.serve(until_idle=True) == 1
    stored = store.load(run_id)
    assert stored.record.status == "succeeded"
    assert stored.outputs()["order"] == "W approved by ann"


async def test_a_run_cancelled_through_the_store_while_it_waits_in_process_stops(
        store_kit: StoreKit) -> None:
    wf = payment_flow()
    store = store_kit.make()
    async with flowrt.Runtime(store=store) as rt:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                results: list[flowrt.RunResult] = []

                async def run() -> None:
                    results.append(await rt.run(wf, run_id="k"))

                tg.start_soon(run)
                await until(lambda: "k" in rt._shared.waiting and store.load("k") is not None
                            and bool(store.load("k").waits()))
                await rt.cancel("k")
    assert results[0].status is flowrt.RunStatus.CANCELLED
    assert store.get_run("k").status == "cancelled"


# -- cancelled while waiting -------------------------------------------------------------------

CANCEL_WHILE_WAITING = """
    import anyio, flowrt
    from stores import open_spec
    from flowrt.testing import FakeClock

    def flow():
        wf = flowrt.Workflow("w")
        wf.signal("s", timeout=3600)
        wf.timer("t", delay=3600)
        @wf.node
        async def boom() -> None:
            await anyio.sleep(0.002)
            raise ValueError("boom")
        wf.add("after", lambda s, t: 1, deps=["s", "t"])
        return wf

    async def main(trial):
        wf = flow()
        how = ("scope", "timeout", "fail_fast")[trial % 3]
        store = None if SPEC == "none" else (flowrt.MemoryStore() if SPEC == "memory"
                                            else open_spec(SPEC))
        rid = f"r{trial}"
        try:
            async with flowrt.Runtime(store=store, clock=FakeClock()) as rt:
                if how == "scope":
                    with anyio.move_on_after(0.01):
                        await rt.run(wf, run_id=rid)
                    status = "cancelled"
                elif how == "timeout":
                    status = str((await rt.run(wf, run_id=rid, timeout=0.01)).status)
                else:
                    result = await rt.run(wf, run_id=rid, fail_fast=True)
                    status = str(result.status)
                    assert str(result.nodes["s"].status) == "cancelled", result.nodes
                assert not rt._shared.waiting, rt._shared.waiting
                if store is not None:
                    stored = store.load(rid)
                    assert stored.record.status in ("cancelled", "failed"), stored.record
                    assert stored.nodes["t"].status == "cancelled"
                    assert stored.nodes["t"].due is not None  # kept for a resume
        finally:
            if store is not None and SPEC != "memory":
                store.close()
        return how, status

    seen = set()
    for trial in range(TRIALS):
        seen.add(anyio.run(main, trial, backend=BACKEND))
    print(sorted(seen))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("where", ["none", "memory", "sqlite", "postgres"])
def test_cancelled_while_waiting_many_times(backend: str, where: str, tmp_path: Any,
                                            request: pytest.FixtureRequest) -> None:
    """An outer scope, a run timeout and fail_fast, each while a signal and a timer wait:
    30 times per backend and store, in a subprocess so that a hang fails."""
    if where == "postgres":
        spec = request.getfixturevalue("pg_kit").spec
    elif where == "sqlite":
        spec = str(tmp_path / "runs.db")
    else:
        spec = where
    trials = 12 if where == "postgres" else 30  # a schema per trial: slower
    source = f"SPEC = {spec!r}\nTRIALS = {trials}\n" + textwrap.dedent(CANCEL_WHILE_WAITING)
    out = run_program(source, backend=backend, timeout=120)
    assert out.strip() == str([("fail_fast", "failed"), ("scope", "cancelled"),
                               ("timeout", "cancelled")])


# -- across processes ------------------------------------------------------------------------

PARK_AND_EXIT = """
    import anyio, flowrt, sys
    from stores import open_spec
    sys.path.insert(0, TESTS)
    from test_waits import order_flow

    async def main():
        store = open_spec(SPEC)
        try:
            async with flowrt.Runtime(store=store) as rt:
                result = await rt.run(order_flow(0.3), {"order_id": "P"}, run_id="p",
                                      park=True)
                print(result.status)
        finally:
            store.close()

    anyio.run(main, backend=BACKEND)
"""

RESUME_AS_WORKER = """
    import anyio, flowrt, sys
    from stores import open_spec
    from test_waits import order_flow

    async def main():
        store = open_spec(SPEC)
        try:
            async with flowrt.Runtime(store=store, workflows=[order_flow(0.3)]) as rt:
                with anyio.fail_after(30):
                    while store.get_run("p").status != "succeeded":
                        await rt.serve(until_idle=True, poll=0.05)
                        await anyio.sleep(0.05)
        finally:
            store.close()
        print("done")

    anyio.run(main, backend=BACKEND)
"""


def test_park_exit_signal_from_another_process_resume(shared_kit: StoreKit) -> None:
    """A process parks a run and exits; the CLI approves it from another process; a
    worker process resumes it, parks it on its timer and resumes it when it is due."""
    spec = shared_kit.spec
    assert run_program(f"SPEC = {spec!r}\n" + textwrap.dedent(PARK_AND_EXIT)
                       ).strip() == "waiting"
    store = shared_kit.make()
    assert store.get_run("p").status == "waiting"
    if spec.startswith("pg:"):  # the CLI takes no schema: the same call, from Python
        command = ["-c", f"import sys; sys.path[:0] = [{str(TESTS)!r}]; "
                   "from stores import open_spec; from flowrt.durable import control; "
                   f"s = open_spec({spec!r}); "
                   "control.approve(s, 'p', 'manager', by='ann'); s.close()"]
    else:
        command = ["-m", "flowrt", "approve", "p", "manager", "--by", "ann", "--store", spec]
    cli = subprocess.run([sys.executable, *command], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert store.get_run("p").due is not None
    assert store.load("p").nodes["manager"].status == "waiting"
    out = run_program(f"SPEC = {spec!r}\n" + textwrap.dedent(RESUME_AS_WORKER), timeout=90)
    assert out.strip() == "done"
    assert store.load("p").outputs()["order"] == "P approved by ann"


WAIT_IN_PROCESS = """
    import anyio, flowrt
    from stores import open_spec
    from test_waits import payment_flow

    async def main():
        store = open_spec(SPEC)
        try:
            async with flowrt.Runtime(store=store) as rt:
                result = await rt.run(payment_flow(), run_id="x")
                print(result["receipt"])
        finally:
            store.close()

    anyio.run(main, backend=BACKEND)
"""


def test_a_signal_from_another_process_reaches_a_run_waiting_in_process(
        shared_kit: StoreKit) -> None:
    spec = shared_kit.spec
    prologue = (f"import sys\nsys.path[:0] = [{str(REPO)!r}, {str(TESTS)!r}]\n"
                f"BACKEND = 'asyncio'\nSPEC = {spec!r}\n")
    child = subprocess.Popen([sys.executable, "-c", prologue + textwrap.dedent(WAIT_IN_PROCESS)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        store = shared_kit.make()

        store_arg = spec
        if spec.startswith("pg:"):
            _, schema, url = spec.split(":", 2)
            store_arg = f"{url}?schema={schema}"

        async def send() -> None:
            with anyio.fail_after(30):
                while store.get_run("x") is None or not store.load("x").waits():
                    await anyio.sleep(0.02)
            runs = subprocess.run([sys.executable, "-m", "flowrt", "runs", "--store",
                                   store_arg], capture_output=True, text=True, timeout=60)
            assert runs.returncode == 0, runs.stderr
            assert ("waiting in the process that runs it (a signal reaches it there):\n"
                    "  x: signal 'paid'") in runs.stdout
            async with flowrt.Runtime(store=store) as rt:
                await rt.signal("x", "paid", {"amount": 12})

        anyio.run(send)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert out.strip() == "receipt for 12"


TIMER_RUN = """
    import anyio, flowrt, time
    from stores import open_spec

    class Ahead:
        '''The system clock, AHEAD seconds ahead.'''
        def now(self):
            return time.time() + AHEAD
        async def sleep_until(self, when):
            while self.now() < when:
                await anyio.sleep(0.01)

    wf = flowrt.Workflow("backoff")
    wf.add("first", lambda: 1)
    wf.timer("wait", after=["first"], delay=30)
    wf.add("then", lambda: time.time(), after=["wait"])

    async def main():
        store = open_spec(SPEC)
        try:
            async with flowrt.Runtime(store=store, clock=Ahead()) as rt:
                result = await rt.run(wf, run_id="t")
                print(result.status)
        finally:
            store.close()

    anyio.run(main, backend=BACKEND)
"""


def test_a_timer_resumes_with_the_time_left_after_sigkill(shared_kit: StoreKit) -> None:
    """A process waiting on a 30 s timer is SIGKILLed; a new process on a clock 28 s
    ahead resumes the run and waits only for what is left (a restarted timer would take
    30 s and hit the 25 s deadline)."""
    import os
    import signal
    import time

    spec = shared_kit.spec
    prologue = (f"import sys\nsys.path[:0] = [{str(REPO)!r}, {str(TESTS)!r}]\n"
                f"BACKEND = 'asyncio'\nSPEC = {spec!r}\nAHEAD = 0\n")
    child = subprocess.Popen([sys.executable, "-c", prologue + textwrap.dedent(TIMER_RUN)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = shared_kit.make()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = store.load("t")
            if stored is not None and stored.waits():
                break
            time.sleep(0.02)
        else:
            pytest.fail("the run never began waiting")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    (wait,) = store.load("t").waits()
    assert wait.node == "wait" and wait.due is not None
    assert store.get_run("t").status == "running"  # its process died holding it
    out = run_program(f"SPEC = {spec!r}\nAHEAD = 28\n" + textwrap.dedent(TIMER_RUN),
                      timeout=25)
    assert out.strip() == "succeeded"
    stored = store.load("t")
    assert stored.record.status == "succeeded" and stored.nodes["wait"].due is None
    assert stored.restored("first")


async def test_a_parked_run_holds_no_worker_slot(store_kit: StoreKit) -> None:
    """A worker of concurrency 1 parks a waiting run and goes on with the next one."""
    store = store_kit.make()
    plain = flowrt.Workflow("plain")
    plain.add("a", lambda: "done")
    wf = payment_flow()
    async with flowrt.Runtime(store=store, workflows=[wf, plain]) as rt:
        waiting = await rt.submit(wf, run_id="1-waits")
        done = await rt.submit(plain, run_id="2-plain")
        with anyio.fail_after(30):
            assert await rt.serve(concurrency=1, until_idle=True) == 2
    assert store.get_run(waiting).status == "waiting"
    assert store.get_run(done).status == "succeeded"


async def test_a_wait_on_a_path_a_branch_did_not_take_is_bypassed() -> None:
    """A wait node is a node: an untaken branch bypasses it, and the run does not wait."""
    wf = flowrt.Workflow("route")

    @wf.branch
    def route() -> str:
        return "fast"

    wf.add("fast", lambda: "f", after=[route])
    wf.approval("slow", after=[route])
    with anyio.fail_after(10):
        result = await wf.run()
    assert statuses(result) == {"route": "succeeded", "fast": "succeeded", "slow": "bypassed"}
    assert result.ok
