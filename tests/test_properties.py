"""Property tests of the scheduler's invariants over random workflows.

For random DAGs with random failures, retries, delays, triggers and limits, on both
backends: a node never starts before each of its dependencies reached a final status;
it never runs more attempts than it is allowed; observed concurrency never exceeds a
limit; every node ends in a final status that its trigger rule explains; and the run's
status follows from the nodes' statuses.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowrt
from flowrt import RunStatus, Status, Trigger

TRIGGERS = list(Trigger)


@dataclass
class NodePlan:
    deps: list[int]
    failing_attempts: int  # attempts that raise before one succeeds
    attempts: int  # attempts allowed
    sleep: float  # 0: never suspends; else anyio.sleep(sleep)
    sync: bool
    limit: str | None
    trigger: Trigger


@dataclass
class Observed:
    final: set[str] = field(default_factory=set)
    attempts: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # sync nodes run in threads


@st.composite
def workflows(draw: Any) -> tuple[list[NodePlan], int | None, dict[str, int], list[int]]:
    n = draw(st.integers(1, 18))
    nodes = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        attempts = draw(st.integers(1, 3))
        nodes.append(NodePlan(
            deps=deps,
            failing_attempts=draw(st.sampled_from([0, 0, 0, 1, 2, 5])),
            attempts=attempts,
            sleep=draw(st.sampled_from([0.0, 0.0, 0.0005, 0.002])),
            sync=draw(st.booleans()),
            limit=draw(st.sampled_from([None, None, "a", "b"])),
            trigger=draw(st.sampled_from(TRIGGERS)),
        ))
    cap = draw(st.sampled_from([None, 1, 2, 3, 8]))
    limits = {"a": draw(st.integers(1, 3)), "b": draw(st.integers(1, 2))}
    order = draw(st.permutations(list(range(n))))
    return nodes, cap, limits, order


def build(nodes: list[NodePlan], order: list[int], seen: Observed) -> flowrt.Workflow:
    wf = flowrt.Workflow("prop")
    for i in order:  # insertion order shuffled: dependencies may come after dependents
        plan = nodes[i]
        name = f"n{i}"
        deps = [f"n{d}" for d in plan.deps]
        keys = ["all"] + ([plan.limit] if plan.limit else [])

        def enter(ctx: flowrt.Context, plan: NodePlan = plan, deps: list[str] = deps,
                  keys: list[str] = keys) -> None:
            with seen.lock:
                _enter(ctx, plan, deps, keys)

        def _enter(ctx: flowrt.Context, plan: NodePlan, deps: list[str], keys: list[str]
                   ) -> None:
            seen.attempts[ctx.node] = ctx.attempt
            missing = [d for d in deps if d not in seen.final]
            if missing:
                seen.violations.append(f"{ctx.node} started before {missing} were final")
            if ctx.attempt > plan.attempts:
                seen.violations.append(f"{ctx.node} ran attempt {ctx.attempt}")
            for k in keys:
                seen.running[k] = seen.running.get(k, 0) + 1
                seen.peak[k] = max(seen.peak.get(k, 0), seen.running[k])

        def leave(ctx: flowrt.Context, plan: NodePlan = plan, keys: list[str] = keys) -> None:
            with seen.lock:
                for k in keys:
                    seen.running[k] -= 1
            if ctx.attempt <= plan.failing_attempts:
                raise RuntimeError(f"{ctx.node} attempt {ctx.attempt}")

        if plan.sync:

            def fn(ctx: flowrt.Context, plan: NodePlan = plan, enter: Any = enter,
                   leave: Any = leave) -> str:
                import time

                enter(ctx)
                if plan.sleep:
                    time.sleep(plan.sleep)
                leave(ctx)
                return ctx.node
        else:

            async def fn(ctx: flowrt.Context, plan: NodePlan = plan, enter: Any = enter,  # type: ignore[misc]
                         leave: Any = leave) -> str:
                enter(ctx)
                if plan.sleep:
                    await anyio.sleep(plan.sleep)
                leave(ctx)
                return ctx.node

        wf.add(name, fn, after=deps, limit=plan.limit, trigger=plan.trigger,
               retry=flowrt.Retry(attempts=plan.attempts, delay=0) if plan.attempts > 1 else None)
    return wf


def expected_status(plan: NodePlan, dep_statuses: list[Status]) -> Status:
    if dep_statuses:
        ok = sum(s is Status.SUCCEEDED for s in dep_statuses)
        failed = sum(s is Status.FAILED for s in dep_statuses)
        if not plan.trigger.holds(len(dep_statuses), ok, failed):
            return Status.SKIPPED
    return Status.FAILED if plan.failing_attempts >= plan.attempts else Status.SUCCEEDED


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=workflows())
def test_scheduler_invariants(backend: str, case: Any) -> None:
    nodes, cap, limits, order = case
    seen = Observed()
    wf = build(nodes, order, seen)

    def on_event(event: flowrt.Event) -> None:
        if event.kind in (flowrt.EventKind.SUCCEEDED, flowrt.EventKind.FAILED,
                          flowrt.EventKind.SKIPPED, flowrt.EventKind.CANCELLED):
            assert event.node is not None
            seen.final.add(event.node)

    result = wf.run_sync(backend=backend, max_concurrency=cap, limits=limits,
                         on_event=on_event)
    assert seen.violations == []
    if cap is not None:
        assert seen.peak.get("all", 0) <= cap
    for name, k in limits.items():
        assert seen.peak.get(name, 0) <= k
    statuses = result.statuses()
    assert all(s.final for s in statuses.values())
    # Every status is what the rules say, given the dependencies' statuses.
    for i, plan in enumerate(nodes):
        deps = [statuses[f"n{d}"] for d in plan.deps]
        assert statuses[f"n{i}"] is expected_status(plan, deps), f"n{i}"
        ran = result.nodes[f"n{i}"].attempts
        assert ran <= plan.attempts
        if statuses[f"n{i}"] is Status.SKIPPED:
            assert ran == 0
    any_failed = any(s is Status.FAILED for s in statuses.values())
    assert result.status is (RunStatus.FAILED if any_failed else RunStatus.SUCCEEDED)


# -- scale (issue 18): a plain run (no events, store, limits) settles successes inline,
# and a large plan keeps its CSR arrays as array("i") instead of lists --
@pytest.mark.parametrize("arrays", [False, True], ids=["lists", "arrays"])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=workflows())
def test_plain_runs_follow_the_rules(backend: str, arrays: bool, case: Any) -> None:
    """The same invariants without on_event or limits (the runner's inline success path),
    with the plan's arrays as lists (a small plan) and as C arrays (a large one)."""
    from unittest import mock

    from flowrt.workflow import _plan

    nodes, _cap, _limits, order = case
    for plan in nodes:
        plan.limit = None
    ended: list[str] = []  # nodes in the order their last attempt ended
    before: dict[str, set[str]] = {}  # node -> the nodes ended when it first started
    wf = flowrt.Workflow("plain")
    for i in order:
        plan = nodes[i]

        async def fn(ctx: flowrt.Context, plan: NodePlan = plan) -> str:
            before.setdefault(ctx.node, set(ended))
            if plan.sleep:
                await anyio.sleep(plan.sleep)
            if ctx.attempt <= plan.failing_attempts:
                if ctx.attempt == plan.attempts:
                    ended.append(ctx.node)
                raise RuntimeError(f"{ctx.node} attempt {ctx.attempt}")
            ended.append(ctx.node)
            return ctx.node

        wf.add(f"n{i}", fn, after=[f"n{d}" for d in plan.deps], trigger=plan.trigger,
               retry=flowrt.Retry(attempts=plan.attempts, delay=0) if plan.attempts > 1 else None)
    with mock.patch.object(_plan, "ARRAYS_FROM", 0 if arrays else 1 << 30):
        result = wf.run_sync(backend=backend)
    statuses = result.statuses()
    for i, plan in enumerate(nodes):
        name = f"n{i}"
        deps = [statuses[f"n{d}"] for d in plan.deps]
        assert statuses[name] is expected_status(plan, deps), name
        if name in before:  # it ran: after every dependency that ran had ended
            ran = {f"n{d}" for d in plan.deps if result.nodes[f"n{d}"].attempts}
            assert ran <= before[name], name
    any_failed = any(s is Status.FAILED for s in statuses.values())
    assert result.status is (RunStatus.FAILED if any_failed else RunStatus.SUCCEEDED)
