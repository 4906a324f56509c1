"""One run, from a plan to its result: the engine's entry point.

:func:`prepare_run` checks a run's inputs, lays its data out and builds its supervisor;
the :class:`Run` it returns is started with :meth:`Run.execute`, which returns the
:class:`~flowrt.RunResult`. Between the two, a durable run puts back what its store
recorded (:meth:`Run.restore`) and attaches its checkpoint (:meth:`Run.attach`): that is
how ``flowrt.durable`` wraps a run; ``flowrt.Runtime`` runs one as it is.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._types import EventKind, ExecutorChoice, Hook, RunStatus
from ..data import WorkflowData
from .cache import NodeCache, check_cached_inputs
from .mapping import ItemBoard, RecordedItems, run_map
from .result import RunResult
from .saga import pending_compensations, roll_back
from .shared import Shared
from .state import Checkpoint, RunState, Waiter, clock
from .supervisor import Supervisor
from .waits import Inbox

if TYPE_CHECKING:
    from ..workflow import Plan
    from .telemetry import RunSpan

__all__ = ["Run", "RunSettings", "prepare_run"]


@attrs.frozen(kw_only=True)
class RunSettings:
    """How one run goes: the run options the engine reads, the runtime's defaults applied.

    See :class:`flowrt.runtime.RunOptions` for their meaning; ``hooks`` is ``on_event`` as
    a tuple (the runtime's hooks first); ``resources`` are the runtime's and the run's
    together; ``cache`` is where cached nodes are looked up (None: nowhere).
    """

    max_concurrency: int | None = None
    limits: Mapping[str, int] | None = None
    fail_fast: bool = False
    timeout: float | None = None
    hooks: tuple[Hook, ...] = ()
    executor: ExecutorChoice = None
    metrics: bool | float = True
    #: return as soon as every node left waits, status WAITING (a store is needed to
    #: continue it: ``flowrt.durable`` checks)
    park: bool = False
    #: run the ``compensate=`` of succeeded nodes when the run fails (docs/compensation.md)
    compensate: bool = True
    # -- resources and caching --
    resources: Mapping[str, Any] | None = None
    cache: NodeCache | None = None
    refresh: bool = False


class Run:
    """One run of a plan, ready to start. Made by :func:`prepare_run`."""

    __slots__ = ("_compensate", "_sup", "state")

    def __init__(self, sup: Supervisor, compensate: bool = True) -> None:
        self._sup = sup
        self._compensate = compensate
        #: the run's plan, inputs, data and per-node arrays (read them, do not change them)
        self.state: RunState = sup.state

    def restore(self, node: int, value: Any, attempts: int, started: float | None,
                finished: float | None) -> None:
        """Before the run starts: ``node`` already SUCCEEDED (a resumed durable run).

        ``started``/``finished`` are wall-clock times. The node is not run again; its
        dependents see a succeeded dependency with output ``value``.
        """
        self._sup.restore(node, value, attempts, started, finished)

    def restore_ended(self, node: int, status: int, error: BaseException | None) -> None:
        """Before a rollback-only run (``execute(rollback_only=True)``): ``node`` ended
        with final ``status`` (FAILED, SKIPPED, CANCELLED, COMPENSATED or
        COMPENSATION_FAILED) in an earlier start of the run."""
        self._sup.restore_ended(node, status, error)

    def restore_items(self, node: int, recorded: RecordedItems, whole: bool) -> None:
        """Before the run starts: what a durable run recorded of mapped ``node``'s items.

        ``whole``: the node itself is restored (:meth:`restore`), so the items are only
        reported; otherwise its items recorded as succeeded do not run again.
        """
        if whole:  # (the outputs are kept for a rollback that would undo each item)
            undo = self.state.plan.options_of(node).compensate is not None
            self._sup.items[node] = ItemBoard.from_record(recorded, outputs=undo)
        else:
            self._sup.recorded_items[node] = recorded

    def attach(self, checkpoint: Checkpoint) -> None:
        """Before the run starts: record node ends through ``checkpoint``."""
        self._sup.checkpoint = checkpoint

    def trace(self, span: RunSpan | None, link: str | None) -> None:
        """Before the run starts: its ``flowrt.run`` span is ``span`` (opened by the
        caller: :meth:`Telemetry.open_run_span`) rather than one opened as it starts, and
        links to the trace of W3C ``traceparent`` ``link`` (the first start of a durable
        run). Nothing when the runtime does not trace."""
        if self._sup.otel is not None:
            self._sup.otel.adopt(span, link)

    def wait_with(self, waiter: Waiter) -> None:
        """Before the run starts: its wait nodes wait through ``waiter`` (instead of the
        in-process :class:`~flowrt._engine.waits.Inbox` a run with wait nodes gets)."""
        self._sup.waiter = waiter

    def stop(self) -> None:
        """Stop the run from outside (it ends CANCELLED, as when its timeout expires)."""
        self._sup.interrupt()

    @property
    def shut_down(self) -> bool:
        """Whether the run was stopped because its runtime shut down."""
        return self._sup.shut_down

    async def execute(self, *, restored: bytearray | None = None,
                      rollback_only: bool = False) -> RunResult:
        """Run every node to a final status and return the result.

        ``restored``: per node, 1 for those :meth:`restore` put back (the result tells).
        Cancelling the caller cancels every running node; the cancellation propagates
        and the nodes end CANCELLED. When the run fails, is cancelled or times out, the
        ``compensate=`` of its succeeded nodes run (unless the run was made with
        ``compensate=False``), shielded from the caller's cancellation for a bounded
        time (:mod:`flowrt._engine.saga`).

        ``rollback_only``: a durable run that crashed during its rollback: nothing runs
        forward (nodes not restored end CANCELLED); the rollback goes on.
        """
        sup = self._sup
        state = self.state
        wall_start = time.time()
        clock_start = clock()
        if sup.log_runs:
            state.log.info("run started", nodes=len(state.plan))
        otel = sup.otel
        # with telemetry, the run's span is current in this task while it runs
        token = otel.run_started() if otel is not None else None
        try:
            if rollback_only:
                sup.finish_unrun()
                status = sup.status()
                await roll_back(sup, pending_compensations(sup))
                for node, recorded in sup.recorded_items.items():  # shown as stored
                    if node not in sup.items:
                        sup.items[node] = ItemBoard.from_record(recorded)
            else:
                try:
                    await sup.run()
                except BaseException:
                    # The caller was cancelled (or the process is told to exit): undo
                    # what succeeded, then let that go on propagating.
                    if self._compensate and not sup.shut_down and not _exiting():
                        await roll_back(sup, pending_compensations(sup))
                    raise
                status = sup.status()
                # (not a parked run: it is WAITING, not over)
                if ((status is RunStatus.FAILED or status is RunStatus.CANCELLED)
                        and self._compensate and not sup.shut_down):
                    await roll_back(sup, pending_compensations(sup))
        except BaseException as error:
            if otel is not None:
                otel.run_ended(token, None, error)
            raise
        if otel is not None:
            otel.run_ended(token, status, None)
        wall_time = clock() - clock_start
        n = len(state.plan)
        result = RunResult(
            plan=state.plan, run_id=state.run_id, status=status,
            board=bytearray(state.board), values=state.values[:n], attempts=state.attempts,
            started=state.started, finished=state.finished, timed=state.timed,
            errors=state.errors, data=state.data, wall_start=wall_start,
            time_base=state.time_base, wall_time=wall_time, hook_errors=sup.hook_errors,
            restored=restored, items=sup.items,
        )
        if state.errors:
            # The result has the errors now. The run lets go of them, which breaks the
            # cycle error -> traceback -> a runner's frame -> supervisor -> errors ->
            # error: a failed run is then freed with its result, by reference counting,
            # not left for the garbage collector (docs/decisions/031-per-run-allocations.md).
            sup.errors = state.errors = {}
        if status is RunStatus.FAILED:
            if sup.log_failures:
                state.log.warning("run finished", status=str(status),
                                  seconds=round(wall_time, 6))
        elif status is RunStatus.WAITING:
            pass  # parked, not over: the durable run says "run parked" once it is stored
        elif sup.log_runs:
            state.log.info("run finished", status=str(status), seconds=round(wall_time, 6))
        if sup.trace:
            sup.emit(EventKind.RUN_FINISHED, -1, status=str(status))
        return result


def prepare_run(shared: Shared, plan: Plan, run_id: str, inputs: Mapping[str, Any] | None,
                data: WorkflowData | None, settings: RunSettings) -> Run:
    """Check the inputs of a run of ``plan``, lay its data out, and build the run.

    ``data``: the :class:`~flowrt.WorkflowData` to use (a new one when None); the inputs
    are set in it. Raises :class:`~flowrt.MissingInputError` when a required input is
    missing (naming a resource it is close to), ``ValueError`` for an input named like a
    node or like a resource, or a bad ``metrics`` rate, and
    :class:`~flowrt.CacheKeyError` for an input of a cached node that cannot be hashed.
    """
    given = dict(inputs) if inputs else {}
    resources = settings.resources
    plan.check_inputs(given, resources or ())
    if resources:
        clash = [k for k in given if k in resources]
        if clash:
            raise ValueError(f"run input {clash[0]!r} is also the name of a resource: "
                             "rename one of them")
    if plan.cached is not None and settings.cache is not None:
        check_cached_inputs(plan, given)
    if data is None:
        data = WorkflowData(len(plan) + len(given) + 8)
    data.attach(plan)
    for k, v in given.items():
        data.set(k, v)
    state = RunState(plan=plan, run_id=run_id, inputs=given, data=data,
                     metrics=settings.metrics, resources=resources)
    sup = Supervisor(shared, state, max_concurrency=settings.max_concurrency,
                     limits=settings.limits, fail_fast=settings.fail_fast,
                     timeout=settings.timeout, hooks=settings.hooks,
                     executor=settings.executor, park=settings.park,
                     cache=settings.cache, refresh=settings.refresh)
    if plan.wait_specs:
        sup.waiter = Inbox(state, shared.clock)
    if plan.maps:
        sup.map_runner = run_map
    return Run(sup, settings.compensate)


def _exiting() -> bool:
    """Whether the exception being handled is a KeyboardInterrupt or SystemExit (no
    rollback then: the process is going away)."""
    import sys

    return isinstance(sys.exception(), KeyboardInterrupt | SystemExit)
