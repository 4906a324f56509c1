"""``Runtime``: what several runs share -- limits, worker threads, executors, store.

``wf.run(...)`` makes a private runtime for the one run. A service that runs many
workflows keeps one runtime open and starts every run through it, so that a limit of
``{"payments": 2}`` holds across all the runs at once::

    async with flowrt.Runtime(limits={"payments": 2}) as rt:
        async with anyio.create_task_group() as tg:
            for order in orders:
                tg.start_soon(rt.run, checkout, {"order_id": order})
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from .data import WorkflowData
from .errors import MissingInputError
from .events import EventKind, Hook, normalize_hooks
from .executors import ProcessExecutor, ThreadExecutor
from .limits import Limit
from .result import RunResult, RunStatus
from .status import Status
from .supervisor import Supervisor

if TYPE_CHECKING:
    from .graph import Workflow
    from .plan import Plan
    from .store import Store

__all__ = ["Runtime"]


def check_inputs(plan: Plan, inputs: Mapping[str, Any]) -> None:
    """Refuse missing run inputs (naming them) and inputs named like nodes."""
    missing = plan.missing_inputs(inputs)
    if missing:
        raise MissingInputError(missing)
    clash = [k for k in inputs if k in plan.index]
    if clash:
        raise ValueError(f"run input {clash[0]!r} is the name of a node: a node's output "
                         "cannot be given as an input (rename the input or the node)")


def _check_executor(executor: Any) -> None:
    if executor is None or executor in ("thread", "loop", "process"):
        return
    if isinstance(executor, str) or not hasattr(executor, "run"):
        raise ValueError(f"executor must be 'thread', 'loop', 'process' or an executor object "
                         f"(with an async run method), got {executor!r}")


class Runtime:
    """Shared resources for runs; use as ``async with Runtime(...) as rt``.

    ``max_concurrency`` caps the nodes running at once across every run of this
    runtime; ``limits`` maps a limit name to its capacity, shared by every run;
    ``threads`` caps the worker threads for sync nodes (40 by default); ``executor``
    is where sync nodes run by default (``"thread"``, ``"process"``, ``"loop"`` or an
    executor object); ``metrics`` is True (time every node), False, or a sampling rate.

    Executors the runtime makes from a name (``"process"``...) are its own and closed with
    it; an executor object you pass stays yours to close (``async with`` it).
    """

    def __init__(
        self,
        *,
        max_concurrency: int | None = None,
        limits: Mapping[str, int] | None = None,
        store: Store | str | None = None,
        executor: Any = None,
        threads: int = 40,
        metrics: bool | float = True,
    ) -> None:
        _check_executor(executor)
        self._cap = (Limit("max_concurrency", max_concurrency)
                     if max_concurrency is not None else None)
        self._limits = {name: Limit(name, k) for name, k in (limits or {}).items()}
        self._store_arg = store
        self.store: Store | None = None
        self.executor = executor
        self.threads = threads
        self.metrics = metrics
        self._threads: anyio.CapacityLimiter | None = None
        self._owned: dict[str, Any] = {}  # executors this runtime created, by name
        self._open = False

    async def __aenter__(self) -> Runtime:
        if self._open:
            raise RuntimeError("this Runtime is already open")
        self._threads = None  # made at the first sync node (most runs have none)
        if self._store_arg is not None:
            from .store import open_store

            self.store = open_store(self._store_arg)
        self._open = True
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._open = False
        with anyio.CancelScope(shield=True):
            for executor in self._owned.values():
                close = getattr(executor, "aclose", None)
                if close is not None:
                    await close()
            self._owned.clear()
            if self.store is not None and self.store is not self._store_arg:
                self.store.close()  # a store this runtime opened from a path
            self.store = None

    def thread_limiter(self) -> anyio.CapacityLimiter:
        """The limiter of this runtime's worker threads (made on first use)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(self.threads)
        return self._threads

    def executor_for(self, where: Any) -> Any:
        """The executor object for an ``executor=`` value."""
        if isinstance(where, str):
            executor = self._owned.get(where)
            if executor is None:
                if where == "process":
                    executor = ProcessExecutor()
                elif where == "thread":
                    executor = ThreadExecutor(self.threads)
                else:
                    raise ValueError(f"unknown executor {where!r}; expected 'loop', 'thread', "
                                     "'process' or an executor object")
                self._owned[where] = executor
            return executor
        return where

    async def run(
        self,
        workflow: Workflow | Plan,
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
        limits: Mapping[str, int] | None = None,
        fail_fast: bool = False,
        timeout: float | None = None,
        data: WorkflowData | None = None,
        executor: Any = None,
        on_event: Hook | Sequence[Hook] | None = None,
        resume: str | None = None,
        metrics: bool | float | None = None,
    ) -> RunResult:
        """Run ``workflow`` once and return its :class:`~flowrt.RunResult`.

        ``inputs``: values of the run inputs (parameters that are no node).
        ``run_id``: the run's id (a new one by default); with a store, an id the store
        knows resumes that run. ``max_concurrency``: nodes of this run running at once.
        ``limits``: capacities of named limits for this run; a name the runtime also
        limits gets this run's own limit instead of the shared one.
        ``fail_fast``: cancel everything at the first node failure. ``timeout``: seconds
        after which the run is cancelled and returned with status CANCELLED.
        ``data``: the :class:`~flowrt.WorkflowData` to use (reused across runs, it
        allocates nothing new). ``executor``: where sync nodes run by default.
        ``on_event``: a hook or hooks called with every :class:`~flowrt.Event`.

        Raises :class:`~flowrt.MissingInputError` before any node runs when a required
        input is missing. Cancelling the caller cancels every running node and the
        cancellation propagates; the nodes end CANCELLED.
        """
        if not self._open:
            raise RuntimeError("use the Runtime as 'async with Runtime(...) as rt' first")
        plan = workflow if not hasattr(workflow, "compile") else workflow.compile()
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        hooks = normalize_hooks(on_event)
        for name, capacity in (limits or {}).items():
            Limit(name, capacity)  # raises ValueError for a bad capacity, before anything
        _check_executor(executor)
        run_id = run_id or uuid.uuid4().hex
        options = dict(max_concurrency=max_concurrency, limits=limits, fail_fast=fail_fast,
                       hooks=hooks, executor=executor, metrics=metrics)
        if self.store is not None:
            from .durable import durable_run

            result: RunResult = await durable_run(self, plan, run_id, inputs, data, timeout,
                                                  resume, options)
            return result
        if resume is not None:
            raise ValueError("resume= needs a store (store='runs.db' or a Store object)")
        given, data = self.prepare(plan, inputs, data)
        sup = self.supervisor(plan, run_id, given, data, **options)
        return await self.drive(sup, timeout)

    def prepare(self, plan: Plan, inputs: Mapping[str, Any] | None,
                data: WorkflowData | None) -> tuple[dict[str, Any], WorkflowData]:
        """Check the inputs and lay the run's data out for ``plan``."""
        given = dict(inputs) if inputs else {}
        check_inputs(plan, given)
        if data is None:
            data = WorkflowData(len(plan) + len(given) + 8)
        data.attach(plan)
        for k, v in given.items():
            data.set(k, v)
        return given, data

    def supervisor(self, plan: Plan, run_id: str, inputs: Mapping[str, Any],
                   data: WorkflowData, *, max_concurrency: int | None,
                   limits: Mapping[str, int] | None, fail_fast: bool,
                   hooks: tuple[Hook, ...], executor: Any, metrics: bool | float | None
                   ) -> Supervisor:
        """The supervisor of one run (used by :meth:`run` and durable runs)."""
        return Supervisor(
            self, plan, run_id, inputs, data, max_concurrency=max_concurrency, limits=limits,
            fail_fast=fail_fast, hooks=hooks,
            executor=executor if executor is not None else self.executor,
            metrics=self.metrics if metrics is None else metrics,
        )

    async def drive(self, sup: Supervisor, timeout: float | None) -> RunResult:
        """Run ``sup`` to the end and build the result."""
        plan = sup.plan
        wall_start = time.time()
        clock_start = time.perf_counter()
        if sup.log_runs:
            sup.log.info("run started", nodes=len(plan))
        await sup.run(timeout)
        wall_time = time.perf_counter() - clock_start
        board = sup.board
        if sup.stopped_by_failure or (board.count(Status.FAILED) and not sup.timed_out):
            status = RunStatus.FAILED
        elif sup.timed_out or board.count(Status.CANCELLED):
            status = RunStatus.CANCELLED
        else:
            status = RunStatus.SUCCEEDED
        n = len(plan)
        result = RunResult(plan, sup.run_id, status, bytearray(board), sup.values[:n],
                           sup.attempts, sup.started, sup.finished, sup.errors, sup.data,
                           wall_start, wall_start - sup.time_base, wall_time, sup.timed,
                           sup.hook_errors)
        if status is RunStatus.FAILED:
            if sup.log_failures:
                sup.log.warning("run finished", status=str(status), seconds=round(wall_time, 6))
        elif sup.log_runs:
            sup.log.info("run finished", status=str(status), seconds=round(wall_time, 6))
        if sup.trace:
            sup.emit(EventKind.RUN_FINISHED, -1, status=str(status))
        return result
