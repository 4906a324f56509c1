"""Workers: ``rt.submit`` puts runs in the store's queue, ``rt.serve`` runs them.

A worker is a :class:`flowrt.Runtime` with a store and the workflows it can run
(``Runtime(store=..., workflows=[...])``) looping in :func:`serve`: it fires the
schedules that are due, then takes due runs from the queue -- submitted runs, parked
runs whose signal came or whose timer is due, runs resumed from the command line, runs
whose worker died -- while it holds fewer than ``concurrency``, and runs each in a task
of its own, exactly as ``rt.run`` would (the runtime's limits apply across all of
them), parking it when every node left waits. Taking a run is a claim of the store
(a lease and a fencing token, docs/decisions/012-fencing.md and 013-queue.md), so any
number of workers, in any number of processes, share one store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread

from ._logging import logger
from ._schedule import due_slots, slot_runs, slot_text
from ._types import RunStatus
from .durable import Lease, RunRecord, StoredRun
from .durable._run import Opened, _from_any_thread, _new_record, _read_back, run_opened
from .durable._store import DEFAULT_QUEUE, QUEUED
from .errors import LeaseLost, RunCancelled, SerializationError, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from .durable import Store
    from .runtime import Runtime
    from .workflow import Plan, Workflow

__all__ = ["Registry", "new_queued_record", "serve"]


class Registry:
    """The workflows a runtime can run from the queue, by name (one version each)."""

    def __init__(self, workflows: Sequence[Workflow] = ()) -> None:
        self._workflows: dict[str, Workflow] = {}
        for wf in workflows:
            self.add(wf)

    def add(self, wf: Workflow) -> None:
        """Register ``wf`` under its name.

        Raises:
            TypeError: ``wf`` is not a Workflow.
            ValueError: another workflow of that name is registered.
        """
        if not hasattr(wf, "compile") or not hasattr(wf, "name"):
            raise TypeError(f"workflows= takes flowrt.Workflow objects, got {wf!r}")
        other = self._workflows.get(wf.name)
        if other is not None and other is not wf:
            raise ValueError(f"two workflows are named {wf.name!r}: a worker runs runs by "
                             "their workflow's name, so each name must be one workflow")
        self._workflows[wf.name] = wf

    def get(self, name: str) -> Workflow | None:
        """The workflow registered as ``name``, or None."""
        return self._workflows.get(name)

    def plans(self) -> dict[str, Plan]:
        """Each registered workflow's compiled plan, by name."""
        return {name: wf.compile() for name, wf in self._workflows.items()}

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._workflows)

    def __len__(self) -> int:
        return len(self._workflows)


def new_queued_record(plan: Plan, run_id: str, inputs: Mapping[str, Any], store: Store,
                      now: float, queue: str | None,
                      resources: Collection[str] = ()) -> RunRecord:
    """The record of a run submitted to the queue, due at ``now``.

    Raises:
        MissingInputError: a required input is missing.
        SerializationError: the inputs cannot be stored.
    """
    record = _new_record(plan, run_id, dict(inputs), store.serializer, resources)
    return RunRecord(record.run_id, record.workflow, record.fingerprint, record.structure,
                     record.inputs, QUEUED, record.serializer, now, now,
                     structure_json=record.structure_json, queue=queue or DEFAULT_QUEUE,
                     due=now, waits=record.waits)


class _Taken:
    """What the decide of one ``claim_next`` read: the run's plan and what it opened."""

    __slots__ = ("opened", "plan")

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.opened: Opened | None = None


def _decide_for(plans: Mapping[str, Plan], store: Store, taken: _Taken,
                resources: Collection[str] = ()) -> Callable[[StoredRun | None],
                                                             RunRecord | None]:
    serializer = store.serializer

    def decide(stored: StoredRun | None) -> RunRecord | None:
        assert stored is not None
        record = stored.record
        plan = plans[record.workflow]
        opened = Opened()
        opened.stored = stored
        if _read_back(stored, plan, record.run_id, {}, "auto", serializer, opened):
            return None  # it succeeded already (the row changed under us): nothing to do
        taken.plan, taken.opened = plan, opened
        return _new_record(plan, record.run_id, opened.inputs, serializer, resources)

    return decide


async def serve(rt: Runtime, *, concurrency: int, queues: Sequence[str], poll: float,
                until_idle: bool, max_recoveries: int,
                on_run: Callable[[str, str], object] | None = None) -> int:
    """The worker loop of ``rt`` (see :meth:`flowrt.Runtime.serve`); returns how many
    runs it ran."""
    store = rt.store
    assert store is not None
    log = logger().bind(worker=f"{Lease.mine().describe()}")
    plans = rt._workflows().plans()
    workflows = {name: {plan.fingerprint} for name, plan in plans.items()}
    held: set[str] = set()
    ran = 0
    shared = rt._shared
    changed = rt._worker_wakeup = anyio.Event()
    log.info("worker started", workflows=sorted(plans), concurrency=concurrency,
             queues=list(queues))

    async def run_one(plan: Plan, opened: Opened,
                      *, task_status: anyio.abc.TaskStatus[None]) -> None:
        nonlocal changed, ran
        run_id = opened.claim.run_id if opened.claim is not None else "?"
        try:
            # Counted in flight before the loop goes on, so that a runtime shutting down
            # waits for this run to hand itself back before it closes the store.
            with shared.in_flight():
                task_status.started()
                assert rt.store is not None
                settings = rt._worker_settings(plan)
                with rt.children_of(settings, plan):  # its sub-workflows run in this runtime
                    result = await run_opened(rt.store, shared, plan, opened, None,
                                              settings, handed_back="queued")
            if result.status is not RunStatus.WAITING:  # (the run said it parked)
                log.info("run ended", run_id=run_id, status=str(result.status))
            if on_run is not None:
                on_run(run_id, str(result.status))
        except RunCancelled:
            log.info("run cancelled through the store", run_id=run_id)
        except LeaseLost as error:
            log.warning("run taken over by another worker", run_id=run_id, error=str(error))
        except (StoreError, SerializationError) as error:
            log.error("run stopped: the store failed", run_id=run_id, error=str(error))
        finally:
            ran += 1
            held.discard(run_id)
            changed.set()

    async with _woken_by(store, rt), anyio.create_task_group() as tg:
        while rt._open:  # a runtime shutting down stops its worker loops
            # One look at the store, counted in flight: the runtime closes its store only
            # after it (see Runtime.__aexit__).
            with shared.in_flight():
                now = rt.clock.now()
                away: StoreUnavailable | None = None
                try:
                    fired = await anyio.to_thread.run_sync(_fire_schedules, store, plans,
                                                           now, log)
                except StoreUnavailable as error:
                    fired = 0
                    away = error
                took = 0
                while away is None and len(held) < concurrency and rt._open:
                    taken = _Taken()
                    decide = _decide_for(plans, store, taken, tuple(rt.resources))
                    try:
                        got = await anyio.to_thread.run_sync(
                            lambda d=decide, n=now: store.claim_next(  # type: ignore[misc]
                                Lease.mine(), d, now=n, workflows=workflows, queues=queues,
                                max_recoveries=max_recoveries))
                    except StoreUnavailable as error:
                        away = error
                        break
                    except Exception as error:  # the run was dead-lettered; go on
                        log.error("a queued run could not be started: it is dead-lettered",
                                  error=f"{type(error).__name__}: {error}")
                        continue
                    if got is None:
                        break
                    _, claim = got
                    assert taken.plan is not None and taken.opened is not None
                    taken.opened.claim = claim
                    held.add(claim.run_id)
                    took += 1
                    log.info("run taken", run_id=claim.run_id, fence=claim.fence)
                    # (a run taken while the runtime shuts down ends at once, handed back)
                    await tg.start(run_one, taken.plan, taken.opened)
            if away is not None:
                # The store is out of reach (a database restarting): the runs held go on
                # on their leases; look again after ``poll``.
                log.warning("the store cannot be reached; trying again", error=str(away))
            elif until_idle and not held and not took and not fired:
                tg.cancel_scope.cancel()
                break
            if changed.is_set():
                changed = rt._worker_wakeup = anyio.Event()
                if away is None:
                    # Something happened while this pass looked (a run ended, a run was
                    # submitted or became due): look again now, not after ``poll``.
                    continue
            with anyio.move_on_after(poll):
                await changed.wait()
    rt._worker_wakeup = None
    log.info("worker stopped", runs=ran)
    return ran


@contextlib.asynccontextmanager
async def _woken_by(store: Store, rt: Runtime) -> AsyncIterator[None]:
    """While in the block, a store that can tell when runs become due (PostgreSQL:
    LISTEN/NOTIFY; ``store.watch``) wakes the worker loop at once; its ``poll`` is then
    the slow fallback, for timers and dead workers."""
    watch = getattr(store, "watch", None)
    if watch is None:
        yield
        return

    def wake() -> None:
        if rt._worker_wakeup is not None:
            rt._worker_wakeup.set()

    unwatch = watch(_from_any_thread(wake))
    try:
        yield
    finally:
        unwatch()


def _fire_schedules(store: Store, plans: Mapping[str, Plan], now: float, log: Any) -> int:
    """Fire every due schedule of a workflow in ``plans``; return how many runs made."""
    made = 0
    for schedule in store.schedules():
        if schedule.next_due > now:
            continue
        plan = plans.get(schedule.workflow)
        if plan is None:
            continue  # another worker's workflow
        slots, next_due = due_slots(schedule, now)
        runs = slot_runs(schedule, slots, plan.fingerprint, plan.structure,
                         plan.structure_json, dict(plan.waits))
        created = store.fire_schedule(schedule.name, schedule.next_due, runs, next_due,
                                      slot_text(slots[-1]))
        if created:
            made += len(created)
            log.info("schedule fired", schedule=schedule.name, runs=created)
    return made
