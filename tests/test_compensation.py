"""Saga compensation (docs/compensation.md): ``compensate=`` on nodes, the rollback's
order, partial failure, timeouts and cancellation, and durable rollbacks on every
store (a crash during the rollback resumes the rollback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stores import StoreKit
from subproc import run_program

import flowrt
import flowrt.testing
from flowrt import RunStatus, Status
from flowrt._engine import saga
from flowrt.testing import crash_at

pytestmark = pytest.mark.anyio
HERE = Path(__file__).parent


def _saga(log: list[Any], fail: bool = True, slow: float = 0.0) -> flowrt.Workflow:
    """a -> (b, c) -> d -> boom: a at level 0, b and c at level 1, d at level 2."""
    wf = flowrt.Workflow("saga")

    def undo(name: str) -> Any:
        async def compensation(output: Any) -> None:
            log.append(("start", name, output))
            await anyio.sleep(slow)
            log.append(("end", name, output))
        return compensation

    @wf.node(compensate=undo("a"))
    async def a() -> int:
        return 1

    @wf.node(compensate=undo("b"))
    async def b(a: int) -> int:
        return a + 10

    @wf.node(compensate=undo("c"))
    async def c(a: int) -> int:
        return a + 20

    @wf.node(compensate=undo("d"))
    async def d(b: int, c: int) -> int:
        return b + c

    @wf.node
    async def boom(d: int) -> None:
        if fail:
            raise RuntimeError("shipping refused")

    return wf


async def test_compensations_run_in_reverse_topological_order_a_level_at_a_time() -> None:
    log: list[Any] = []
    result = await _saga(log, slow=0.02).run()
    assert result.status is RunStatus.FAILED
    assert result.compensation == {n: Status.COMPENSATED for n in "abcd"}
    assert [result.nodes[n].status for n in "abcd"] == [Status.COMPENSATED] * 4
    assert result.nodes["boom"].status is Status.FAILED
    # each receives its node's output; d first, then b and c together, then a
    assert log[:2] == [("start", "d", 32), ("end", "d", 32)]
    level1 = log[2:6]
    assert {e[0] for e in level1[:2]} == {"start"}, "b and c run concurrently"
    assert {(e[1], e[2]) for e in level1} == {("b", 11), ("c", 21)}
    assert log[6:] == [("start", "a", 1), ("end", "a", 1)]
    assert isinstance(result.errors["boom"], RuntimeError) and len(result.errors) == 1
    with pytest.raises(flowrt.NoOutput):
        result["a"]  # undone: no output to hand out


async def test_nothing_is_compensated_when_the_run_succeeds_or_compensate_is_off() -> None:
    log: list[Any] = []
    ok = await _saga(log, fail=False).run()
    assert ok.ok and ok.compensation == {} and log == []
    off = await _saga(log).run(compensate=False)
    assert off.status is RunStatus.FAILED and off.compensation == {} and log == []
    assert off.nodes["a"].status is Status.SUCCEEDED and off["a"] == 1


async def test_only_succeeded_nodes_are_compensated() -> None:
    calls: list[str] = []
    wf = flowrt.Workflow("partial")

    @wf.node(compensate=lambda out: calls.append(f"undo ok {out}"))
    def ok() -> str:
        return "done"

    @wf.node(compensate=lambda out: calls.append("undo failing"))
    async def failing() -> None:
        raise ValueError("no")

    @wf.node(compensate=lambda out: calls.append("undo skipped"))
    async def skipped(failing: None) -> None:
        pass

    result = await wf.run()
    assert calls == ["undo ok done"]
    assert result.compensation == {"ok": Status.COMPENSATED}
    assert result.nodes["failing"].status is Status.FAILED
    assert result.nodes["skipped"].status is Status.SKIPPED


async def test_a_failing_compensation_does_not_stop_the_others() -> None:
    calls: list[str] = []
    wf = flowrt.Workflow("refunds")

    def refuse(out: str) -> None:
        raise ConnectionError(f"cannot undo {out}")

    wf.add("first", lambda: "charge-1", compensate=lambda out: calls.append(out))
    wf.add("second", lambda first: "charge-2", compensate=refuse)
    wf.add("third", lambda second: "ship", compensate=lambda out: calls.append(out))

    async def fail(third: str) -> None:
        raise RuntimeError("carrier down")

    wf.add("last", fail)
    result = await wf.run()
    assert result.compensation == {"first": Status.COMPENSATED,
                                   "second": Status.COMPENSATION_FAILED,
                                   "third": Status.COMPENSATED}
    assert calls == ["ship", "charge-1"]
    error = result.nodes["second"].error
    assert isinstance(error, ConnectionError) and "charge-2" in str(error)
    assert set(result.errors) == {"second", "last"}
    with pytest.raises(flowrt.WorkflowFailed, match="cannot undo charge-2"):
        result.raise_for_status()


async def test_sync_and_async_compensations_may_take_a_context() -> None:
    seen: list[tuple[str, Any, str, str]] = []
    wf = flowrt.Workflow("ctx")

    def sync_undo(out: int, ctx: flowrt.Context) -> None:
        seen.append(("sync", out, ctx.node, ctx.run_id))

    async def async_undo(out: int, ctx: flowrt.Context) -> None:
        seen.append(("async", out, ctx.node, ctx.run_id))

    wf.add("one", lambda: 1, compensate=sync_undo)
    wf.add("two", lambda: 2, compensate=async_undo)

    async def fail(one: int, two: int) -> None:
        raise RuntimeError

    wf.add("three", fail)
    result = await wf.run(run_id="r1")
    assert sorted(seen) == [("async", 2, "two", "r1"), ("sync", 1, "one", "r1")]
    assert result.compensation == {"one": Status.COMPENSATED, "two": Status.COMPENSATED}


async def test_compensation_runs_when_the_run_times_out_or_fails_fast() -> None:
    calls: list[str] = []
    wf = flowrt.Workflow("slow")
    wf.add("booked", lambda: "room", compensate=lambda out: calls.append(out))

    async def wait(booked: str) -> None:
        await anyio.sleep(30)

    wf.add("wait", wait)
    result = await wf.run(timeout=0.1)
    assert result.status is RunStatus.CANCELLED
    assert result.nodes["wait"].status is Status.CANCELLED
    assert result.compensation == {"booked": Status.COMPENSATED} and calls == ["room"]

    calls.clear()

    async def fails(booked: str) -> None:
        raise ValueError("no")

    wf.add("fails", fails)
    result = await wf.run(fail_fast=True)
    assert result.status is RunStatus.FAILED and calls == ["room"]


async def test_compensation_events() -> None:
    events: list[tuple[str, str | None]] = []
    log: list[Any] = []
    await _saga(log).run(on_event=lambda e: events.append((str(e.kind), e.node)))
    kinds = [(k, n) for k, n in events if k.startswith("compensat")]
    assert kinds[:2] == [("compensating", "d"), ("compensated", "d")]
    assert kinds[-2:] == [("compensating", "a"), ("compensated", "a")]
    assert len(kinds) == 8


async def test_the_rollback_still_runs_when_the_caller_is_cancelled(
        store_kit: StoreKit, anyio_backend: str) -> None:
    """Cancelled from outside: the rollback runs, shielded, and is recorded."""
    calls: list[str] = []
    store = store_kit.make()
    wf = flowrt.Workflow("outer")

    async def undo(out: str) -> None:
        await anyio.sleep(0.05)  # must not be cut short by the cancellation
        calls.append(out)

    wf.add("reserve", lambda: "seat", compensate=undo)

    async def hang(reserve: str) -> None:
        await anyio.sleep(30)

    wf.add("hang", hang)
    async with flowrt.Runtime(store=store) as rt:
        with anyio.move_on_after(0.2) as scope:
            await rt.run(wf, run_id="c1")
    assert scope.cancelled_caught
    assert calls == ["seat"]
    stored = store.load("c1")
    assert stored.record.status == "cancelled"
    assert stored.nodes["reserve"].status == "compensated"
    assert stored.nodes["hang"].status == "cancelled"


async def test_a_hanging_compensation_is_cut_off_after_the_grace(
        monkeypatch: pytest.MonkeyPatch, anyio_backend: str) -> None:
    monkeypatch.setattr(saga, "ROLLBACK_GRACE", 0.2)
    store = flowrt.MemoryStore()
    wf = flowrt.Workflow("stuck")

    async def forever(out: str) -> None:
        await anyio.sleep(60)

    wf.add("low", lambda: "x", compensate=lambda out: None)
    wf.add("high", lambda low: "y", compensate=forever)

    async def hang(high: str) -> None:
        await anyio.sleep(60)

    wf.add("hang", hang)
    t0 = time.monotonic()
    async with flowrt.Runtime(store=store) as rt:
        with anyio.move_on_after(0.1):
            await rt.run(wf, run_id="s1")
    assert time.monotonic() - t0 < 5
    nodes = store.load("s1").nodes
    assert nodes["high"].status == "compensation_failed"
    assert "RollbackCutOff" in (nodes["high"].error or "")
    # the level above was not started: left to a resume, which finishes the rollback
    assert nodes["low"].status == "compensating"
    async with flowrt.Runtime(store=store) as rt:
        result = await rt.run(wf, run_id="s1")
    assert result.status is RunStatus.CANCELLED
    assert result.compensation == {"low": Status.COMPENSATED,
                                   "high": Status.COMPENSATION_FAILED}


def test_compensations_are_recorded_and_a_finished_rollback_is_not_redone(
        any_store: Any) -> None:
    log: list[Any] = []
    wf = _saga(log)
    first = wf.run_sync(store=any_store, run_id="r")
    assert first.compensation == {n: Status.COMPENSATED for n in "abcd"}
    nodes = any_store.load("r").nodes
    assert {n: nodes[n].status for n in "abcd"} == dict.fromkeys("abcd", "compensated")
    log.clear()
    again = wf.run_sync(store=any_store, run_id="r")
    assert log == [] and again.status is RunStatus.FAILED
    assert again.compensation == {n: Status.COMPENSATED for n in "abcd"}
    assert again.nodes["boom"].status is Status.FAILED


async def test_resuming_a_rolled_back_run_is_refused_and_changes_nothing(
        any_store: Any) -> None:
    """A run rolled back to the end is over (decision 020): ``rt.resume`` says so,
    naming the run and what was undone, and leaves the store as it was -- as the
    dashboard and ``flowrt resume`` do (one rule: ``StoredRun.rolled_back``). A failed
    run that was not rolled back is queued again."""
    log: list[Any] = []
    wf = _saga(log)
    await wf.run(store=any_store, run_id="undone")
    await wf.run(store=any_store, run_id="kept", compensate=False)
    before = any_store.get_run("undone")
    async with flowrt.Runtime(store=any_store) as rt:
        with pytest.raises(flowrt.RunRolledBack) as refused:
            await rt.resume("undone")
        assert str(refused.value) == (
            "run 'undone' was rolled back (failed; undone: a, b, c, d): it is over, and "
            "resuming it would run nothing (its compensations ran). Start a new run to "
            "try again.")
        assert (refused.value.run_id, refused.value.status, refused.value.undone) == (
            "undone", "failed", ("a", "b", "c", "d"))
        assert any_store.get_run("undone") == before
        assert (await rt.resume("kept")).status == "failed"
        assert any_store.get_run("kept").status == "queued"
        with pytest.raises(flowrt.RunNotFound, match="did you mean 'kept'"):
            await rt.resume("kep")
    # the error survives pickling (a worker process sends it back so)
    import pickle

    copy = pickle.loads(pickle.dumps(refused.value))
    assert str(copy) == str(refused.value) and copy.undone == refused.value.undone


def test_a_rollback_cut_short_is_not_rolled_back_to_the_end() -> None:
    """The one rule: a run is over once something was undone and nothing is left
    "compensating" (a crash mid-rollback is resumed to finish it), and only for a run
    that failed, was cancelled or dead-lettered."""
    from flowrt.durable._store import rolled_back

    assert rolled_back("failed", ["succeeded", "failed", "compensated"])
    assert rolled_back("cancelled", ["compensation_failed", "cancelled"])
    assert not rolled_back("failed", ["compensating", "compensated", "failed"])
    assert not rolled_back("running", ["compensated"])  # the rollback goes on
    assert not rolled_back("failed", ["succeeded", "failed"])  # nothing was undone


@pytest.mark.parametrize("crash_after", ["d", "b", "a"])
def test_a_crash_during_the_rollback_resumes_the_rollback(any_store: Any,
                                                          crash_after: str) -> None:
    log: list[Any] = []
    wf = _saga(log)
    with crash_at(crash_after, on="compensated"), pytest.raises(flowrt.testing.Crash):
        wf.run_sync(store=any_store, run_id="r")
    done = {e[1] for e in log if e[0] == "end"}
    recorded = {n for n, rec in any_store.load("r").nodes.items()
                if rec.status == "compensated"}
    assert crash_after in recorded and recorded <= done
    log.clear()
    result = wf.run_sync(store=any_store, run_id="r")
    again = {e[1] for e in log if e[0] == "start"}
    assert again.isdisjoint(recorded), "a recorded compensation ran again"
    assert again | recorded == set("abcd")
    assert result.status is RunStatus.FAILED
    assert result.compensation == {n: Status.COMPENSATED for n in "abcd"}
    assert result.nodes["boom"].status is Status.FAILED
    assert any_store.load("r").record.status == "failed"


def test_bad_compensate_options_are_refused() -> None:
    wf = flowrt.Workflow("bad")
    with pytest.raises(flowrt.GraphError, match="compensate= must be a function"):
        wf.add("a", lambda: 1, compensate="refund")
    with pytest.raises(flowrt.GraphError, match="no positional parameter"):
        wf.add("b", lambda: 1, compensate=lambda: None)
    with pytest.raises(TypeError, match="did you mean compensate="):
        wf.add("c", lambda: 1, compensat=print)


# -- real processes -------------------------------------------------------------------------


def _saga_worker(spec: str, run_id: str, log: Path, backend: str, seed: int,
                 kill: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "saga_worker.py"), "saga", spec, run_id, str(log),
         backend, str(seed), "kill" if kill else "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_during_the_rollback_then_resume(shared_kit: StoreKit, tmp_path: Path,
                                                 seed: int) -> None:
    """A real process is killed (SIGKILL) inside a compensation; a second one resumes:
    no forward node runs again, no recorded compensation runs again, and the rollback
    ends with every succeeded node compensated."""
    import saga_worker

    backend = ("asyncio", "trio")[seed % 2]
    log = tmp_path / "log"
    shared_kit.make().close()
    first = _saga_worker(shared_kit.spec, "k", log, backend, seed, kill=True)
    out, err = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, err
    recorded = {n for n, rec in shared_kit.make().load("k").nodes.items()
                if rec.status == "compensated"}
    lines_before = log.read_text().splitlines()
    second = _saga_worker(shared_kit.spec, "k", log, backend, seed, kill=False)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 1, err  # the run ends FAILED (rolled back)
    assert out.strip() == "failed"
    after = log.read_text().splitlines()[len(lines_before):]
    assert not [line for line in after if line.startswith("start ")], "a node ran again"
    undone_again = {line.split()[1] for line in after if line.startswith("undo ")}
    assert undone_again.isdisjoint(recorded)
    nodes = shared_kit.make().load("k").nodes
    assert {n for n, rec in nodes.items() if rec.status == "compensated"} == set(
        saga_worker.COMPENSATED)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancelled_while_compensating_many_times(tmp_path: Path, backend: str) -> None:
    """The caller is cancelled at random moments, before and during the rollback, 60
    times per store: nothing hangs, and every compensation that started is recorded as
    ended (the rollback is shielded)."""
    out = run_program(f"""
        import random, anyio, flowrt
        db = {str(tmp_path / "c.db")!r}

        def build(log):
            wf = flowrt.Workflow("cancelled")
            def undo(name):
                async def u(out):
                    log.append(name)
                    await anyio.sleep(random.random() * 0.01)
                return u
            prev = []
            for i in range(6):
                async def node(*deps, i=i):
                    await anyio.sleep(random.random() * 0.004)
                    if i == 5:
                        raise RuntimeError("late failure")
                    return i
                wf.add(f"n{{i}}", node, deps=prev, compensate=undo(f"n{{i}}"))
                prev = [f"n{{i}}"]
            return wf

        async def main():
            for store in (flowrt.MemoryStore(), flowrt.SQLiteStore(db)):
                for trial in range(60):
                    log = []
                    wf = build(log)
                    async with flowrt.Runtime(store=store) as rt:
                        with anyio.move_on_after(random.random() * 0.03):
                            await rt.run(wf, run_id=f"t{{trial}}")
                    stored = store.load(f"t{{trial}}")
                    if stored is None:  # cancelled before the run was even stored
                        assert log == [], log
                        continue
                    nodes = stored.nodes
                    for name in log:
                        assert nodes[name].status == "compensated", (trial, name, nodes[name])
                    for name, rec in nodes.items():
                        assert rec.status != "compensating", (trial, name)
                store.close()
            print("ok")

        random.seed(5)
        anyio.run(main, backend=BACKEND)
    """, backend=backend, timeout=120)
    assert out.strip().endswith("ok")


# -- properties -----------------------------------------------------------------------------


@st.composite
def _sagas(draw: Any) -> list[tuple[list[int], bool, bool, bool, float]]:
    """Per node: its deps, whether it has a compensation, fails, whose compensation
    fails, and how long things sleep."""
    n = draw(st.integers(1, 12))
    return [(draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else [],
             draw(st.booleans()), draw(st.sampled_from([False, False, False, True])),
             draw(st.sampled_from([False, False, True])),
             draw(st.sampled_from([0.0, 0.0, 0.001]))) for i in range(n)]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_sagas())
def test_rollback_invariants(backend: str, case: list[Any]) -> None:
    """Random DAGs with random failures: compensations run only for succeeded nodes,
    each with its output, once, in reverse topological order (level by level)."""
    events: list[tuple[str, str]] = []
    wf = flowrt.Workflow("prop")
    for i, (deps, compensated, fails, undo_fails, sleep) in enumerate(case):
        async def node(*_: Any, i: int = i, fails: bool = fails, sleep: float = sleep) -> int:
            if sleep:
                await anyio.sleep(sleep)
            if fails:
                raise RuntimeError(f"n{i}")
            return i * 10

        async def undo(output: int, ctx: flowrt.Context, undo_fails: bool = undo_fails,
                       sleep: float = sleep, i: int = i) -> None:
            assert output == i * 10
            events.append(("start", ctx.node))
            if sleep:
                await anyio.sleep(sleep)
            events.append(("end", ctx.node))
            if undo_fails:
                raise ValueError(ctx.node)

        wf.add(f"n{i}", node, deps=[f"n{d}" for d in deps],
               compensate=undo if compensated else None)
    result = wf.run_sync(backend=backend)
    succeeded_forward = {f"n{i}" for i, c in enumerate(case)
                         if result.nodes[f"n{i}"].status in (
                             Status.SUCCEEDED, Status.COMPENSATED, Status.COMPENSATION_FAILED)}
    expected = set() if result.ok else {n for n in succeeded_forward
                                        if case[int(n[1:])][1]}
    assert set(result.compensation) == expected
    assert [n for kind, n in events if kind == "start"].count("n0") <= 1
    assert sorted(n for kind, n in events if kind == "start") == sorted(expected)
    for name, status in result.compensation.items():
        undo_fails = case[int(name[1:])][3]
        assert status is (Status.COMPENSATION_FAILED if undo_fails else Status.COMPENSATED)
    plan = wf.compile()
    position = {(kind, n): k for k, (kind, n) in enumerate(events)}
    for u in expected:
        for v in expected:
            if plan.level(v) > plan.level(u):
                assert position[("end", v)] < position[("start", u)], (v, u, events)
