"""Failure handling: skip propagation, trigger rules, retries, timeouts, fail_fast."""

from __future__ import annotations

import time

import anyio
import pytest

import flowrt
from flowrt import RunStatus, Status, Trigger

pytestmark = pytest.mark.anyio


def _boom() -> None:
    raise RuntimeError("boom")


async def test_failure_skips_descendants_and_independent_branches_go_on() -> None:
    wf = flowrt.Workflow("f")
    wf.add("bad", _boom)
    wf.add("child", lambda x: x, deps=["bad"])
    wf.add("grandchild", lambda x: x, deps=["child"])
    wf.add("other", lambda: "fine")
    wf.add("other_child", lambda x: x + "!", deps=["other"])
    result = await wf.run()
    assert result.status is RunStatus.FAILED
    statuses = result.statuses()
    assert statuses == {
        "bad": Status.FAILED, "child": Status.SKIPPED, "grandchild": Status.SKIPPED,
        "other": Status.SUCCEEDED, "other_child": Status.SUCCEEDED,
    }
    assert result["other_child"] == "fine!"
    assert result.nodes["child"].attempts == 0


@pytest.mark.parametrize(
    ("trigger", "ran"),
    [
        (Trigger.ALL_SUCCESS, False),
        (Trigger.ALL_DONE, True),
        (Trigger.ONE_SUCCESS, True),
        (Trigger.ONE_FAILED, True),
        (Trigger.NONE_FAILED, False),
        (Trigger.ALL_FAILED, False),
    ],
)
async def test_trigger_rules_one_failed_one_succeeded(trigger: Trigger, ran: bool) -> None:
    wf = flowrt.Workflow("t")
    wf.add("good", lambda: 1)
    wf.add("bad", _boom)
    wf.add("judge", lambda: "ran", after=["good", "bad"], trigger=trigger)
    result = await wf.run()
    assert result.nodes["judge"].status is (Status.SUCCEEDED if ran else Status.SKIPPED)


@pytest.mark.parametrize(
    ("trigger", "ran"),
    [
        (Trigger.ALL_SUCCESS, False),
        (Trigger.ALL_DONE, True),
        (Trigger.ONE_SUCCESS, True),
        (Trigger.ONE_FAILED, False),
        (Trigger.NONE_FAILED, True),
        (Trigger.ALL_FAILED, False),
    ],
)
async def test_trigger_rules_one_skipped_one_succeeded(trigger: Trigger, ran: bool) -> None:
    wf = flowrt.Workflow("t")
    wf.add("bad", _boom)
    wf.add("skipped", lambda x: x, deps=["bad"])
    wf.add("good", lambda: 1)
    wf.add("judge", lambda: "ran", after=["good", "skipped"], trigger=trigger)
    result = await wf.run()
    assert result.nodes["judge"].status is (Status.SUCCEEDED if ran else Status.SKIPPED)


async def test_all_failed_runs_a_handler() -> None:
    wf = flowrt.Workflow("t")
    wf.add("a", _boom)
    wf.add("b", _boom)
    wf.add("handler", lambda: "handled", after=["a", "b"], trigger="all_failed")
    result = await wf.run()
    assert result["handler"] == "handled"
    assert result.status is RunStatus.FAILED


async def test_a_dependency_without_output_gives_the_default_or_none() -> None:
    # Before the fix the node received flowrt's internal '<missing>' marker (issue 11,
    # item 18; design.md, "Control flow").
    wf = flowrt.Workflow("missing")
    wf.add("bad", _boom)
    wf.add("good", lambda: 2)
    wf.add("skipped", lambda bad: bad, deps=["bad"])  # skipped: its dependency failed
    seen: dict[str, object] = {}

    @wf.node(trigger=Trigger.ALL_DONE)
    def named(bad: object, good: int, skipped: object = "default") -> None:  # by name
        seen["named"] = (bad, good, skipped)

    @wf.node(trigger=Trigger.ALL_DONE)
    async def named_async(bad: str = "fallback", *, good: int) -> None:
        seen["named_async"] = (bad, good)

    def positional(a: object, b: object = 5, *rest: object) -> None:
        seen["positional"] = (a, b, rest)

    wf.add("positional", positional, deps=["bad", "skipped", "good", "bad"],
           trigger=Trigger.ALL_DONE)
    wf.add("mapped", lambda value=None, other="x": seen.setdefault("mapped", (value, other)),
           deps={"value": "skipped", "other": "good"}, trigger=Trigger.NONE_FAILED)
    wf.add("timed", lambda bad=3.5: seen.setdefault("timed", bad), deps=["bad"], timeout=5,
           trigger=Trigger.ONE_FAILED, executor="loop")
    result = await wf.run()
    assert result.nodes["skipped"].status is Status.SKIPPED
    assert seen["named"] == (None, 2, "default")
    assert seen["named_async"] == ("fallback", 2)
    assert seen["positional"] == (None, 5, (2, None))
    assert seen["mapped"] == (None, 2)  # NONE_FAILED runs after a skipped dependency
    assert seen["timed"] == 3.5


async def test_compensation_only_when_a_step_fails() -> None:
    def build(fail: bool) -> flowrt.Workflow:
        wf = flowrt.Workflow("checkout")
        wf.add("charge", lambda: "paid")

        def ship(charge: str) -> str:
            if fail:
                raise RuntimeError("no courier")
            return "shipped"

        wf.add("ship", ship, deps=["charge"])
        wf.add("refund", lambda: "refunded", after=["ship"], trigger=Trigger.ONE_FAILED)
        return wf

    ok = await build(False).run()
    assert ok.ok and ok.nodes["refund"].status is Status.SKIPPED
    failed = await build(True).run()
    assert failed["refund"] == "refunded"


async def test_retries_then_success() -> None:
    wf = flowrt.Workflow("r")
    calls: list[int] = []

    @wf.node(retry=flowrt.Retry(attempts=3, delay=0.001, jitter=0))
    async def flaky(ctx: flowrt.Context) -> int:
        calls.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("try again")
        return ctx.attempt

    result = await wf.run()
    assert result["flaky"] == 3
    assert calls == [1, 2, 3]
    assert result.nodes["flaky"].attempts == 3
    assert result.metrics.retries == 2


async def test_retries_count_and_exhaustion() -> None:
    wf = flowrt.Workflow("r")
    calls: list[int] = []

    @wf.node(retries=2)
    def always(ctx: flowrt.Context) -> None:
        calls.append(ctx.attempt)
        raise ConnectionError(f"attempt {ctx.attempt}")

    result = await wf.run()
    assert calls == [1, 2, 3]  # retries=2: two more after the first
    assert result.nodes["always"].status is Status.FAILED
    assert str(result.errors["always"]) == "attempt 3"


async def test_retry_only_on_listed_exceptions() -> None:
    wf = flowrt.Workflow("r")
    calls = []

    @wf.node(retry=flowrt.Retry(attempts=5, delay=0, on=ConnectionError))
    async def picky() -> None:
        calls.append(1)
        raise ValueError("not retried")

    result = await wf.run()
    assert len(calls) == 1 and isinstance(result.errors["picky"], ValueError)


async def test_retry_backoff_waits() -> None:
    wf = flowrt.Workflow("r")
    times: list[float] = []

    @wf.node(retry=flowrt.Retry(attempts=3, delay=0.05, factor=2, jitter=0))
    async def slow_retry() -> None:
        times.append(time.monotonic())
        raise ConnectionError

    await wf.run()
    assert times[1] - times[0] >= 0.045
    assert times[2] - times[1] >= 0.095


async def test_timeout_per_attempt() -> None:
    wf = flowrt.Workflow("timeout")
    attempts = []

    @wf.node(timeout=0.05, retry=flowrt.Retry(attempts=2, delay=0))
    async def hangs(ctx: flowrt.Context) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            await anyio.sleep(10)
        return "second time lucky"

    start = time.monotonic()
    result = await wf.run()
    assert time.monotonic() - start < 5
    assert result["hangs"] == "second time lucky"
    assert attempts == [1, 2]

    wf2 = flowrt.Workflow("timeout2")

    @wf2.node(timeout=0.05)
    async def always_hangs() -> None:
        await anyio.sleep(10)

    result = await wf2.run()
    assert isinstance(result.errors["always_hangs"], TimeoutError)


async def test_timeout_on_sync_node() -> None:
    wf = flowrt.Workflow("sync-timeout")

    @wf.node(timeout=0.05)
    def blocking() -> None:
        time.sleep(2.0)

    start = time.monotonic()
    result = await wf.run()
    assert time.monotonic() - start < 1.5  # the thread is abandoned, not waited for
    assert isinstance(result.errors["blocking"], TimeoutError)


async def test_fail_fast_cancels_running_nodes() -> None:
    wf = flowrt.Workflow("ff")
    started = anyio.Event()

    @wf.node
    async def slow() -> None:
        started.set()
        await anyio.sleep(10)

    @wf.node
    async def bad() -> None:
        await started.wait()
        raise RuntimeError("stop everything")

    wf.add("later", lambda x: x, deps=["bad"], trigger="all_done")
    wf.add("after_slow", lambda x: x, deps=["slow"])

    start = time.monotonic()
    result = await wf.run(fail_fast=True)
    assert time.monotonic() - start < 5
    assert result.status is RunStatus.FAILED
    assert result.statuses() == {
        "slow": Status.CANCELLED, "bad": Status.FAILED, "later": Status.CANCELLED,
        "after_slow": Status.CANCELLED,
    }


async def test_without_fail_fast_others_finish() -> None:
    wf = flowrt.Workflow("no-ff")

    @wf.node
    async def slow() -> str:
        await anyio.sleep(0.05)
        return "done"

    wf.add("bad", _boom)
    result = await wf.run()
    assert result["slow"] == "done" and result.status is RunStatus.FAILED


async def test_exception_in_node_never_crashes_runtime() -> None:
    wf = flowrt.Workflow("robust")

    class Weird(BaseException):
        pass

    def raises_base() -> None:
        raise Weird("from a sync node")  # a BaseException that is no cancellation

    async def async_raises_custom() -> None:
        await anyio.sleep(0)
        raise Weird

    wf.add("a", raises_base, executor="loop")
    wf.add("b", async_raises_custom)
    wf.add("c", lambda: 1, deps=[])
    wf.add("d", lambda x, y: x, deps=["c", "c"])
    result = await wf.run()
    assert isinstance(result.errors["a"], Weird)
    assert isinstance(result.errors["b"], Weird)
    assert result["d"] == 1


async def test_wrong_arguments_fail_the_node() -> None:
    wf = flowrt.Workflow("args")
    wf.add("a", lambda: 1)
    wf.add("b", lambda *xs: xs[5], deps=["a"])
    result = await wf.run()
    assert isinstance(result.errors["b"], IndexError)


async def test_a_run_with_a_node_skipped_by_its_trigger_rule_is_ok() -> None:
    # docs/decisions/010-run-ok.md: as in Airflow and Prefect, a node whose rule did not
    # hold (an alert under ONE_FAILED when nothing failed) does not fail the run.
    wf = flowrt.Workflow("happy")
    wf.add("charge", lambda: "charged")
    wf.add("alert", lambda: "alert", after=["charge"], trigger=Trigger.ONE_FAILED)
    wf.add("after_alert", lambda alert: alert, deps=["alert"])
    result = await wf.run()
    assert result.ok and result.status is RunStatus.SUCCEEDED
    assert result.counts() == {"succeeded": 1, "skipped": 2}
    assert result.raise_for_status() is result
    with pytest.raises(flowrt.NoOutput, match="node 'alert' has no output: it ended skipped"):
        result["alert"]
